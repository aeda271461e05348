"""Pod templates: finding one by name, reading it, and the rules it must pass.

One store for intake's admission and for the workers, so a template intake admits is
one a worker can build a pod from. A template is a Pod in YAML (or JSON) named
``<name>.yaml``, ``.yml`` or ``.json`` in the templates directory
(``PODQ_INTAKE_TEMPLATES_DIR``); a job names it by its bare name, never a path. Parsed
templates are cached by file identity (path, size, mtime), so editing a file takes
effect on the next job. Every problem is a :class:`TemplateError` naming the template
and the problem, never quoting the file (it may hold secrets).
"""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import orjson
import yaml

from podq.shared.errors import PodqError

TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json")
MAX_TEMPLATE_BYTES = 1024 * 1024
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")


class TemplateError(PodqError):
    """A named pod template is missing or invalid (the message names it, never quotes it)."""

    reason = "PodTemplateError"


def is_template_name(name: str) -> bool:
    """A bare name (letters, digits, ``_ . -``; no path separators, no ``..``)."""
    return bool(_TEMPLATE_NAME.match(name)) and ".." not in name


def template_path(templates_dir: str | None, name: str) -> Path | None:
    """Where template ``name`` lives, or None when it has no file there."""
    if templates_dir is None or not is_template_name(name):
        return None
    directory = Path(templates_dir)
    for suffix in TEMPLATE_SUFFIXES:
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def parse_template(text: str, *, name: str) -> dict[str, Any]:
    """The pod a template's text describes, checked for the shape podq needs."""
    try:
        pod = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TemplateError(f"template {name!r} cannot be read as YAML{where}") from None
    except yaml.YAMLError:
        raise TemplateError(f"template {name!r} cannot be read as YAML") from None
    if not isinstance(pod, dict):
        raise TemplateError(f"template {name!r} is not a map (found {_kind(pod)})")
    if pod.get("kind", "Pod") != "Pod":
        raise TemplateError(f"template {name!r} is not a Pod (its kind is another)")
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise TemplateError(f"template {name!r} has no spec map")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise TemplateError(f"template {name!r} has no spec.containers list")
    if not all(isinstance(item, dict) for item in containers):
        raise TemplateError(f"template {name!r}: spec.containers must hold maps")
    metadata = pod.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise TemplateError(f"template {name!r}: metadata must be a map")
    # Round-trip through JSON so that YAML-only values (dates, sets) are refused here.
    try:
        return json.loads(json.dumps(pod))
    except (TypeError, ValueError):
        raise TemplateError(f"template {name!r} holds values that are not JSON "
                            "(quote dates and timestamps)") from None


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "an empty file"}.get(type(value), type(value).__name__)


class TemplateStore:
    """Finds, parses and caches templates; :meth:`get` returns a fresh copy each call.

    ``default`` is the text of the template used when a job names none (the workers'
    default pod); a store without one refuses ``get(None)``.
    """

    def __init__(self, templates_dir: str | None, *, default: str | None = None) -> None:
        self.templates_dir = templates_dir
        self._cache: dict[str, tuple[tuple, bytes]] = {}
        self._lock = threading.Lock()
        self._default = orjson.dumps(parse_template(default, name="default")) if default is not None else None

    def get(self, name: str | None) -> dict[str, Any]:
        """A private copy of template ``name`` (None: the default template)."""
        if name is None:
            if self._default is None:
                raise TemplateError("no default template is configured")
            return orjson.loads(self._default)
        if not is_template_name(name):
            raise TemplateError(f"{name!r} is not a template name (names only, no paths)")
        path = template_path(self.templates_dir, name)
        if path is None:
            raise TemplateError(f"no template named {name!r} is configured")
        return orjson.loads(self._load(name, path))

    def _load(self, name: str, path: Path) -> bytes:
        try:
            stat = path.stat()
        except OSError as exc:
            raise TemplateError(f"template {name!r} cannot be read ({exc.strerror})") from None
        identity = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(name)
        if cached and cached[0] == identity:
            return cached[1]
        if stat.st_size > MAX_TEMPLATE_BYTES:
            raise TemplateError(f"template {name!r} is {stat.st_size} bytes, over the "
                                f"{MAX_TEMPLATE_BYTES}-byte limit")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TemplateError(f"template {name!r} is not UTF-8 text") from None
        except OSError as exc:
            raise TemplateError(f"template {name!r} cannot be read ({exc.strerror})") from None
        encoded = orjson.dumps(parse_template(text, name=name))
        with self._lock:
            self._cache[name] = (identity, encoded)
        return encoded
