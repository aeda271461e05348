"""The reaper: a tiny standard-library process that kills container process groups kubesim can no longer kill.

kubesim (``--run-containers``) starts it once; one line per change on its stdin tells it which process
groups exist (``+PGID``, written by each container's first process itself before it execs, so no moment
exists in which kubesim could die with a group the reaper does not know) and which are gone (``-PGID``,
from kubesim). When its stdin reaches end of file (kubesim exited, however it died: the write end lives
only in kubesim and its containers' first processes' inherited copies are closed at their exec) or it
receives SIGTERM (PR_SET_PDEATHSIG), it sends SIGKILL to every group it still knows and exits. Each
container's first process also carries PR_SET_PDEATHSIG itself; the reaper covers the processes that
first process started.

Run as a script (``python -I -S reaper.py``), so it imports nothing but the standard library.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def _apply(groups: set[int], data: bytes) -> None:
    for line in data.splitlines():
        text = line.strip()
        if text[:1] == b"+":
            groups.add(int(text[1:]))
        elif text[:1] == b"-":
            groups.discard(int(text[1:]))


def main() -> int:
    groups: set[int] = set()
    stdin = sys.stdin.fileno()

    def finish(*_: object) -> None:
        # first take in what kubesim wrote before it died (the pipe keeps it), then kill
        os.set_blocking(stdin, False)
        try:
            while chunk := os.read(stdin, 65536):
                _apply(groups, chunk)
        except OSError:
            pass
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    pending = b""
    while chunk := os.read(stdin, 65536):  # loop "reaper-commands": ends at end of file, when kubesim is gone
        data = pending + chunk
        cut = data.rfind(b"\n") + 1
        _apply(groups, data[:cut])
        pending = data[cut:]
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
