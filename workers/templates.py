"""Pod templates: the default one podq ships, and named ones from a directory.

A template is a Pod in YAML (or JSON) named ``<name>.yaml`` in the templates
directory (``PODQ_INTAKE_TEMPLATES_DIR``). Parsed templates are cached by file
identity (path, size, mtime), so editing a file takes effect on the next job.
Every problem is a :class:`TemplateError` naming the template and the problem,
never quoting the file (it may hold secrets).
"""
from __future__ import annotations

import json
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import yaml

from podq.broker.intake.admission import template_path

from .errors import TemplateError

DEFAULT = "default"
MAX_TEMPLATE_BYTES = 1024 * 1024


def parse_template(text: str, *, name: str) -> dict[str, Any]:
    """The pod a template's text describes, checked for the shape podq needs."""
    try:
        pod = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TemplateError(f"pod template {name!r} is not valid YAML{where}") from None
    except yaml.YAMLError:
        raise TemplateError(f"pod template {name!r} is not valid YAML") from None
    if not isinstance(pod, dict):
        raise TemplateError(f"pod template {name!r} must be a map (a Pod), found {_kind(pod)}")
    kind = pod.get("kind", "Pod")
    if kind != "Pod":
        raise TemplateError(f"pod template {name!r} is not a Pod (its kind is another)")
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise TemplateError(f"pod template {name!r} has no spec map")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise TemplateError(f"pod template {name!r} has no spec.containers list")
    if not all(isinstance(item, dict) for item in containers):
        raise TemplateError(f"pod template {name!r}: spec.containers must hold maps")
    metadata = pod.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise TemplateError(f"pod template {name!r}: metadata must be a map")
    # Round-trip through JSON so that YAML-only values (dates, sets) are refused here.
    try:
        return json.loads(json.dumps(pod))
    except (TypeError, ValueError):
        raise TemplateError(f"pod template {name!r} holds values that are not JSON "
                            "(quote dates and timestamps)") from None


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "an empty file"}.get(type(value), type(value).__name__)


class TemplateStore:
    """Finds, parses and caches templates; :meth:`get` returns a fresh copy each call."""

    def __init__(self, templates_dir: str | None) -> None:
        self.templates_dir = templates_dir
        self._cache: dict[str, tuple[tuple, bytes]] = {}
        self._lock = threading.Lock()
        default = resources.files(__package__).joinpath("templates", f"{DEFAULT}.yaml").read_text("utf-8")
        self._default = orjson.dumps(parse_template(default, name=DEFAULT))

    def get(self, name: str | None) -> dict[str, Any]:
        """A private copy of template ``name`` (None: the default template)."""
        if name is None:
            return orjson.loads(self._default)
        path = template_path(self.templates_dir, name)
        if path is None:
            where = "no templates directory is configured" if self.templates_dir is None \
                else "no file of that name in the templates directory"
            raise TemplateError(f"pod template {name!r} not found: {where}")
        return orjson.loads(self._load(name, path))

    def _load(self, name: str, path: Path) -> bytes:
        try:
            stat = path.stat()
        except OSError as exc:
            raise TemplateError(f"pod template {name!r} cannot be read ({exc.strerror})") from None
        identity = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(name)
        if cached and cached[0] == identity:
            return cached[1]
        if stat.st_size > MAX_TEMPLATE_BYTES:
            raise TemplateError(f"pod template {name!r} is {stat.st_size} bytes, over the "
                                f"{MAX_TEMPLATE_BYTES}-byte limit")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TemplateError(f"pod template {name!r} is not UTF-8 text") from None
        except OSError as exc:
            raise TemplateError(f"pod template {name!r} cannot be read ({exc.strerror})") from None
        encoded = orjson.dumps(parse_template(text, name=name))
        with self._lock:
            self._cache[name] = (identity, encoded)
        return encoded
