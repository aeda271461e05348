"""The watcher's Kubernetes adapter: the only module of watcher/ that talks to the Kubernetes API.

Its client comes from :mod:`podq.shared.kubeclient`, the one configuration builder workers
use too (and the only module that imports ``kubernetes``); the pod reads and label patches
go through its pre-serialized hot calls. Lists and watches are read raw (``_preload_content=False``) and decoded with
orjson; the client never builds a model. Errors are mapped once: 410 →
:class:`ResourceExpired`, anything else a retry may fix → :class:`WatchFailed`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

import orjson
import urllib3
from podq.shared import naming
from podq.shared.kubeclient import (Answer, ApiException, ApiUnreachable, PodCalls, api_client, core_api,
                                    keepalive_options)
from podq.shared.settings import KubeSettings, WatcherSettings

from .errors import ResourceExpired, WatchFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ListPage:
    items: list[dict[str, Any]]
    resource_version: str
    next_token: str | None


def _api_client(kube: KubeSettings, watcher: WatcherSettings):
    """The shared builder's client, with TCP keepalive on its connections (watches idle for long)."""
    return api_client(kube, pool_size=16, socket_options=keepalive_options(
        idle=watcher.keepalive_idle, interval=watcher.keepalive_interval, count=watcher.keepalive_count))


def _failure(what: str, exc: Exception) -> Exception:
    if isinstance(exc, ApiException):
        if exc.status == 410:
            return ResourceExpired(f"{what}: {exc.status} {exc.reason}")
        return WatchFailed(f"{what}: HTTP {exc.status} {exc.reason}")
    return WatchFailed(f"{what}: {type(exc).__name__}: {exc}")


class WatchStream:
    """One open watch: iterate raw lines; :meth:`close` from any thread ends it."""

    def __init__(self, response: urllib3.HTTPResponse) -> None:
        self._response = response

    def lines(self) -> Iterator[list[bytes]]:
        """Lists of complete lines, as they arrive (a chunk may hold several events, or part of one)."""
        carry = b""
        try:
            for chunk in self._response.stream(amt=None, decode_content=False):
                if not chunk:
                    continue
                parts = (carry + chunk).split(b"\n") if carry else chunk.split(b"\n")
                carry = parts.pop()
                lines = [line for line in parts if line.strip()]
                if lines:
                    yield lines
        except urllib3.exceptions.ReadTimeoutError:
            raise
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as exc:
            raise WatchFailed(f"watch stream broke: {type(exc).__name__}: {exc}") from None
        if carry.strip():
            yield [carry]

    def close(self) -> None:
        try:
            self._response.shutdown()
        except Exception:  # noqa: BLE001 - best effort on a socket that may already be gone
            pass
        try:
            self._response.release_conn()
        except Exception:  # noqa: BLE001
            pass


