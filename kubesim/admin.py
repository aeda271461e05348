"""A small synchronous client for kubesim's admin API (/_kubesim/...), using only the standard library.

    admin = Admin("http://127.0.0.1:PORT")          # or Admin.from_kubeconfig(path)
    admin.add_fault(action="429", verb="create", count=1, retry_after=2)
    admin.hang_creates(count=1)
    admin.compact()
    admin.creates(namespace="podq")                  # the create audit log
    admin.set_limit(rate=100)                        # the API server's limit: 100 mutating requests/s

Names and signatures here are stable: other podq tests depend on them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import yaml


class AdminError(Exception):
    """The admin API answered with an error (``status`` holds the HTTP code)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"kubesim admin API error {status}: {body}")
        self.status = status
        self.body = body


class Admin:
    """The admin API of one kubesim server."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_kubeconfig(cls, path: str, *, timeout: float = 10.0) -> Admin:
        """Find the server URL in a kubeconfig written by kubesim."""
        with open(path) as handle:
            config = yaml.safe_load(handle)
        current = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == current)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        return cls(cluster["server"], timeout=timeout)

    def _call(self, method: str, path: str, body: Any = None, *, query: dict[str, Any] | None = None) -> Any:
        url = f"{self.url}/_kubesim{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - loopback admin URL
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise AdminError(exc.code, exc.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    # -- state -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``{"ok": true, "resourceVersion": N}``."""
        return self._call("GET", "/health")

    def stats(self) -> dict[str, Any]:
        """Counters: resourceVersion, compactedResourceVersion, pods, watches, creates, writes, hungRequests,
        inFlight (API requests being handled now, watches aside), requests (per verb), kubelet state and delays."""
        return self._call("GET", "/stats")

    def resource_version(self) -> int:
        """The current cluster-wide resourceVersion."""
        return int(self.health()["resourceVersion"])

    def reset(self) -> None:
        """Clear every fault rule and latency, release hung requests, resume the kubelet."""
        self._call("POST", "/reset")

    # -- latency and faults ------------------------------------------------------------------------
    def set_latency(self, verb: str = "*", *, seconds: float, jitter: float = 0.0) -> None:
        """Delay every request of ``verb`` (create/get/list/watch/patch/update/delete/deletecollection or ``*``)
        by ``seconds`` plus up to ``jitter`` seconds at random."""
        self._call("PUT", "/latency", {"verb": verb, "seconds": seconds, "jitter": jitter})

    def clear_latency(self) -> None:
        """Remove all added latency."""
        self._call("DELETE", "/latency")

    def add_fault(
        self,
        *,
        action: str,
        verb: str = "*",
        namespace: str | None = None,
        name_prefix: str | None = None,
        rate: float = 1.0,
        count: int | None = None,
        retry_after: int = 1,
    ) -> int:
        """Add a fault rule; returns its id. The first rule that picks a request applies.

        action: ``"403"``, ``"429"`` (sends Retry-After: ``retry_after``), ``"500"``, ``"503"``, ``"410"`` (on a watch:
        a direct HTTP 410), ``"reset"`` (TCP reset before the request is done), ``"hang"`` (the request is done,
        e.g. the pod stored, but no answer ever comes), ``"reset-after"`` (done, then reset),
        ``"error-event-410"`` / ``"error-event-500"`` (watch: 200 then one ERROR event).
        A rule picks requests of ``verb`` in ``namespace`` (any when None) whose name starts with ``name_prefix``,
        with probability ``rate``, at most ``count`` times (None: no limit).
        """
        rule = {
            "action": action,
            "verb": verb,
            "namespace": namespace,
            "name_prefix": name_prefix,
            "rate": rate,
            "count": count,
            "retry_after": retry_after,
        }
        return int(self._call("POST", "/faults", rule)["id"])

    def remove_fault(self, rule_id: int) -> None:
        """Remove one fault rule by id."""
        self._call("DELETE", f"/faults/{rule_id}")

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._call("DELETE", "/faults")

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules, each with how many times it ``fired``."""
        return self._call("GET", "/faults")["items"]

    def hang_creates(self, *, count: int | None = 1, namespace: str | None = None, name_prefix: str | None = None) -> int:
        """The next ``count`` creates are stored but never answered (the ambiguous case); returns the rule id."""
        return self.add_fault(action="hang", verb="create", count=count, namespace=namespace, name_prefix=name_prefix)

    def release_hung(self) -> int:
        """Reset the connections of all hung requests; returns how many there were."""
        return int(self._call("POST", "/hung/release")["released"])

    def watch_gone(self, enabled: bool = True) -> None:
        """Answer every new watch with a direct HTTP 410 (``enabled``), or stop doing so."""
        for rule in self.faults():
            if rule["action"] == "410" and rule["verb"] == "watch":
                self.remove_fault(int(rule["id"]))
        if enabled:
            self.add_fault(action="410", verb="watch")

    # -- history and watches ---------------------------------------------------------------------
    def compact(self) -> int:
        """Forget the event history now: a watch from any older resourceVersion gets 410. Returns the current RV."""
        return int(self._call("POST", "/compact")["compactedResourceVersion"])

    def set_history_size(self, size: int) -> None:
        """Keep at most ``size`` pod events for watches to resume from."""
        self._call("PUT", "/history", {"size": size})

    def close_watches(self, *, abrupt: bool = False) -> int:
        """End every open watch stream now (cleanly, or with a TCP reset when ``abrupt``); returns how many."""
        return int(self._call("POST", "/watches/close", {"abrupt": abrupt})["closed"])

    def set_bookmark_interval(self, seconds: float) -> None:
        """Seconds between BOOKMARK events on watches that allow them (applies to new waits)."""
        self._call("PUT", "/bookmark-interval", {"seconds": seconds})

    # -- kubelet ----------------------------------------------------------------------------------
    def pause_kubelet(self) -> None:
        """Freeze the simulated scheduler and kubelet: pods keep their current status, deletions stay pending."""
        self._call("POST", "/kubelet/pause")

    def resume_kubelet(self) -> None:
        """Let the kubelet carry on."""
        self._call("POST", "/kubelet/resume")

    def kubelet_delays(self) -> dict[str, float]:
        """The current step delays in seconds."""
        return self._call("GET", "/kubelet/delays")

    def set_kubelet_delays(self, **delays: float) -> dict[str, float]:
        """Set step delays in seconds: schedule, start, sandbox, init, ready, teardown, kill, finalize, backoff,
        jitter (a fraction). Returns all delays."""
        return self._call("PUT", "/kubelet/delays", delays)

    def set_default_run_seconds(self, seconds: float) -> None:
        """How long a container runs when its pod has no run-seconds annotation."""
        self._call("PUT", "/kubelet/default-run-seconds", {"seconds": seconds})

    def set_pod_status(self, namespace: str, name: str, *, status: dict[str, Any], detach_kubelet: bool = True) -> dict[str, Any]:
        """Replace a pod's ``status`` (a real write: new RV, a MODIFIED event); returns the pod.
        With ``detach_kubelet`` the kubelet stops driving this pod's life (it still completes deletions)."""
        return self._call("PUT", f"/pods/{namespace}/{name}/status", {"status": status, "detachKubelet": detach_kubelet})

    # -- audit log ------------------------------------------------------------------------------
    def creates(self, *, namespace: str | None = None, name_prefix: str | None = None) -> list[dict[str, Any]]:
        """Every accepted create, in order: ``{namespace, name, uid, resourceVersion, time, creationTimestamp}``
        (``time`` is epoch seconds). Includes pods already deleted and creates whose answer hung."""
        return self._call("GET", "/creates", query={"namespace": namespace, "namePrefix": name_prefix})["items"]

    def create_count(self, *, namespace: str | None = None, name_prefix: str | None = None) -> int:
        """How many creates were accepted (see ``creates``)."""
        return len(self.creates(namespace=namespace, name_prefix=name_prefix))

    def clear_creates(self) -> int:
        """Empty the audit log; returns how many entries it had."""
        return int(self._call("DELETE", "/creates")["cleared"])

    def requests(self) -> list[dict[str, Any]]:
        """The API requests kubesim logged (started with ``request_log`` > 0), oldest first."""
        return self._call("GET", "/requests")["items"]

    # -- the API limit (API Priority and Fairness) -----------------------------------------------------
    def limit(self) -> dict[str, Any]:
        """The API limit model: ``settings`` (as ``set_limit`` takes them), ``seats`` (in effect),
        ``executing``, ``waiting``, ``dispatched``, ``rejected`` (queue full), ``timedOut`` (waited too
        long), ``retryAfter`` (what a 429 says now), ``flowSchema``/``priorityLevel`` (name, uid) and
        ``flows``: per caller identity ``{dispatched, rejected, timedOut, waiting, executing}``."""
        return self._call("GET", "/limit")

    def set_limit(
        self,
        *,
        rate: float | None = None,
        seats: int | None = None,
        queues: int | None = None,
        hand_size: int | None = None,
        queue_length: int | None = None,
        queue_wait: float | None = None,
        retry_after: int | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        """Turn the API limit model on (or change it while on); only the settings given change.

        rate: mutating requests completed per second (0: no rate, seats alone bound it); seats: executing at
        once (0: ceil(rate/10)); queues, hand_size, queue_length: the fair queues; queue_wait: seconds a
        request may wait before its 429; retry_after: pinned Retry-After seconds (0: kube-apiserver's own).
        Returns ``limit()``. AdminError 400 names a bad value.
        """
        values = {"rate": rate, "seats": seats, "queues": queues, "hand_size": hand_size, "queue_length": queue_length,
                  "queue_wait": queue_wait, "retry_after": retry_after, "enabled": enabled}
        return self._call("PUT", "/limit", {k: v for k, v in values.items() if v is not None})

    def clear_limit(self) -> dict[str, Any]:
        """Turn the API limit model off (its waiting requests go at once); its settings are kept."""
        return self._call("DELETE", "/limit")
