"""Child-process hygiene shared by everything that starts services."""
from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child (``preexec_fn``): ask Linux to SIGTERM it when its parent dies.

    Keeps a SIGKILLed supervisor (or test session) from leaving services behind.
    Elsewhere than Linux this does nothing.
    """
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
