"""HTTP handlers for core/v1 Events: /api/v1/[namespaces/{ns}/]events, list and watch (read-only).

Lists have no paging (``limit`` is ignored, as a server may). Watches follow the pods' start-point rules:
no resourceVersion (or ``0``) sends an ADDED for every matching event first; N sends every kept event
after N; N older than the kept history gets one ERROR event (410 Expired).
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from . import errors
from .core import SimCore
from .events import EVENT_FIELDS
from .history import ADDED, event_line
from .http_util import JSON, json_response, query_bool
from .selectors import parse_field_selector, parse_label_selector
from .watch_stream import bookmark_line, error_line
from .watchers import Watcher


class EventRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/events", self.collection)
        app.router.add_get("/api/v1/namespaces/{namespace}/events", self.collection)
        app.router.add_get("/api/v1/namespaces/{namespace}/events/{name}", self.get)

    async def get(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        event = self.core.events.events.get((namespace, name))
        if event is None:
            raise errors.ApiError(code=404, reason="NotFound", message=f'events "{name}" not found',
                                  details={"name": name, "kind": "events"})
        return json_response(event)

    async def collection(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info.get("namespace")
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"), fields=EVENT_FIELDS)
        watcher = Watcher(namespace=namespace, labels=labels, fields=fields, max_buffer=self.core.settings.watch_buffer)
        log = self.core.events
        if query_bool(request, "watch"):
            return await self._watch(request, watcher)
        items = [event for event in log.events.values()
                 if (namespace is None or event["metadata"]["namespace"] == namespace) and watcher.matches(event)]
        body = {"kind": "EventList", "apiVersion": "v1", "metadata": {"resourceVersion": str(log.rv)}, "items": items}
        return json_response(orjson.dumps(body))

    async def _watch(self, request: web.Request, watcher: Watcher) -> web.StreamResponse:
        log = self.core.events
        text = request.query.get("resourceVersion") or "0"
        try:
            rv = int(text)
        except ValueError:
            raise errors.bad_request(f'invalid resource version "{text}"') from None
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        bookmarks = query_bool(request, "allowWatchBookmarks")
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        first: list[bytes] = []
        if rv == 0:
            first = [event_line(ADDED, orjson.dumps(event)) for event in log.events.values() if watcher.matches(event)
                     and (watcher.namespace is None or event["metadata"]["namespace"] == watcher.namespace)]
            watcher.after_rv = log.rv
        elif not log.history.available_from(rv):
            await response.write(error_line(errors.too_old(rv, log.history.compacted_rv + 1)))
            await response.write_eof()
            return response
        else:
            first = [line for event in log.history.since(rv) if (line := watcher.line_for(event)) is not None]
            watcher.after_rv = max(rv, log.rv)
        log.hub.add(watcher)
        try:
            if first:
                await response.write(b"".join(first))
            await self._pump(watcher, response, timeout=timeout, bookmarks=bookmarks)
        finally:
            log.hub.discard(watcher)
        await response.write_eof()
        return response

    async def _pump(self, watcher: Watcher, response: web.StreamResponse, *, timeout: float, bookmarks: bool) -> None:
        """Loop "event-watch-pump": write buffered lines until the deadline or a close."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not watcher.closed:
            left = deadline - loop.time()
            if left <= 0:
                if bookmarks:
                    await response.write(bookmark_line(self.core.events.rv).replace(b'"Pod"', b'"Event"', 1))
                return
            if not watcher.wake.is_set():
                try:
                    await asyncio.wait_for(watcher.wake.wait(), timeout=left)
                except TimeoutError:
                    pass
            lines = watcher.take()
            if lines:
                await response.write(b"".join(lines))
