"""Kubernetes resource quantities (``100m``, ``256Mi``, ``1.5``, ``2e3``) as exact numbers.

The grammar is the API server's (k8s.io/apimachinery resource.Quantity): a signed decimal
number and one optional suffix, binary (``Ki`` … ``Ei``), decimal (``n u m k M G T P E``)
or a decimal exponent (``e3``, ``E-2``). Workers use it to keep default requests within a
job's limits; kubesim to refuse requests above limits as the API server does.
"""
from __future__ import annotations

import re
from fractions import Fraction

_QUANTITY = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "k": 10**3,
            "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def parse_quantity(value: object) -> Fraction | None:
    """The exact amount ``value`` stands for, or None when it is not a quantity.

    Integers and floats (a YAML ``cpu: 2``) count as plain numbers.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Fraction(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        return None
    sign, number, suffix = match.groups()
    amount = Fraction(number)
    if suffix in _BINARY:
        amount *= _BINARY[suffix]
    elif suffix in _DECIMAL:
        amount *= _DECIMAL[suffix]
    elif suffix:
        amount *= Fraction(10) ** int(suffix[1:])
    return -amount if sign == "-" else amount
