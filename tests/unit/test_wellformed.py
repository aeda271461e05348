"""The byte-order well-formedness rule (shared/wellformed.py) and the fast decoder agree."""
from __future__ import annotations

import random

import msgpack
import pytest

from podq.shared import codec
from podq.shared.errors import DecodeError
from podq.shared.wellformed import MAX_DEPTH, first_problem
from tests.support import mutated_records, raw_map as pairs


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


def test_walk_and_fast_decoder_agree_on_mutated_records():
    """Seeded fuzz: whatever the bytes, the fast path succeeds exactly when the walk finds nothing."""
    for data in mutated_records(random.Random(1234), 5000):
        problem = first_problem(data, "job")
        try:
            decoded = codec.loads(data, "job")
        except DecodeError as exc:
            assert problem == str(exc), data.hex()
        else:
            assert problem is None, data.hex()
            assert msgpack.unpackb(data, raw=False, strict_map_key=False) == decoded
