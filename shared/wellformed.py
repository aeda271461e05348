"""The one byte-order check of a record's msgpack, whose first problem is the refusal.

docs/protocol.md ("Framing") defines what a well-formed record is, and this module is
that definition executed: reading the bytes in order, the first of these problems is
reported, with the path of the map, array item or string it is in:

- a format byte msgpack never uses (``0xc1``), a record cut short, bytes after it,
  maps and arrays nested more than :data:`MAX_DEPTH` deep;
- a msgpack extension type (any type code, the timestamp extension included);
- a map key that is not a string, a string or key that is not valid UTF-8;
- a map key that appears twice in the same map.

The C decoder reads well-formed records fast (:mod:`.codec`); this pure-Python walk
runs only when that one flags something, to name the first problem the same way in
every language (clients/node/src/wellformed.js is the same walk).
"""
from __future__ import annotations

import re

MAX_DEPTH = 1024
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Problem(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def child_path(path: str, key: str) -> str:
    """``path.key`` for a plain key (letters, digits, ``_``), else ``path['key']`` verbatim."""
    return f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}['{key}']"


class _Reader:
    """The record's bytes and a position; every read checks the bytes are there."""

    def __init__(self, data: bytes, root: str) -> None:
        self.data = data
        self.pos = 0
        self.root = root

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise _Problem(self.root, "not valid msgpack (incomplete record)")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")


# Format byte -> (kind, size of its length field or of its fixed payload).
_LENGTH_PREFIXED = {0xd9: ("string", 1), 0xda: ("string", 2), 0xdb: ("string", 4),
                    0xc4: ("binary", 1), 0xc5: ("binary", 2), 0xc6: ("binary", 4),
                    0xc7: ("extension", 1), 0xc8: ("extension", 2), 0xc9: ("extension", 4),
                    0xdc: ("array", 2), 0xdd: ("array", 4), 0xde: ("map", 2), 0xdf: ("map", 4)}
_FIXED = {0xc0: ("nil", 0), 0xc2: ("bool", 0), 0xc3: ("bool", 0),
          0xca: ("float", 4), 0xcb: ("float", 8),
          0xcc: ("integer", 1), 0xcd: ("integer", 2), 0xce: ("integer", 4), 0xcf: ("integer", 8),
          0xd0: ("integer", 1), 0xd1: ("integer", 2), 0xd2: ("integer", 4), 0xd3: ("integer", 8),
          0xd4: ("extension", 1), 0xd5: ("extension", 2), 0xd6: ("extension", 4),
          0xd7: ("extension", 8), 0xd8: ("extension", 16)}


def _header(reader: _Reader) -> tuple[str, int, bytes | None]:
    """The next item's kind and count (items, pairs) or payload (strings; None otherwise)."""
    byte = reader.uint(1)
    if byte <= 0x7f or byte >= 0xe0:
        return "integer", 0, None
    if 0x80 <= byte <= 0x8f:
        return "map", byte & 0x0f, None
    if 0x90 <= byte <= 0x9f:
        return "array", byte & 0x0f, None
    if 0xa0 <= byte <= 0xbf:
        return "string", 0, reader.take(byte & 0x1f)
    if byte in _FIXED:
        kind, size = _FIXED[byte]
        if kind == "extension":
            reader.take(1 + size)  # the type code, then the data
        else:
            reader.take(size)
        return kind, 0, None
    if byte in _LENGTH_PREFIXED:
        kind, size = _LENGTH_PREFIXED[byte]
        length = reader.uint(size)
        if kind in ("array", "map"):
            return kind, length, None
        if kind == "extension":
            reader.take(1)
        payload = reader.take(length)
        return kind, 0, payload if kind == "string" else None
    raise _Problem(reader.root, "not valid msgpack (invalid format byte)")


def _text(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def first_problem(data: bytes, root: str) -> str | None:
    """``"<path>: <problem>"`` for the first problem of ``data`` in byte order, or None."""
    try:
        _walk(data, root, semantic=True)
    except _Problem as problem:
        return str(problem)
    return None


def top_level_values(data: bytes) -> dict[str, list[bytes]] | None:
    """The bytes of each value of the top-level map, by key, for msgpack that is whole.

    Only the structure is checked (format bytes, length, depth): a record refused for a
    duplicate key or a bad string elsewhere still shows its other fields. None when the
    bytes are not whole msgpack or the top value is not a map; keys that are not valid
    UTF-8 strings are left out.
    """
    spans: dict[str, list[bytes]] = {}
    try:
        if not data or not _walk(data, "", semantic=False, spans=spans):
            return None
    except _Problem:
        return None
    return spans


def _walk(data: bytes, root: str, *, semantic: bool, spans: dict | None = None) -> bool:
    """Read ``data`` in byte order, raising the first problem; True when the top value is a map."""
    reader = _Reader(data, root)
    # One frame per open map or array: [is_map, items left or read, path, keys seen,
    # next value's path (maps; None while a key is due), item count (arrays)].
    stack: list[list] = []
    top_is_map = False
    top_key: str | None = None
    value_start = 0
    while True:
        frame = stack[-1] if stack else None
        reading_key = frame is not None and frame[0] and frame[4] is None
        if frame is None:
            path = root
        elif frame[0]:
            path = frame[2] if reading_key else frame[4]
        else:
            path = f"{frame[2]}[{frame[1]}]"
        kind, count, payload = _header(reader)
        if frame is None:
            top_is_map = kind == "map"
        if reading_key:
            key = _text(payload) if kind == "string" else None
            if semantic:
                if kind != "string":
                    raise _Problem(path, f"map keys must be strings, got {kind}")
                if key is None:
                    raise _Problem(path, "a map key is not valid UTF-8")
                if key in frame[3]:
                    raise _Problem(path, f"duplicate map key '{key}'")
            frame[3].add(key)
            frame[4] = child_path(frame[2], key if key is not None else "?")
            if len(stack) == 1:
                top_key, value_start = key, reader.pos
            continue
        if semantic and kind == "extension":
            raise _Problem(path, "msgpack extension types are not allowed")
        if semantic and kind == "string" and _text(payload) is None:
            raise _Problem(path, "a string is not valid UTF-8")
        if kind in ("map", "array"):
            if len(stack) >= MAX_DEPTH:
                raise _Problem(root, "not valid msgpack (nested too deeply)")
            if count:
                stack.append([kind == "map", count if kind == "map" else 0, path, set(), None, count])
                continue
        # One value done: close every container it completes.
        while stack:
            top = stack[-1]
            if len(stack) == 1 and top[0] and spans is not None and top_key is not None:
                spans.setdefault(top_key, []).append(data[value_start:reader.pos])
            if top[0]:
                top[1] -= 1
                top[4] = None
                done = top[1] == 0
            else:
                top[1] += 1
                done = top[1] == top[5]
            if not done:
                break
            stack.pop()
        if not stack:
            break
    if reader.pos != len(data):
        raise _Problem(root, "not valid msgpack (extra bytes after the record)")
    return top_is_map
