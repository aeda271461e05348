"""The admin API under /_kubesim/: fault injection, history, watches, kubelet control, audit log.

Not part of any Kubernetes API; admin.py is its client. Faults never apply to these routes.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from . import errors
from .core import SimCore
from .http_util import json_response, read_body

log = logging.getLogger(__name__)

PREFIX = "/_kubesim"


async def _body(request: web.Request) -> dict[str, Any]:
    body = await read_body(request, required=False)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise errors.bad_request("admin request body must be a JSON object")
    return body


class AdminRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core

    def add_to(self, app: web.Application) -> None:
        r = app.router
        r.add_get(PREFIX + "/health", self.health)
        r.add_get(PREFIX + "/stats", self.stats)
        r.add_post(PREFIX + "/reset", self.reset)
        r.add_put(PREFIX + "/latency", self.set_latency)
        r.add_delete(PREFIX + "/latency", self.clear_latency)
        r.add_get(PREFIX + "/faults", self.list_faults)
        r.add_post(PREFIX + "/faults", self.add_fault)
        r.add_delete(PREFIX + "/faults", self.clear_faults)
        r.add_delete(PREFIX + "/faults/{id}", self.remove_fault)
        r.add_post(PREFIX + "/hung/release", self.release_hung)
        r.add_post(PREFIX + "/compact", self.compact)
        r.add_put(PREFIX + "/history", self.set_history)
        r.add_post(PREFIX + "/watches/close", self.close_watches)
        r.add_put(PREFIX + "/bookmark-interval", self.set_bookmark_interval)
        r.add_post(PREFIX + "/kubelet/pause", self.pause)
        r.add_post(PREFIX + "/kubelet/resume", self.resume)
        r.add_get(PREFIX + "/kubelet/delays", self.get_delays)
        r.add_put(PREFIX + "/kubelet/delays", self.set_delays)
        r.add_put(PREFIX + "/kubelet/default-run-seconds", self.set_default_run_seconds)
        r.add_put(PREFIX + "/pods/{namespace}/{name}/status", self.set_pod_status)
        r.add_get(PREFIX + "/creates", self.creates)
        r.add_delete(PREFIX + "/creates", self.clear_creates)
        r.add_get(PREFIX + "/requests", self.recorded_requests)
        r.add_get(PREFIX + "/limit", self.get_limit)
        r.add_put(PREFIX + "/limit", self.set_limit)
        r.add_delete(PREFIX + "/limit", self.clear_limit)

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"ok": True, "resourceVersion": self.core.store.rv})

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(self.core.stats())

    async def reset(self, request: web.Request) -> web.Response:
        faults = self.core.faults
        faults.clear()
        faults.latency.clear()
        released = faults.release_hung()
        self.core.kubelet.resume()
        self.core.limit.apply(self.core.limit_at_start)
        return json_response({"released": released})

    async def set_latency(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.core.faults.set_latency(str(body.get("verb") or "*"), seconds=float(body.get("seconds", 0)), jitter=float(body.get("jitter", 0)))
        return json_response({verb: {"seconds": lat.seconds, "jitter": lat.jitter} for verb, lat in self.core.faults.latency.items()})

    async def clear_latency(self, request: web.Request) -> web.Response:
        self.core.faults.latency.clear()
        return json_response({})

    async def list_faults(self, request: web.Request) -> web.Response:
        return json_response({"items": self.core.faults.describe()})

    async def add_fault(self, request: web.Request) -> web.Response:
        body = await _body(request)
        rule = self.core.faults.add(**body)
        return json_response({"id": rule.id}, status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.core.faults.clear()
        return json_response({})

    async def remove_fault(self, request: web.Request) -> web.Response:
        try:
            rule_id = int(request.match_info["id"])
        except ValueError:
            raise errors.bad_request("fault id must be an integer") from None
        if not self.core.faults.remove(rule_id):
            raise errors.not_found(str(rule_id), resource="faults")
        return json_response({})

    async def release_hung(self, request: web.Request) -> web.Response:
        return json_response({"released": self.core.faults.release_hung()})

    async def compact(self, request: web.Request) -> web.Response:
        rv = self.core.store.compact()
        log.info("history compacted at resourceVersion %s", rv)
        return json_response({"compactedResourceVersion": rv})

    async def set_history(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.core.store.history.resize(int(body["size"]))
        return json_response({"size": self.core.store.history.size, "compactedResourceVersion": self.core.store.history.compacted_rv})

    async def close_watches(self, request: web.Request) -> web.Response:
        body = await _body(request)
        reason = "abort" if body.get("abrupt") else "closed by the admin API"
        return json_response({"closed": self.core.store.hub.close_all(reason)})

    async def set_bookmark_interval(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.core.settings.bookmark_interval = max(0.001, float(body["seconds"]))
        return json_response({"seconds": self.core.settings.bookmark_interval})

    async def pause(self, request: web.Request) -> web.Response:
        self.core.kubelet.pause()
        return json_response({"paused": True})

    async def resume(self, request: web.Request) -> web.Response:
        self.core.kubelet.resume()
        return json_response({"paused": False})

    async def get_delays(self, request: web.Request) -> web.Response:
        return json_response(self.core.settings.delays.as_dict())

    async def set_delays(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            self.core.settings.delays.update(body)
        except (ValueError, TypeError) as exc:
            raise errors.bad_request(str(exc)) from None
        return json_response(self.core.settings.delays.as_dict())

    async def set_default_run_seconds(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.core.settings.default_run_seconds = max(0.0, float(body["seconds"]))
        return json_response({"seconds": self.core.settings.default_run_seconds})

    async def set_pod_status(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        body = await _body(request)
        status = body.get("status")
        if not isinstance(status, dict):
            raise errors.bad_request('body must be {"status": {...}, "detachKubelet": true}')
        entry = self.core.service.entry(namespace, name)
        if body.get("detachKubelet", True):
            self.core.kubelet.detach(entry.obj["metadata"]["uid"])
        return json_response(self.core.service.set_status(namespace, name, status=status).raw)

    async def creates(self, request: web.Request) -> web.Response:
        namespace = request.query.get("namespace")
        prefix = request.query.get("namePrefix")
        items = [
            a
            for a in self.core.store.audit
            if (namespace is None or a["namespace"] == namespace) and (prefix is None or a["name"].startswith(prefix))
        ]
        return json_response({"items": items, "count": len(items)})

    async def clear_creates(self, request: web.Request) -> web.Response:
        count = len(self.core.store.audit)
        self.core.store.audit.clear()
        return json_response({"cleared": count})

    async def recorded_requests(self, request: web.Request) -> web.Response:
        """The request log (settings ``request_log``), oldest first."""
        items = list(self.core.requests.entries)
        return json_response({"items": items, "count": len(items)})

    async def get_limit(self, request: web.Request) -> web.Response:
        """The API limit model: settings, the level's state, every flow's counters."""
        return json_response(self.core.limit.describe())

    async def set_limit(self, request: web.Request) -> web.Response:
        """Change the API limit model's settings (any of them; ``enabled`` defaults to true)."""
        body = await _body(request)
        body.setdefault("enabled", True)
        try:
            self.core.limit.apply(body)
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
        return json_response(self.core.limit.describe())

    async def clear_limit(self, request: web.Request) -> web.Response:
        """Turn the API limit model off (requests waiting in its queues go at once); settings are kept."""
        self.core.limit.apply({"enabled": False})
        return json_response(self.core.limit.describe())
