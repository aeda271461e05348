"""The Kubernetes client adapter shared by workers/ and watcher/: the one place either gets an API client.

:func:`api_client` is the ONE client-configuration builder: the official client's own
loading (kubeconfig with its exec plugins and token refresh, or the in-cluster service
account), podq's pool size, no client-side retries (podq's policies retry, after reading
the pod by name). Both services build their client here.

:class:`PodCalls` sends the hot pod calls (create, read by name, patch, delete) with a body
podq has already serialized (orjson), through that same client's connection pool, TLS and
authentication (``ApiClient.update_params_for_auth``, which asks the configuration for the
token and so runs its refresh hook). The generated API methods of the client (37.x) validate
every argument with pydantic, build a ``V1Pod`` from the dict and serialize it back: ~150 µs
per create that buys podq nothing, since its pods are plain dicts already. Everything else
(lists, watches) goes through the official API classes.
"""
from __future__ import annotations

import inspect
import socket
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import quote, urlencode

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from .errors import PodqError
from .settings import KubeSettings

__all__ = ["ApiException", "ApiUnreachable", "Answer", "PodCalls", "api_client", "core_api"]

JSON = "application/json"
MERGE_PATCH = "application/strategic-merge-patch+json"

Timeout = float | tuple[float, float]


def api_client(settings: KubeSettings, *, pool_size: int,
               socket_options: Iterable[tuple[int, int, int]] | None = None) -> k8s.ApiClient:
    """An ApiClient for the configured cluster, its connection pool sized for ``pool_size`` threads."""
    configuration = k8s.Configuration()
    if settings.in_cluster:
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(config_file=settings.kubeconfig, context=settings.context,
                                    client_configuration=configuration, persist_config=False)
    # Fix the proxy the environment gives for this host now (what the client just computed). Left
    # "from the environment", the configuration re-reads the whole environment (getproxies) each time
    # its host is set, and the kubeconfig loader's token hook sets it before every request: ~200 µs a
    # call here. The connection pool is built once, from this value, either way.
    configuration.proxy = configuration.proxy
    if socket_options is not None:
        configuration.socket_options = list(socket_options)
    configuration.connection_pool_maxsize = max(pool_size, 4)
    configuration.retries = False  # podq's policies retry, after reading the pod by name
    return k8s.ApiClient(configuration)


def core_api(api: k8s.ApiClient) -> k8s.CoreV1Api:
    """The official CoreV1 API over ``api`` (lists, watches: everything but the hot pod calls)."""
    return k8s.CoreV1Api(api)


def keepalive_options(*, idle: int, interval: int, count: int) -> list[tuple[int, int, int]]:
    """TCP keepalive socket options, for long watches.

    The same options as the client's own helper (``kubernetes.utils.keepalive``, new in 37.x), built
    here so that kubernetes 36.0.3, the low end of podq's range (Airflow's provider), works too:
    urllib3's defaults (Nagle off; urllib3 replaces rather than merges them), then keepalive.
    """
    options = list(urllib3.connection.HTTPConnection.default_socket_options)
    options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", count)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


class ApiUnreachable(PodqError):
    """No HTTP answer: the connection failed, TLS failed, or no answer came in time (``timed_out``)."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer of the API server: status, the headers podq reads, the raw body."""

    status: int
    reason: str
    retry_after: str | None
    data: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    def json(self) -> Any:
        """The body decoded; raises ``orjson.JSONDecodeError`` on a body that is not JSON."""
        return orjson.loads(self.data) if self.data else {}


