"""Loading the pod mutation hook named in settings (``module:function``)."""
from __future__ import annotations

import importlib

from .errors import WorkerError
from .podspec import MutationHook


def load_hook(spec: str | None) -> MutationHook | None:
    """The callable ``spec`` names (``package.module:function`` or ``package.module.function``).

    A hook that cannot be loaded stops the worker at start-up: running without the
    policy it applies would create pods an operator meant to change.
    """
    if not spec:
        return None
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        module_name, _, attribute = spec.rpartition(".")
    if not module_name or not attribute:
        raise WorkerError(f"PODQ_WORKER_POD_MUTATION_HOOK: {spec!r} is not 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WorkerError(f"PODQ_WORKER_POD_MUTATION_HOOK: cannot import {module_name!r} ({exc})") from None
    hook = getattr(module, attribute, None)
    if not callable(hook):
        raise WorkerError(f"PODQ_WORKER_POD_MUTATION_HOOK: {spec!r} is not a callable")
    return hook
