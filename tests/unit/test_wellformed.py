"""The byte-order well-formedness rule (shared/wellformed.py) and the fast decoder agree."""
from __future__ import annotations

import random

import msgpack
import pytest

from podq.shared import codec
from podq.shared.errors import DecodeError
from podq.shared.wellformed import MAX_DEPTH, first_problem


def pairs(*items) -> bytes:
    """A msgpack map written pair by pair, so keys may repeat or be of any type."""
    out = bytearray(b"\xdf" + len(items).to_bytes(4, "big"))
    for key, value in items:
        out += key if isinstance(key, bytes) else msgpack.packb(key)
        out += value if isinstance(value, bytes) else msgpack.packb(value)
    return bytes(out)


@pytest.mark.parametrize("payload, problem", [
    (pairs(("a", 1), ("a", 2)), "job: duplicate map key 'a'"),
    (pairs(("spec", pairs(("containers", b"\x91" + pairs(("name", "x"), ("name", "y")))))),
     "job.spec.containers[0]: duplicate map key 'name'"),
    (pairs(("labels", pairs(("podq.io/x", pairs(("k", 1), ("k", 1)))))),
     "job.labels['podq.io/x']: duplicate map key 'k'"),
    (pairs(("a", 1), (7, 2)), "job: map keys must be strings, got integer"),
    (pairs(("a", pairs((b"\xc4\x03bin", 1)))), "job.a: map keys must be strings, got binary"),
    (pairs(("a", pairs((b"\x91\x01", 1)))), "job.a: map keys must be strings, got array"),
    (pairs(("command", b"\x92\xa2ok\xa2\xff\xfe")), "job.command[1]: a string is not valid UTF-8"),
    (pairs(("x", 1), (b"\xa1\xff", 1)), "job: a map key is not valid UTF-8"),
    (pairs(("a", b"\xd4\x05\x01")), "job.a: msgpack extension types are not allowed"),
    (pairs(("at", msgpack.packb(msgpack.Timestamp(1)))), "job.at: msgpack extension types are not allowed"),
    (b"\xc1", "job: not valid msgpack (invalid format byte)"),
    (pairs(("a", 1))[:-1], "job: not valid msgpack (incomplete record)"),
    (pairs(("a", 1)) + b"\x00", "job: not valid msgpack (extra bytes after the record)"),
    (b"\x91" * 2000, "job: not valid msgpack (nested too deeply)"),
    # Byte order decides: the duplicate comes before the cut.
    (pairs(("a", 1), ("a", 2), ("b", "long string"))[:-3], "job: duplicate map key 'a'"),
])
def test_first_problem_in_byte_order_names_the_path(payload, problem):
    assert first_problem(payload, "job") == problem
    with pytest.raises(DecodeError) as caught:
        codec.loads(payload, "job")
    assert str(caught.value) == problem


def test_nesting_limit_is_exactly_the_documented_depth():
    deepest = b"\x91" * (MAX_DEPTH - 1) + b"\x90"
    assert first_problem(deepest, "job") is None and codec.loads(deepest, "job") is not None
    assert first_problem(b"\x91" + deepest, "job") == "job: not valid msgpack (nested too deeply)"


def test_a_timestamp_lookalike_inside_a_string_is_not_an_extension():
    payload = msgpack.packb({"a": "\u00d6\u00ff", "b": b"\xd6\xff\x00\x00\x00\x01"}, use_bin_type=True)
    assert codec.loads(payload, "job") == {"a": "\u00d6\u00ff", "b": b"\xd6\xff\x00\x00\x00\x01"}


def _random_raw(rng: random.Random, depth: int = 0) -> bytes:
    """Random msgpack bytes: maps written pair by pair (keys may repeat or not be strings)."""
    choice = rng.randrange(9 if depth < 4 else 6)
    if choice == 0:
        return msgpack.packb(rng.choice([None, True, False, 0, -1, 127, 128, -33, 2**40, -2**40, 1.5]))
    if choice in (1, 2):
        return msgpack.packb("".join(rng.choice("aé☃\u212a-_") for _ in range(rng.randrange(40))))
    if choice == 3:
        return msgpack.packb(bytes(rng.randrange(256) for _ in range(rng.randrange(5))), use_bin_type=True)
    if choice == 4:
        size, head = rng.choice([(1, 0xd4), (4, 0xd6), (8, 0xd7)])
        return bytes([head, rng.choice([0xff, 0x00, 0x05])]) + b"\x00" * size
    if choice == 5:
        return msgpack.packb(rng.choice(["x", "scheduler_id", "spec"]))
    if choice == 6:
        items = [_random_raw(rng, depth + 1) for _ in range(rng.randrange(4))]
        return bytes([0x90 + len(items)]) + b"".join(items)
    count = rng.randrange(4)
    body = b"".join((msgpack.packb(rng.choice(["a", "b", "é", "k-1"])) if rng.random() < 0.9
                     else _random_raw(rng, depth + 1)) + _random_raw(rng, depth + 1) for _ in range(count))
    return bytes([0x80 + count]) + body


def test_walk_and_fast_decoder_agree_on_mutated_records():
    """Seeded fuzz: whatever the bytes, the fast path succeeds exactly when the walk finds nothing."""
    rng = random.Random(1234)
    for _ in range(5000):
        payload = bytearray(_random_raw(rng))
        for _ in range(rng.randrange(3)):
            if payload and rng.random() < 0.7:
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            else:
                del payload[rng.randrange(len(payload) + 1):]
        data = bytes(payload)
        problem = first_problem(data, "job")
        try:
            decoded = codec.loads(data, "job")
        except DecodeError as exc:
            assert problem == str(exc), data.hex()
        else:
            assert problem is None, data.hex()
            assert msgpack.unpackb(data, raw=False, strict_map_key=False) == decoded
