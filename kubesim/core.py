"""One simulated cluster: the store, the pod verbs, the kubelet and the fault injector, wired together."""

from __future__ import annotations

from .access import Gate, RequestLog
from .events import EventLog
from .faults import Faults
from .flowcontrol import FlowControl
from .kubelet import Kubelet
from .logs import LogStore
from .runtime import ContainerRuntime
from .service import PodService
from .settings import SimSettings
from .store import Store


class SimCore:
    """Everything a running kubesim holds; lives on the server's event loop."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.store = Store(history_size=settings.history_size, namespaces=list(settings.namespaces))
        self.service = PodService(self.store)
        self.events = EventLog(size=settings.history_size)
        self.logs = LogStore(limit_bytes=settings.log_limit_bytes)
        self.runtime = ContainerRuntime(settings, self.logs) if settings.run_containers else None
        self.kubelet = Kubelet(service=self.service, settings=settings, runtime=self.runtime, events=self.events)
        self.store.listeners.append(self.kubelet)
        self.store.listeners.append(self.logs)
        self.faults = Faults()
        self.gate = Gate(settings)
        self.requests = RequestLog(settings.request_log)
        self.limit_at_start = settings.limit.as_dict()
        self.limit = FlowControl(settings.limit)
        self.in_flight = 0
        """API requests being handled right now (watch streams not counted), latency waits and hangs included"""

    def stats(self) -> dict[str, object]:
        store = self.store
        return {
            "resourceVersion": store.rv,
            "startResourceVersion": store.start_rv,
            "compactedResourceVersion": store.history.compacted_rv,
            "pods": len(store.pods),
            "namespaces": sorted(store.namespaces),
            "watches": len(store.hub),
            "events": len(self.events.events),
            "eventWatches": len(self.events.hub),
            "historyEvents": len(store.history),
            "historySize": store.history.size,
            "creates": len(store.audit),
            "writes": store.writes,
            "hungRequests": self.faults.hung,
            "inFlight": self.in_flight,
            "limit": {"enabled": self.limit.settings.enabled, "executing": self.limit.executing, "waiting": self.limit.waiting,
                      "rejected": self.limit.rejected, "timedOut": self.limit.timed_out},
            "requests": dict(self.faults.requests),
            "kubeletPaused": self.kubelet.paused,
            "kubeletTasks": len(self.kubelet.tasks) + len(self.kubelet.waiting),
            "runContainers": self.runtime is not None,
            "containerProcesses": len(self.runtime.alive) if self.runtime is not None else 0,
            "kubeletDelays": self.settings.delays.as_dict(),
            "defaultRunSeconds": self.settings.default_run_seconds,
            "bookmarkInterval": self.settings.bookmark_interval,
        }
