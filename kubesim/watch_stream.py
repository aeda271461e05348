"""The watch endpoint: a chunked stream of one JSON event per line, with the apiserver's start-point rules."""

from __future__ import annotations

import asyncio
import logging
import random

import orjson
from aiohttp import web

from . import errors
from .core import SimCore
from .faults import reset_connection
from .history import ADDED, event_line
from .http_util import JSON, query_bool
from .selectors import parse_field_selector, parse_label_selector
from .watchers import Watcher

log = logging.getLogger(__name__)

_INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def bookmark_line(rv: int, *, initial_events_end: bool = False) -> bytes:
    meta: dict[str, object] = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_events_end:
        meta["annotations"] = {_INITIAL_EVENTS_END: "true"}
    obj = {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": {"containers": None}, "status": {}}
    return b'{"type":"BOOKMARK","object":' + orjson.dumps(obj) + b"}\n"


def error_line(exc: errors.ApiError) -> bytes:
    return b'{"type":"ERROR","object":' + exc.body() + b"}\n"


def _parse_rv(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        rv = int(text)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{text}"') from None
    if rv < 0:
        raise errors.bad_request(f'invalid resource version "{text}"')
    return rv


async def serve_watch(request: web.Request, *, core: SimCore, namespace: str | None) -> web.StreamResponse:
    q = request.query
    labels = parse_label_selector(q.get("labelSelector"))
    fields = parse_field_selector(q.get("fieldSelector"))
    rv = _parse_rv(q.get("resourceVersion"))
    match = q.get("resourceVersionMatch")
    send_initial = query_bool(request, "sendInitialEvents")
    if match and "sendInitialEvents" not in q:
        raise errors.list_options_invalid(
            "resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
        )
    if "sendInitialEvents" in q and match != "NotOlderThan":
        raise errors.list_options_invalid(
            "resourceVersionMatch",
            'Unsupported value: "": supported values: "NotOlderThan" (sendInitialEvents requires resourceVersionMatch=NotOlderThan)',
        )
    bookmarks = query_bool(request, "allowWatchBookmarks")
    timeout_text = q.get("timeoutSeconds")
    try:
        timeout = float(timeout_text) if timeout_text else 1800.0 * (1 + random.random())
    except ValueError:
        raise errors.bad_request(f'invalid value for timeoutSeconds: "{timeout_text}"') from None
    action = await core.faults.gate(verb="watch", namespace=namespace, name=None, transport=request.transport)
    if action == "hang":
        await core.faults.hang(request.transport)

    response = core.limit.label(web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"}))
    response.enable_chunked_encoding()
    await response.prepare(request)  # headers go out now: the client's call returns on them

    if action in ("error-event-410", "error-event-500"):
        exc = errors.too_old(rv or 0, core.store.history.compacted_rv + 1) if action.endswith("410") else errors.internal_error()
        await response.write(error_line(exc))
        await response.write_eof()
        return response

    store = core.store
    watcher = Watcher(namespace=namespace, labels=labels, fields=fields, max_buffer=core.settings.watch_buffer)
    first: list[bytes] = []
    if rv is None or rv == 0 or send_initial:
        for _key, entry in sorted(store.iter_pods(namespace)):
            if watcher.matches(entry.obj):
                first.append(event_line(ADDED, entry.raw))
        if send_initial and bookmarks:
            first.append(bookmark_line(store.rv, initial_events_end=True))
        watcher.after_rv = store.rv
    else:
        if not store.history.available_from(rv):
            await response.write(error_line(errors.too_old(rv, store.history.compacted_rv + 1)))
            await response.write_eof()
            return response
        for event in store.history.since(rv):
            line = watcher.line_for(event)
            if line is not None:
                first.append(line)
        watcher.after_rv = max(rv, store.rv)
    store.hub.add(watcher)  # no await since the snapshot above: no event can slip between the two
    try:
        if first:
            await response.write(b"".join(first))
        await _pump(watcher, response=response, core=core, timeout=timeout, bookmarks=bookmarks)
    finally:
        store.hub.discard(watcher)
    if watcher.close_reason == "abort":
        reset_connection(request.transport)
        raise errors.Dropped("watch aborted by the admin API")
    await response.write_eof()
    return response


async def _pump(watcher: Watcher, *, response: web.StreamResponse, core: SimCore, timeout: float, bookmarks: bool) -> None:
    """Loop "watch-pump": write buffered lines until the deadline, a close, or the client leaving.

    With bookmarks on, one goes out every ``bookmark_interval`` and one about 2 s before the deadline (as real
    servers do, so a client can resume from a fresh RV).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    next_bookmark = loop.time() + core.settings.bookmark_interval
    final_bookmark = deadline - 2.0 if timeout > 4.0 else None
    while not watcher.closed:
        now = loop.time()
        if now >= deadline:
            return
        wait = deadline - now
        if bookmarks:
            wait = min(wait, max(0.0, next_bookmark - now))
            if final_bookmark is not None:
                wait = min(wait, max(0.0, final_bookmark - now))
        if not watcher.wake.is_set():
            try:
                await asyncio.wait_for(watcher.wake.wait(), timeout=wait)
            except TimeoutError:
                pass
        lines = watcher.take()
        now = loop.time()
        if bookmarks and (now >= next_bookmark or (final_bookmark is not None and now >= final_bookmark)):
            lines.append(bookmark_line(core.store.rv))  # after the taken lines: the RV covers all of them
            next_bookmark = now + core.settings.bookmark_interval
            if final_bookmark is not None and now >= final_bookmark:
                final_bookmark = None
        if lines and watcher.close_reason != "abort":
            await response.write(b"".join(lines))


__all__ = ["bookmark_line", "error_line", "serve_watch"]
