"""Reading untrusted wire maps field by field, with errors that name the field.

Every record's ``from_wire`` goes through a :class:`FieldReader`, so every decode
failure is a :class:`~podq.shared.errors.DecodeError` whose message carries the
path of the offending field (``job.task_key.try_number: expected an integer, got str``).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from .errors import DecodeError

_MISSING = object()
# The msgpack type names docs/protocol.md uses; a decoded record holds no other type.
_TYPE_NAMES = {bool: "bool", int: "integer", float: "float", str: "string", bytes: "binary",
               list: "array", tuple: "array", dict: "map"}


def type_name(value: Any) -> str:
    """The name a non-Python producer would recognise for a decoded msgpack value."""
    if value is None:
        return "nil"
    return _TYPE_NAMES.get(type(value), "extension")


class FieldReader:
    """Typed access to one wire map; ``where`` prefixes every error message."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise DecodeError(f"{where}: expected a map, got {type_name(data)}")
        self.data = data
        self.where = where

    def _get(self, name: str, required: bool) -> Any:
        value = self.data.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise DecodeError(f"{self.where}.{name}: required field is missing")
            return None
        return value

    def fail(self, name: str, problem: str) -> DecodeError:
        """An error about field ``name`` of this map."""
        return DecodeError(f"{self.where}.{name}: {problem}")

    def str(self, name: str, *, required: bool = True, max_len: int = 1024,
            allow_empty: bool = False) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {type_name(value)}")
        if not value and not allow_empty:
            raise self.fail(name, "must not be empty")
        if len(value) > max_len:
            raise self.fail(name, f"longer than {max_len} characters ({len(value)})")
        return value

    def int(self, name: str, *, required: bool = True, minimum: int | None = None,
            default: int | None = None) -> int | None:
        value = self._get(name, required and default is None)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"expected an integer, got {type_name(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be >= {minimum}, got {value}")
        return value

    def float(self, name: str, *, required: bool = False, default: float = 0.0) -> float:
        value = self._get(name, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"expected a number, got {type_name(value)}")
        if not math.isfinite(value):
            raise self.fail(name, "must be a finite number")
        return float(value)

    def bool(self, name: str, *, default: bool = False) -> bool:
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(name, f"expected a bool, got {type_name(value)}")
        return value

    def str_list(self, name: str, *, required: bool = False, max_items: int = 1024,
                 max_len: int = 65536) -> tuple[str, ...]:
        value = self._get(name, required)
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            raise self.fail(name, f"expected an array of strings, got {type_name(value)}")
        if len(value) > max_items:
            raise self.fail(name, f"more than {max_items} items ({len(value)})")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"{name}[{index}]", f"expected a string, got {type_name(item)}")
            if len(item) > max_len:
                raise self.fail(f"{name}[{index}]", f"longer than {max_len} characters")
        return tuple(value)

    def str_map(self, name: str) -> dict[str, str]:
        value = self._get(name, False)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(name, f"expected a map of strings, got {type_name(value)}")
        for key, item in value.items():  # keys are strings in every decoded record
            if not isinstance(item, str):
                raise self.fail(f"{name}['{key}']", f"expected a string, got {type_name(item)}")
        return dict(value)

    def map(self, name: str, *, required: bool = False) -> dict | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.fail(name, f"expected a map, got {type_name(value)}")
        return dict(value)

    def sub(self, name: str, *, required: bool = True) -> "FieldReader | None":
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.fail(name, f"expected a map, got {type_name(value)}")
        return FieldReader(value, f"{self.where}.{name}")

    def choice(self, name: str, enum: type, *, required: bool = True):
        value = self._get(name, required)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise self.fail(name, f"unknown value {value!r} (expected one of: {allowed})") from None
