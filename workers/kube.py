"""The worker's pod verbs: the only module of workers/ that talks to the Kubernetes API.

It does so through :mod:`podq.shared.kubeclient` (the one client-configuration builder
and the hot pod calls); workers/ never import ``kubernetes`` themselves. Pods go out and
come back as plain dicts (building the client's models costs about 300 µs per pod and buys
nothing here). Every failure is translated once, by :func:`podq.workers.errors.error_for`,
into a :class:`KubeApiError` subclass.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from podq.shared.kubeclient import Answer, ApiUnreachable, PodCalls, api_client
from podq.shared.settings import KubeSettings

from .errors import ApiTimeout, KubeApiError, TransportError, error_for, parse_retry_after

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PodRef:
    """What the worker needs of a pod it created or read."""

    name: str
    namespace: str
    uid: str
    annotations: dict[str, str]
    labels: dict[str, str]
    deleting: bool

    @classmethod
    def from_pod(cls, pod: dict[str, Any]) -> "PodRef":
        metadata = pod.get("metadata") or {}
        return cls(name=metadata.get("name", ""), namespace=metadata.get("namespace", ""),
                   uid=metadata.get("uid", ""), annotations=metadata.get("annotations") or {},
                   labels=metadata.get("labels") or {},
                   deleting=metadata.get("deletionTimestamp") is not None)


def open_kube(settings: KubeSettings, *, pool_size: int) -> "Kube":
    """The worker's pod verbs for the configured cluster, its pool sized for ``pool_size`` creates at once."""
    return Kube(api_client(settings, pool_size=pool_size), request_timeout=settings.request_timeout)


class Kube:
    """Pod verbs over one ApiClient's pool and authentication; thread-safe (urllib3's pool is).

    Bodies go out serialized by orjson and answers come back decoded by orjson, through
    :class:`podq.shared.kubeclient.PodCalls` (the official client's generated methods would
    validate the dict into a model and serialize it back on every call).
    """

    def __init__(self, api, *, request_timeout: float) -> None:
        self._calls = PodCalls(api)
        self.request_timeout = request_timeout

    def close(self) -> None:
        self._calls.close()

    def create_pod(self, pod: dict[str, Any], *, timeout: float | None = None) -> PodRef:
        namespace = pod["metadata"]["namespace"]
        return PodRef.from_pod(self._call(lambda t: self._calls.create(namespace, orjson.dumps(pod), timeout=t),
                                          timeout))

    def read_pod(self, name: str, namespace: str, *, timeout: float | None = None) -> PodRef:
        return PodRef.from_pod(self._call(lambda t: self._calls.read(name, namespace, timeout=t), timeout))

    def patch_pod(self, name: str, namespace: str, patch: dict[str, Any], *,
                  timeout: float | None = None) -> PodRef:
        """A strategic-merge patch (labels and annotations are maps, so a merge patch is the same)."""
        body = orjson.dumps(patch)
        return PodRef.from_pod(self._call(lambda t: self._calls.patch(name, namespace, body, timeout=t), timeout))

    def delete_pod(self, name: str, namespace: str, *, options: dict[str, Any] | None = None,
                   timeout: float | None = None) -> None:
        body = orjson.dumps(options) if options else None
        self._call(lambda t: self._calls.delete(name, namespace, body, timeout=t), timeout)

    def _call(self, send, timeout: float | None) -> dict[str, Any]:
        try:
            answer = send(timeout or self.request_timeout)
        except ApiUnreachable as exc:
            if exc.timed_out:
                raise ApiTimeout(status=0, reason="Timeout", message=str(exc)) from None
            raise TransportError(status=0, reason="ConnectionError", message=str(exc)) from None
        if not answer.ok:
            raise _error_of(answer)
        try:
            return answer.json()
        except orjson.JSONDecodeError:
            raise TransportError(status=0, reason="BadResponse", message="the API answered with non-JSON") from None


def _error_of(answer: Answer) -> KubeApiError:
    """The API's Status body read into podq's error class for its HTTP status."""
    reason, message = answer.reason, ""
    if answer.data:
        try:
            status = orjson.loads(answer.data)
        except orjson.JSONDecodeError:
            status = None
        if isinstance(status, dict):
            reason = status.get("reason") or reason
            message = status.get("message") or ""
        else:
            message = answer.data[:500].decode("utf-8", "replace")
    return error_for(answer.status, reason=reason, message=message,
                     retry_after=parse_retry_after(answer.retry_after))
