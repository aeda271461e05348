"""The Kubernetes API adapter: the only module of workers/ that imports ``kubernetes``.

Pods go out and come back as plain dicts (building the client's models costs
about 300 µs per pod and buys nothing here). Every failure is translated once,
by :func:`podq.workers.errors.error_for`, into a :class:`KubeApiError` subclass.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from podq.shared.settings import KubeSettings

from .errors import ApiTimeout, KubeApiError, TransportError, error_for, parse_retry_after

log = logging.getLogger(__name__)


def api_client(settings: KubeSettings, *, pool_size: int) -> k8s.ApiClient:
    """An ApiClient for the configured cluster, its connection pool sized for ``pool_size`` threads."""
    configuration = k8s.Configuration()
    if settings.in_cluster:
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(config_file=settings.kubeconfig, context=settings.context,
                                    client_configuration=configuration, persist_config=False)
    configuration.connection_pool_maxsize = max(pool_size, 4)
    configuration.retries = False  # podq's policy retries, after reading the pod by name
    return k8s.ApiClient(configuration)


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


class Kube:
    """Pod verbs over one ApiClient; thread-safe (urllib3's pool is)."""

    def __init__(self, api: k8s.ApiClient, *, request_timeout: float) -> None:
        self._api = api
        self._core = k8s.CoreV1Api(api)
        self.request_timeout = request_timeout

    def close(self) -> None:
        self._api.close()

    def create_pod(self, pod: dict[str, Any], *, timeout: float | None = None) -> PodRef:
        namespace = pod["metadata"]["namespace"]
        response = self._call(self._core.create_namespaced_pod, namespace, pod, timeout=timeout)
        return PodRef.from_pod(response)

    def read_pod(self, name: str, namespace: str, *, timeout: float | None = None) -> PodRef:
        return PodRef.from_pod(self._call(self._core.read_namespaced_pod, name, namespace, timeout=timeout))

    def patch_pod(self, name: str, namespace: str, patch: dict[str, Any], *,
                  timeout: float | None = None) -> PodRef:
        """A strategic-merge patch (labels and annotations are maps, so a merge patch is the same)."""
        return PodRef.from_pod(self._call(self._core.patch_namespaced_pod, name, namespace, patch,
                                          timeout=timeout))

    def delete_pod(self, name: str, namespace: str, *, options: dict[str, Any] | None = None,
                   timeout: float | None = None) -> None:
        self._call(self._core.delete_namespaced_pod, name, namespace, body=options or None,
                   timeout=timeout)

    def _call(self, method, *args, timeout: float | None, **kwargs) -> dict[str, Any]:
        try:
            response = method(*args, _preload_content=False, _request_timeout=timeout or self.request_timeout,
                              **kwargs)
            data = response.data
        except ApiException as exc:
            raise _translate_api_exception(exc) from None
        except urllib3.exceptions.TimeoutError as exc:
            raise ApiTimeout(status=0, reason="Timeout", message=f"no answer in time ({exc})") from None
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError(status=0, reason="ConnectionError", message=f"{type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise TransportError(status=0, reason="ConnectionError", message=f"{type(exc).__name__}: {exc}") from None
        try:
            return orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            raise TransportError(status=0, reason="BadResponse", message="the API answered with non-JSON") from None


def _translate_api_exception(exc: ApiException) -> KubeApiError:
    if not exc.status:
        # The client reports some transport problems (TLS) as status 0.
        return TransportError(status=0, reason="ConnectionError", message=str(exc.reason or exc))
    reason, message = exc.reason, ""
    if exc.body:
        try:
            status = orjson.loads(exc.body)
        except orjson.JSONDecodeError:
            status = None
        if isinstance(status, dict):
            reason = status.get("reason") or reason
            message = status.get("message") or ""
        else:
            message = str(exc.body)[:500]
    headers = exc.headers or {}
    return error_for(exc.status, reason=reason, message=message,
                     retry_after=parse_retry_after(headers.get("Retry-After")))
