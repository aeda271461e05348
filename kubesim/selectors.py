"""Label and field selectors with the apiserver's grammar and semantics (apimachinery labels/fields)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request

_SPECIAL = set("!=(),<>")
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@functools.lru_cache(maxsize=4096)  # a create checks every label and annotation key, and keys repeat from pod to pod
def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid qualified label key, or None when it is."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None when it is (the empty value is valid)."""
    if value == "":
        return None
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _NAME.match(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        present = self.key in labels
        if op == "=" or op == "in":
            return present and labels[self.key] in self.values
        if op == "!=" or op == "notin":
            return not present or labels[self.key] not in self.values
        if op == "exists":
            return present
        if op == "!":
            return not present
        if not present:
            return False
        try:
            have = int(labels[self.key])
        except ValueError:
            return False
        bound = int(next(iter(self.values)))
        return have > bound if op == ">" else have < bound


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _SPECIAL:
            two = text[i : i + 2]
            if two in ("==", "!="):
                out.append(two)
                i += 2
            else:
                out.append(ch)
                i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            out.append(text[i:j])
            i = j
    return out


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.pos = 0

    def fail(self, why: str) -> ApiError:
        return bad_request(f"unable to parse requirement: {why}")

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> str | None:
        tok = self.peek()
        self.pos += 1
        return tok

    def key(self, tok: str | None) -> str:
        if tok is None or tok in _SPECIAL or tok in ("==", "!="):
            raise self.fail(f"found '{tok}', expected: identifier")
        problem = label_key_problem(tok)
        if problem:
            raise self.fail(f'<nil>: Invalid value: "{tok}": {problem}')
        return tok

    def value(self) -> str:
        tok = self.peek()
        if tok is None or tok in (",", ")"):
            return ""
        if tok in _SPECIAL or tok in ("==", "!="):
            raise self.fail(f"found '{tok}', expected: identifier")
        self.pos += 1
        problem = label_value_problem(tok)
        if problem:
            raise self.fail(f'values[0][{tok}]: Invalid value: "{tok}": {problem}')
        return tok

    def value_set(self) -> frozenset[str]:
        if self.take() != "(":
            raise self.fail("found '', expected: '('")
        values: set[str] = set()
        while True:
            values.add(self.value())
            tok = self.take()
            if tok == ")":
                return frozenset(values)
            if tok != ",":
                raise self.fail(f"found '{tok}', expected: ',' or ')'")

    def requirement(self) -> Requirement:
        tok = self.take()
        if tok == "!":
            return Requirement(self.key(self.take()), "!")
        key = self.key(tok)
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, "exists")
        self.pos += 1
        if op in ("=", "=="):
            return Requirement(key, "=", frozenset([self.value()]))
        if op == "!=":
            return Requirement(key, "!=", frozenset([self.value()]))
        if op in ("in", "notin"):
            return Requirement(key, op, self.value_set())
        if op in (">", "<"):
            bound = self.take() or ""
            try:
                int(bound)
            except ValueError:
                raise self.fail(f"for 'Gt', 'Lt' operators, the value must be an integer: {bound!r}") from None
            return Requirement(key, op, frozenset([bound]))
        raise self.fail(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")

    def parse(self) -> tuple[Requirement, ...]:
        reqs: list[Requirement] = []
        if not self.toks:
            return ()
        while True:
            reqs.append(self.requirement())
            tok = self.take()
            if tok is None:
                return tuple(reqs)
            if tok != ",":
                raise self.fail(f"found '{tok}', expected: ',' or 'end of string'")


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``labelSelector``; raises a 400 ApiError on bad syntax or invalid keys and values."""
    return LabelSelector(_LabelParser(text or "").parse())


def _pod_ips(pod: Mapping[str, Any]) -> str:
    ips = (pod.get("status") or {}).get("podIPs") or []
    return ",".join(str(ip.get("ip", "")) for ip in ips)


def _host_network(pod: Mapping[str, Any]) -> str:
    return "true" if (pod.get("spec") or {}).get("hostNetwork") else "false"


def _path(*keys: str) -> Callable[[Mapping[str, Any]], str]:
    def get(pod: Mapping[str, Any]) -> str:
        node: Any = pod
        for key in keys:
            node = node.get(key) if isinstance(node, Mapping) else None
            if node is None:
                return ""
        return str(node)

    return get


POD_FIELDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
    "spec.nodeName": _path("spec", "nodeName"),
    "spec.host": _path("spec", "nodeName"),
    "spec.restartPolicy": _path("spec", "restartPolicy"),
    "spec.schedulerName": _path("spec", "schedulerName"),
    "spec.serviceAccountName": _path("spec", "serviceAccountName"),
    "spec.hostNetwork": _host_network,
    "status.phase": _path("status", "phase"),
    "status.podIP": _path("status", "podIP"),
    "status.podIPs": _pod_ips,
    "status.nominatedNodeName": _path("status", "nominatedNodeName"),
}


@dataclass(frozen=True, slots=True)
class FieldTerm:
    field: str
    equal: bool
    value: str


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _term(text: str) -> FieldTerm:
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if text.startswith("!=", i):
            return FieldTerm(_unescape(text[:i]).strip(), False, _unescape(text[i + 2 :]))
        if text.startswith("==", i):
            return FieldTerm(_unescape(text[:i]).strip(), True, _unescape(text[i + 2 :]))
        if ch == "=":
            return FieldTerm(_unescape(text[:i]).strip(), True, _unescape(text[i + 1 :]))
        i += 1
    raise bad_request(f"invalid selector: '{text}'; can't understand '{text}'")


@dataclass(frozen=True, slots=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...]
    fields: Mapping[str, Callable[[Mapping[str, Any]], str]] | None = None
    """the resource's selectable fields (None: the Pod's)"""

    def matches(self, obj: Mapping[str, Any]) -> bool:
        table = POD_FIELDS if self.fields is None else self.fields
        for term in self.terms:
            have = table[term.field](obj)
            if (have == term.value) != term.equal:
                return False
        return True


def parse_field_selector(text: str | None, *, fields: Mapping[str, Callable[[Mapping[str, Any]], str]] | None = None) -> FieldSelector:
    """Parse ``fieldSelector`` for pods (or the resource whose ``fields`` are given); unknown fields give 400
    ``field label not supported``."""
    table = POD_FIELDS if fields is None else fields
    if not text or not text.strip():
        return FieldSelector((), fields)
    terms = tuple(_term(part) for part in _split_unescaped(text, ",") if part.strip())
    for term in terms:
        if term.field not in table:
            raise bad_request(f"field label not supported: {term.field}")
    return FieldSelector(terms, fields)
