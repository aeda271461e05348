"""Kubernetes Events (core/v1) about podq's pods: why a Pending pod waits, and what a failed launch leaves.

A scope's :class:`NoticeLoop` lists the Events about pods in its namespace (or all namespaces) and
watches them from the list's resourceVersion (field selector ``involvedObject.kind=Pod``); each one is
turned into a :class:`Notice` once and handed to its :class:`~.scope.ScopeRunner`, whose tracker keeps
the last few per pod (the failure details of a job that never ran carry them) and turns the telling ones
(Warnings, image pulls and their back-off) into pending reasons. Events are advisory: missing some (the
loop restarts from a fresh list after an error, never replaying) loses no result, so the loop only
logs its failures and retries with backoff.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

import orjson
import urllib3

from podq.shared.loops import LoopCrashed, run_loop
from podq.shared.records import PendingReason

from .errors import WatchFailed
from .kube import KubePods, WatchStream

log = logging.getLogger(__name__)

# Normal events that say why a pod waits (every Warning does too).
TELLING_NORMAL = frozenset({"Pulling", "BackOff"})


@dataclass(frozen=True, slots=True)
class Notice:
    """One Kubernetes Event about a pod."""

    ref: str                    # the pod's namespace/name
    type: str
    reason: str
    message: str
    count: int = 1
    resource_version: str | None = None

    @property
    def telling(self) -> bool:
        """Whether it says why a Pending pod waits."""
        return self.type == "Warning" or self.reason in TELLING_NORMAL

    @property
    def same(self) -> tuple[str, str, str]:
        return self.type, self.reason, self.message

    def line(self) -> str:
        """``Warning FailedMount: MountVolume.SetUp failed … (×3)``: how failure details carry it."""
        times = f" (x{self.count})" if self.count > 1 else ""
        return f"{self.type} {self.reason}: {self.message}{times}"

    def pending_reason(self) -> PendingReason:
        return PendingReason(reason=self.reason, message=self.message or None)


def notice_of(raw: dict[str, Any]) -> Notice | None:
    """The one conversion of a raw Event; None when it is not about a pod."""
    involved = raw.get("involvedObject") or {}
    if involved.get("kind") != "Pod" or not involved.get("name"):
        return None
    return Notice(ref=f"{involved.get('namespace') or (raw.get('metadata') or {}).get('namespace') or ''}/"
                      f"{involved['name']}",
                  type=str(raw.get("type") or "Normal"), reason=str(raw.get("reason") or ""),
                  message=str(raw.get("message") or ""), count=int(raw.get("count") or 1),
                  resource_version=(raw.get("metadata") or {}).get("resourceVersion"))


class NoticeLoop:
    """Lists and watches one scope's pod Events, handing each batch to ``deliver``."""

    def __init__(self, *, name: str, namespace: str | None, kube: KubePods,
                 deliver: Callable[[list[Notice]], None], stop: threading.Event) -> None:
        self._name = name
        self._namespace = namespace
        self._kube = kube
        self._deliver = deliver
        self._stop = stop
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None
        self.received = 0

    def start(self) -> "NoticeLoop":
        self._thread = threading.Thread(target=self._main, name=f"podq-events-{self._name}", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            run_loop(f"events:{self._name}", self._session, stop=self._stop, max_crashes=1_000_000,
                     backoff=1.0, max_backoff=60.0)
        except LoopCrashed:  # pragma: no cover - the budget above is never reached in practice
            log.error("scope %s: the events loop gave up; pending reasons come from pod status only", self._name)

    def _session(self) -> bool:
        """List, then watch from the list until the stream ends (then the next session lists again)."""
        items, position = self._kube.list_events(self._namespace)
        self._hand([notice for raw in items if (notice := notice_of(raw)) is not None])
        stream = self._kube.watch_events(self._namespace, resource_version=position)
        self._stream = stream
        try:
            for lines in stream.lines():
                if self._stop.is_set():
                    break
                notices = []
                for line in lines:
                    event = orjson.loads(line)
                    if event.get("type") == "ERROR":
                        raise WatchFailed(f"events watch: {(event.get('object') or {}).get('message')}")
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        notice = notice_of(event.get("object") or {})
                        if notice is not None:
                            notices.append(notice)
                self._hand(notices)
        except urllib3.exceptions.ReadTimeoutError:
            log.debug("scope %s: the events watch was idle; listing again", self._name)
        except WatchFailed:
            if not self._stop.is_set():
                raise  # closed by close(): the end, not a failure
        finally:
            self._stream = None
            stream.close()
        return True

    def _hand(self, notices: list[Notice]) -> None:
        if notices:
            self.received += len(notices)
            self._deliver(notices)
