"""``GET /api/v1/namespaces/{ns}/pods/{name}/log``: a container's output as the API server and kubelet serve it.

Plain text (``text/plain``); errors are Status objects with the real messages: 404 for a missing pod, 400 for
a missing or wrong container name and for a container that has not started (the kubelet's wording), 422 for
invalid options. Parameters: ``container``, ``follow``, ``previous``, ``tailLines``, ``sinceSeconds``,
``sinceTime``, ``limitBytes``, ``timestamps`` (``pretty``, ``insecureSkipTLSVerifyBackend``, ``stream`` are
accepted and ignored). A pod not yet bound to a node answers 200 with no body, as the API server does.

With the simulated kubelet containers write nothing: the answer is empty, and ``follow`` lasts as long as the
container runs. With the container runtime (``--run-containers``) it is what the process wrote.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import errors
from .core import SimCore
from .http_util import query_int
from .logs import LogBuffer, LogOptions, render, select

JsonDict = dict[str, Any]
TEXT = "text/plain"
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("", "0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True, slots=True)
class LogQuery:
    container: str
    follow: bool
    previous: bool
    options: LogOptions


def _bool(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "")
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f'invalid value for {name}: "{value}": strconv.ParseBool: parsing "{value}": invalid syntax')


def _since_time(request: web.Request) -> int | None:
    text = request.query.get("sinceTime")
    if not text:
        return None
    try:
        at = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.bad_request(f'invalid value for sinceTime: "{text}": not an RFC 3339 time') from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=datetime.timezone.utc)
    return int(at.timestamp() * 1_000_000_000)


def parse_query(request: web.Request, name: str) -> LogQuery:
    """The options, checked as the API server checks PodLogOptions (400 for unreadable values, 422 for invalid ones)."""
    tail = query_int(request, "tailLines")
    limit = query_int(request, "limitBytes")
    since_seconds = query_int(request, "sinceSeconds")
    since_time = _since_time(request)
    causes: list[JsonDict] = []
    if tail is not None and tail < 0:
        causes.append({"reason": "FieldValueInvalid", "message": f"Invalid value: {tail}: must be greater than or equal to 0", "field": "tailLines"})
    if limit is not None and limit < 1:
        causes.append({"reason": "FieldValueInvalid", "message": f"Invalid value: {limit}: must be greater than 0", "field": "limitBytes"})
    if since_seconds is not None and since_time is not None:
        causes.append({"reason": "FieldValueForbidden", "message": "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified", "field": ""})
    elif since_seconds is not None and since_seconds < 1:
        causes.append({"reason": "FieldValueInvalid", "message": f"Invalid value: {since_seconds}: must be greater than 0", "field": "sinceSeconds"})
    if causes:
        raise errors.invalid(name, causes, kind="PodLogOptions", group_kind="PodLogOptions")
    since_ns = since_time
    if since_seconds is not None:
        since_ns = time.time_ns() - since_seconds * 1_000_000_000
    return LogQuery(
        container=request.query.get("container", ""),
        follow=_bool(request, "follow"),
        previous=_bool(request, "previous"),
        options=LogOptions(tail_lines=tail, since_ns=since_ns, limit_bytes=limit, timestamps=_bool(request, "timestamps")),
    )


def container_name(pod: JsonDict, requested: str) -> str:
    """The API server's choice of container: the one named (it must exist), else the only one."""
    spec, name = pod["spec"], pod["metadata"]["name"]
    containers = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        text = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if inits:
            text += f" or one of the init containers: [{' '.join(inits)}]"
        raise errors.bad_request(text)
    if requested not in containers and requested not in inits:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def container_id(pod: JsonDict, container: str, *, previous: bool) -> str:
    """The instance whose output is asked for, or the kubelet's 400 when there is none yet."""
    status = pod.get("status") or {}
    name = pod["metadata"]["name"]
    found = None
    for key in ("containerStatuses", "initContainerStatuses"):
        for item in status.get(key) or []:
            if item.get("name") == container:
                found = item
                break
        if found is not None:
            break
    if found is None:
        raise errors.bad_request(f'container "{container}" in pod "{name}" is not available')
    state, last = found.get("state") or {}, (found.get("lastState") or {}).get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return str(last["containerID"])
    if "running" in state:
        return str(found.get("containerID", ""))
    terminated = state.get("terminated")
    if terminated is not None or last is not None:
        cid = (terminated or {}).get("containerID") or (last or {}).get("containerID")
        if not cid:
            raise errors.bad_request(f'container "{container}" in pod "{name}" is terminated')
        return str(cid)
    waiting = state.get("waiting")
    if waiting is not None:
        reason = waiting.get("reason", "")
        why = {"ErrImagePull": "image can't be pulled", "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {why}')
    raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start - no logs yet')


def _running_as(core: SimCore, namespace: str, name: str, uid: str, container: str, cid: str) -> bool:
    """Whether the pod still exists and ``container`` still runs as instance ``cid``."""
    entry = core.store.get(namespace, name)
    if entry is None or entry.obj["metadata"]["uid"] != uid:
        return False
    for item in (entry.obj.get("status") or {}).get("containerStatuses") or []:
        if item.get("name") == container:
            return "running" in (item.get("state") or {}) and item.get("containerID") == cid
    for item in (entry.obj.get("status") or {}).get("initContainerStatuses") or []:
        if item.get("name") == container:
            return "running" in (item.get("state") or {}) and item.get("containerID") == cid
    return False


class _Budget:
    """limitBytes: what may still be sent (None: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def cut(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[: self.left]
        self.left -= len(data)
        return data

    @property
    def spent(self) -> bool:
        return self.left is not None and self.left <= 0


async def serve_log(request: web.Request, *, core: SimCore, query: LogQuery) -> web.StreamResponse:
    """The answer for one pod's log (the pod is read after the options were checked and the faults applied)."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    pod = core.service.entry(namespace, name).obj
    container = container_name(pod, query.container)
    if not pod["spec"].get("nodeName"):
        return web.Response(body=b"", content_type=TEXT)
    cid = container_id(pod, container, previous=query.previous)
    buffer = core.logs.get(cid)
    budget = _Budget(query.options.limit_bytes)
    first = render(select(buffer.lines if buffer else (), query.options), timestamps=query.options.timestamps)
    if not query.follow:
        return web.Response(body=budget.cut(first), content_type=TEXT)
    response = core.limit.label(web.StreamResponse(status=200))
    response.content_type = TEXT
    response.enable_chunked_encoding()
    await response.prepare(request)
    uid = pod["metadata"]["uid"]
    event = core.logs.waiter(uid)
    try:
        await response.write(budget.cut(first))
        next_seq = buffer.end_seq if buffer else 0
        while not budget.spent:  # loop "log-follow": ends when the instance ends, the pod goes or the server stops
            event.clear()
            buffer = core.logs.get(cid)
            if buffer is not None:
                fresh = buffer.since(next_seq)
                next_seq = buffer.end_seq
                if fresh:
                    await response.write(budget.cut(render(fresh, timestamps=query.options.timestamps)))
            if core.logs.closing or _ended(core, buffer, namespace, name, uid, container, cid):
                break
            await event.wait()
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away
    finally:
        core.logs.forget_waiter(uid, event)
    return response


def _ended(core: SimCore, buffer: LogBuffer | None, namespace: str, name: str, uid: str, container: str, cid: str) -> bool:
    if buffer is not None:
        return buffer.closed
    return not _running_as(core, namespace, name, uid, container, cid)