class PodCalls:
    """The hot pod calls over one ApiClient's pool and authentication; thread-safe (urllib3's pool is)."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self._api = api
        self._manager = api.rest_client.pool_manager
        self._host = api.configuration.host
        # 37.x's update_params_for_auth also takes the request (path, method, body); 36.x only the first three.
        self._auth_takes_request = "resource_path" in inspect.signature(api.update_params_for_auth).parameters
        # Without a proxy, every request goes to one connection pool (the manager's own, with its TLS
        # settings): take it once instead of having the manager parse the URL and look it up each time.
        self._server: urllib3.HTTPConnectionPool | None = None
        self._prefix = ""
        if type(self._manager) is urllib3.PoolManager:
            self._server = self._manager.connection_from_url(self._host)
            self._prefix = (urllib3.util.parse_url(self._host).path or "").rstrip("/")

    def close(self) -> None:
        """Close the pooled connections and the client (urllib3 2 no longer closes a cleared manager's pools)."""
        if self._server is not None:
            self._server.close()
        self._api.close()

    def create(self, namespace: str, body: bytes, *, timeout: Timeout) -> Answer:
        return self.send("POST", f"/api/v1/namespaces/{_segment(namespace)}/pods", body=body, timeout=timeout)

    def read(self, name: str, namespace: str, *, timeout: Timeout) -> Answer:
        return self.send("GET", _pod_path(name, namespace), timeout=timeout)

    def patch(self, name: str, namespace: str, body: bytes, *, timeout: Timeout) -> Answer:
        """A strategic-merge patch (what the official client sends for an object patch)."""
        return self.send("PATCH", _pod_path(name, namespace), body=body, content_type=MERGE_PATCH, timeout=timeout)

    def delete(self, name: str, namespace: str, body: bytes | None = None, *, timeout: Timeout) -> Answer:
        return self.send("DELETE", _pod_path(name, namespace), body=body, timeout=timeout)

    def send(self, method: str, path: str, *, body: bytes | None = None, content_type: str = JSON,
             query: dict[str, str] | None = None, timeout: Timeout) -> Answer:
        """One request as the official client would send it, the body given already serialized."""
        headers = dict(self._api.default_headers)  # the client's User-Agent and any default headers
        headers["Accept"] = JSON
        if body is not None:
            headers["Content-Type"] = content_type
        queries: list[tuple[str, str]] = list((query or {}).items())
        # The client's own authentication: a token header (refreshed through the configuration's hook:
        # exec plugins, expiring service-account tokens), or nothing when client certificates authenticate.
        if self._auth_takes_request:
            self._api.update_params_for_auth(headers, queries, ["BearerToken"], path, method, None)
        else:
            self._api.update_params_for_auth(headers, queries, ["BearerToken"])
        target = path + (f"?{urlencode(queries)}" if queries else "")
        try:
            if self._server is not None:
                response = self._server.urlopen(method, self._prefix + target, body=body, headers=headers,
                                                timeout=_timeout(timeout), preload_content=True, redirect=False,
                                                assert_same_host=False)
            else:
                response = self._manager.request(method, self._host + target, body=body, headers=headers,
                                                 timeout=_timeout(timeout), preload_content=True, redirect=False)
        except urllib3.exceptions.TimeoutError as exc:
            raise ApiUnreachable(f"no answer in time ({exc})", timed_out=True) from None
        except urllib3.exceptions.MaxRetryError as exc:
            timed_out = isinstance(exc.reason, urllib3.exceptions.TimeoutError)
            raise ApiUnreachable(f"{type(exc.reason).__name__}: {exc.reason}", timed_out=timed_out) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiUnreachable(f"{type(exc).__name__}: {exc}", timed_out=False) from None
        return Answer(status=response.status, reason=response.reason or "",
                      retry_after=response.headers.get("Retry-After"), data=response.data)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _pod_path(name: str, namespace: str) -> str:
    return f"/api/v1/namespaces/{_segment(namespace)}/pods/{_segment(name)}"


def _timeout(value: Timeout) -> urllib3.Timeout:
    """The official client's reading of ``_request_timeout``: one number is the total, a pair (connect, read)."""
    if isinstance(value, tuple):
        return urllib3.Timeout(connect=value[0], read=value[1])
    return urllib3.Timeout(total=value)