class KubePods:
    """The pod reads the watcher makes, over one ApiClient (thread-safe)."""

    def __init__(self, kube: KubeSettings, watcher: WatcherSettings) -> None:
        self._settings = watcher
        self._api = _api_client(kube, watcher)
        self._core = core_api(self._api)
        self._calls = PodCalls(self._api)
        self.selector = naming.podq_selector()

    def close(self) -> None:
        self._calls.close()

    def _pods(self, namespace: str | None, **kwargs):
        if namespace is None:
            return self._core.list_pod_for_all_namespaces(**kwargs)
        return self._core.list_namespaced_pod(namespace, **kwargs)

    def list_page(self, namespace: str | None, *, token: str | None = None) -> ListPage:
        """One page of podq's pods (``limit`` from the settings)."""
        kwargs: dict[str, Any] = {"label_selector": self.selector, "limit": self._settings.list_page_size,
                                  "_preload_content": False,
                                  "_request_timeout": (self._settings.connect_timeout, self._settings.request_timeout)}
        if token:
            kwargs["_continue"] = token
        try:
            response = self._pods(namespace, **kwargs)
            body = orjson.loads(response.data)
        except Exception as exc:  # noqa: BLE001 - mapped to the watcher's errors
            raise _failure(f"list pods in {namespace or 'all namespaces'}", exc) from None
        meta = body.get("metadata") or {}
        return ListPage(items=body.get("items") or [], resource_version=meta.get("resourceVersion") or "",
                        next_token=meta.get("continue") or None)

    def watch(self, namespace: str | None, *, resource_version: str) -> WatchStream:
        """Open a watch from ``resource_version`` with bookmarks and the configured timeouts."""
        settings = self._settings
        try:
            response = self._pods(namespace, watch=True, resource_version=resource_version,
                                  allow_watch_bookmarks=True, timeout_seconds=settings.server_timeout,
                                  label_selector=self.selector, _preload_content=False,
                                  _request_timeout=(settings.connect_timeout, settings.idle_limit))
        except Exception as exc:  # noqa: BLE001
            raise _failure(f"watch pods in {namespace or 'all namespaces'} from {resource_version}", exc) from None
        return WatchStream(response)

    def _events(self, namespace: str | None, **kwargs):
        kwargs.setdefault("field_selector", POD_EVENTS)
        if namespace is None:
            return self._core.list_event_for_all_namespaces(**kwargs)
        return self._core.list_namespaced_event(namespace, **kwargs)

    def list_events(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        """The Events about pods (core/v1) now, and the list's resourceVersion."""
        settings = self._settings
        try:
            response = self._events(namespace, _preload_content=False,
                                    _request_timeout=(settings.connect_timeout, settings.request_timeout))
            body = orjson.loads(response.data)
        except Exception as exc:  # noqa: BLE001 - mapped to the watcher's errors
            raise _failure(f"list events in {namespace or 'all namespaces'}", exc) from None
        return body.get("items") or [], (body.get("metadata") or {}).get("resourceVersion") or ""

    def watch_events(self, namespace: str | None, *, resource_version: str) -> WatchStream:
        """Watch the Events about pods from ``resource_version``."""
        settings = self._settings
        try:
            response = self._events(namespace, watch=True, resource_version=resource_version,
                                    timeout_seconds=settings.server_timeout, _preload_content=False,
                                    _request_timeout=(settings.connect_timeout, settings.idle_limit))
        except Exception as exc:  # noqa: BLE001
            raise _failure(f"watch events in {namespace or 'all namespaces'} from {resource_version}", exc) from None
        return WatchStream(response)

    def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod as the API holds it (in or out of the watcher's selector); None when it does not exist."""
        answer = self._unless_gone(f"read pod {namespace}/{name}",
                                   lambda timeout: self._calls.read(name, namespace, timeout=timeout))
        return None if answer is None else answer.json()

    def exists(self, namespace: str, name: str) -> bool:
        """Whether the pod exists (in or out of the watcher's selector)."""
        return self._unless_gone(f"read pod {namespace}/{name}",
                                 lambda timeout: self._calls.read(name, namespace, timeout=timeout)) is not None

    def label_revoked(self, namespace: str, name: str) -> bool:
        """Label a pod ``airflow_pod_revoked=True``; False when it is gone already."""
        return self._unless_gone(f"label pod {namespace}/{name} revoked",
                                 lambda timeout: self._calls.patch(name, namespace, _REVOKED_PATCH,
                                                                   timeout=timeout)) is not None

    def label_done(self, namespace: str, name: str) -> bool:
        """Label a pod ``airflow_executor_done=True`` (it leaves the watch); False when it is gone already."""
        return self._unless_gone(f"label pod {namespace}/{name} done",
                                 lambda timeout: self._calls.patch(name, namespace, _DONE_PATCH,
                                                                   timeout=timeout)) is not None

    def tail_log(self, namespace: str, name: str, container: str, lines: int) -> list[str] | None:
        """The last ``lines`` lines of a container's log (each cut to ``LOG_LINE_CHARS``); None when the
        pod or its log is gone or the read fails (logged: the failure is published without them)."""
        settings = self._settings
        try:
            response = self._core.read_namespaced_pod_log(
                name, namespace, container=container, tail_lines=lines, _preload_content=False,
                _request_timeout=(settings.connect_timeout, settings.request_timeout))
            text = response.data.decode("utf-8", errors="replace")
        except Exception as exc:  # noqa: BLE001 - a log that cannot be read is left out, never a failed publish
            status = getattr(exc, "status", None)
            if status != 404:
                log.warning("pod %s/%s: reading the last %d lines of container %s's log failed: %s", namespace,
                            name, lines, container, f"HTTP {status}" if status else f"{type(exc).__name__}: {exc}")
            return None
        return [line[:LOG_LINE_CHARS] for line in text.splitlines()[-lines:]]

    def _unless_gone(self, what: str, call) -> Answer | None:
        """Run ``call(timeout)``: its answer, or None when the pod is not there (404)."""
        try:
            answer = call((self._settings.connect_timeout, self._settings.request_timeout))
        except ApiUnreachable as exc:
            raise WatchFailed(f"{what}: {exc}") from None
        if answer.status == 404:
            return None
        if not answer.ok:
            raise WatchFailed(f"{what}: HTTP {answer.status} {answer.reason}")
        return answer


POD_EVENTS = "involvedObject.kind=Pod"
LOG_LINE_CHARS = 4096
_DONE_PATCH = orjson.dumps({"metadata": {"labels": {naming.EXECUTOR_DONE: "True"}}})
_REVOKED_PATCH = orjson.dumps({"metadata": {"labels": {naming.POD_REVOKED: "True"}}})
