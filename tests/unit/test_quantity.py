"""Kubernetes resource quantities parsed exactly (shared/quantity.py)."""
from __future__ import annotations

from fractions import Fraction

import pytest

from podq.shared.quantity import parse_quantity


@pytest.mark.parametrize("text, amount", [
    ("100m", Fraction(1, 10)), ("0.1", Fraction(1, 10)), (".5", Fraction(1, 2)), ("2", 2), (2, 2),
    ("256Mi", 256 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("1k", 1000), ("1e3", 1000), ("1E3", 1000),
    ("5E", 5 * 10**18), ("1.5Gi", 3 * 2**29), ("-1", -1), ("+1", 1), ("12n", Fraction(12, 10**9)),
])
def test_quantities(text, amount):
    assert parse_quantity(text) == amount


@pytest.mark.parametrize("text", ["", "Mi", "1 Mi", "1mi", "1.2.3", "abc", True, None, [1]])
def test_not_quantities(text):
    assert parse_quantity(text) is None


def test_binary_and_decimal_suffixes_compare_by_amount():
    assert parse_quantity("128Mi") < parse_quantity("256M") < parse_quantity("256Mi")
