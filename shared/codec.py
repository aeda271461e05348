"""msgpack framing shared by every record: schema version, kind, size limit.

A payload is one msgpack map ``{"schema": "MAJOR.MINOR", "kind": KIND, ...fields}``.
A reader accepts any minor version of its major and ignores fields it does not
know; a different major is refused (it would come on new stream names anyway).
"""
from __future__ import annotations

from typing import Any

import msgpack

from .errors import DecodeError
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
    try:
        data = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except UnicodeDecodeError:
        raise DecodeError(f"{kind}: a string is not valid UTF-8") from None
    except (ValueError, msgpack.UnpackException) as exc:
        # Library-independent wording, so the conformance vectors hold for every language.
        raise DecodeError(f"{kind}: {_unpack_problem(exc)}") from None
    reader = FieldReader(data, kind)
    check_schema(reader)
    found = reader.str("kind")
    if found != kind:
        raise reader.fail("kind", f"expected {kind!r}, got {found!r}")
    return reader


def _unpack_problem(exc: Exception) -> str:
    if isinstance(exc, msgpack.ExtraData):
        return "not valid msgpack (extra bytes after the record)"
    if isinstance(exc, msgpack.StackError):
        return "not valid msgpack (nested too deeply)"
    if isinstance(exc, msgpack.FormatError):
        return "not valid msgpack (invalid format byte)"
    if "map key" in str(exc):
        return "map keys must be strings"
    return "not valid msgpack (incomplete record)"


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
