"""The one reading of a ledger hash: whole, or only some fields, with one error naming the field."""
from __future__ import annotations

import pytest

from podq.broker.store.ledger import LedgerEntry
from podq.shared.errors import DecodeError
from podq.shared.states import LedgerState


def test_reads_the_fields_it_is_given():
    entry = LedgerEntry.decode("j", {b"state": b"created", b"deliveries": b"2", b"updated_at": b"1.5", b"uid": None})
    assert (entry.state, entry.deliveries, entry.updated_at, entry.uid, entry.job) == \
        (LedgerState.CREATED, 2, 1.5, None, None)


@pytest.mark.parametrize(("fields", "message"), [
    ({b"state": b"paused"}, r"ledger j\.state: 'paused' is not a ledger state"),
    ({b"updated_at": b"soon"}, r"ledger j\.updated_at: 'soon' is not a number"),
])
def test_a_damaged_field_is_named(fields, message):
    with pytest.raises(DecodeError, match=message):
        LedgerEntry.decode("j", fields)
