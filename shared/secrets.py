"""Keeping secrets out of what podq prints: logs, `podq settings`, health output, error messages.

A secret is a password in a URL (``redis://user:password@host``), a setting whose
name says it holds one (``…_PASSWORD``, ``…_TOKEN``), or a bearer token. Every
log line of every service passes through :class:`ScrubbingFormatter`
(``podq.cli.configure_logging`` installs it), and `podq settings` prints
:func:`shown` values.
"""
from __future__ import annotations

import logging
import re

MASK = "***"
# scheme://user:password@  (the user part may be empty)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@]*:)(?P<secret>[^\s@/]+)(?=@)")
_BEARER = re.compile(r"(?i)(?P<head>\bbearer\s+)(?P<secret>[A-Za-z0-9\-._~+/]+=*)")
_SECRET_NAMES = ("PASSWORD", "TOKEN", "SECRET")


def scrub(text: str) -> str:
    """``text`` with URL passwords and bearer tokens masked."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return _BEARER.sub(lambda m: m.group("head") + MASK, text)


def is_secret(variable: str) -> bool:
    """True for a setting whose value is a secret as a whole (e.g. PODQ_REDIS_SENTINEL_PASSWORD)."""
    return any(word in variable.upper() for word in _SECRET_NAMES)


def shown(variable: str, value: object) -> object:
    """``value`` as it may be printed for setting ``variable``."""
    if value in (None, "", ()):
        return value
    if is_secret(variable):
        return MASK
    return scrub(value) if isinstance(value, str) else value


class ScrubbingFormatter(logging.Formatter):
    """Wraps another formatter; masks secrets in the whole rendered line (message and traceback)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return scrub(self._inner.format(record))
