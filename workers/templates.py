"""The workers' pod templates: the shared template store with podq's default pod.

Finding, reading and checking a named template is :mod:`podq.shared.pods.templates`,
the store intake's admission uses too; the workers add the template a job without
``pod_template`` gets (``templates/default.yaml``).
"""
from __future__ import annotations

from importlib import resources

from podq.shared.pods.templates import TemplateStore

DEFAULT_TEMPLATE = resources.files(__package__).joinpath("templates", "default.yaml").read_text("utf-8")


def template_store(templates_dir: str | None) -> TemplateStore:
    """The store the workers build pods from: named templates from ``templates_dir``, and the default."""
    return TemplateStore(templates_dir, default=DEFAULT_TEMPLATE)
