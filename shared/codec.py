"""msgpack framing shared by every record: schema version, kind, size limit.

A payload is one msgpack map ``{"schema": "MAJOR.MINOR", "kind": KIND, ...fields}``.
A reader accepts any minor version of its major and ignores fields it does not
know; a different major is refused (it would come on new stream names anyway).
"""
from __future__ import annotations

from typing import Any

import msgpack

from .errors import DecodeError
from .wellformed import first_problem
from .wire import FieldReader, type_name

SCHEMA_MAJOR = 1
SCHEMA_MINOR = 0
SCHEMA = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"
MAX_RECORD_BYTES = 256 * 1024


def pack(kind: str, fields: dict[str, Any]) -> bytes:
    """Encode ``fields`` as a record of ``kind`` at the current schema version."""
    return msgpack.packb({"schema": SCHEMA, "kind": kind, **fields}, use_bin_type=True)


def unpack(payload: Any, kind: str, *, max_bytes: int = MAX_RECORD_BYTES) -> FieldReader:
    """Check framing of a payload that should hold a ``kind`` record; return its reader."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogateescape")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise DecodeError(f"{kind}: expected msgpack bytes, got {type_name(payload)}")
    if len(payload) > max_bytes:
        raise DecodeError(f"{kind}: record is {len(payload)} bytes, over the {max_bytes}-byte limit")
    reader = FieldReader(loads(bytes(payload), kind), kind)
    check_schema(reader)
    found = reader.str("kind")
    if found != kind:
        raise reader.fail("kind", f"expected {kind!r}, got {found!r}")
    return reader


# What a well-formed record decodes to; anything else (a timestamp extension, which the C
# decoder builds without calling ext_hook) sends the payload to the byte-order walk.
_KEY_TYPES = frozenset({str})
_VALUE_TYPES = frozenset({str, int, float, bool, type(None), dict, list, bytes})


class _Flagged(Exception):
    """The fast decode met something the byte-order walk must name."""


def _checked_map(pairs: list) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs) or not _KEY_TYPES.issuperset(map(type, value)) \
            or not _VALUE_TYPES.issuperset(map(type, value.values())):
        raise _Flagged
    return value


def _checked_list(items: list) -> list:
    if not _VALUE_TYPES.issuperset(map(type, items)):
        raise _Flagged
    return items


def _no_extension(_code: int, _data: bytes) -> Any:
    raise _Flagged


def loads(payload: bytes, kind: str) -> Any:
    """The decoded msgpack of a well-formed record; else DecodeError with its first problem.

    Well-formed (docs/protocol.md, framing): valid msgpack, no extension types, string keys
    only, each key once per map, valid UTF-8. The C decoder reads such records (its hooks
    check keys and value types); anything it flags is named by
    :func:`~podq.shared.wellformed.first_problem`, the language-neutral rule.
    """
    try:
        value = _unpack(payload)
        if type(value) in _VALUE_TYPES:
            return value
    except (_Flagged, ValueError, TypeError, msgpack.UnpackException):
        pass
    problem = first_problem(payload, kind)
    if problem is not None:
        raise DecodeError(problem)
    try:
        return _unpack(payload)
    except (_Flagged, ValueError, TypeError, msgpack.UnpackException):  # the walk and the decoder disagree
        raise DecodeError(f"{kind}: not valid msgpack (unreadable)") from None


def peek(payload: Any, field: str) -> Any:
    """One top-level field of a record, read cheaply and trusted for nothing (None when it cannot be
    read): for ordering records before :func:`unpack` checks them."""
    try:
        value = _unpack(payload)
    except (_Flagged, ValueError, TypeError, msgpack.UnpackException):
        return None
    return value.get(field) if isinstance(value, dict) else None


def _unpack(payload: bytes) -> Any:
    return msgpack.unpackb(payload, raw=False, strict_map_key=False, object_pairs_hook=_checked_map,
                           list_hook=_checked_list, ext_hook=_no_extension)


def check_schema(reader: FieldReader) -> tuple[int, int]:
    """Parse ``schema`` as MAJOR.MINOR and refuse another major version."""
    text = reader.str("schema", max_len=16)
    major_text, dot, minor_text = text.partition(".")
    if not dot or not major_text.isdigit() or not minor_text.isdigit():
        raise reader.fail("schema", f"expected 'MAJOR.MINOR', got {text!r}")
    major, minor = int(major_text), int(minor_text)
    if major != SCHEMA_MAJOR:
        raise reader.fail("schema", f"major version {major} is not supported (this podq reads {SCHEMA_MAJOR}.x)")
    return major, minor
