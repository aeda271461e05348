"""HTTP handlers for the Pod resource: /api/v1/[namespaces/{ns}/]pods[/{name}[/status]]."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from . import errors, patching
from .core import SimCore
from .faults import reset_connection
from .http_util import dry_run, json_response, media_type, query_int, read_body
from .log_routes import parse_query, serve_log
from .selectors import parse_field_selector, parse_label_selector
from .service import DeleteOptions
from .store import Entry
from .watch_stream import serve_watch

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


def _object_bytes(result: Entry | JsonDict) -> bytes:
    return result.raw if isinstance(result, Entry) else orjson.dumps(result)


class PodRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.service = core.service

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/pods", self.list_all)
        app.router.add_get("/api/v1/watch/pods", self.watch_all)
        app.router.add_get("/api/v1/watch/namespaces/{namespace}/pods", self.watch_namespaced)
        base = "/api/v1/namespaces/{namespace}/pods"
        app.router.add_get(base, self.list_namespaced)
        app.router.add_post(base, self.create)
        app.router.add_delete(base, self.delete_collection)
        app.router.add_get(base + "/{name}", self.get)
        app.router.add_put(base + "/{name}", self.replace)
        app.router.add_patch(base + "/{name}", self.patch)
        app.router.add_delete(base + "/{name}", self.delete)
        app.router.add_get(base + "/{name}/status", self.get)
        app.router.add_put(base + "/{name}/status", self.replace_status)
        app.router.add_patch(base + "/{name}/status", self.patch_status)
        app.router.add_get(base + "/{name}/log", self.log)

    async def _gate(self, request: web.Request, verb: str, *, namespace: str | None, name: str | None = None) -> str | None:
        return await self.core.faults.gate(verb=verb, namespace=namespace, name=name, transport=request.transport)

    async def _finish(self, request: web.Request, action: str | None, *, response: web.Response) -> web.Response:
        if action == "hang":
            await self.core.faults.hang(request.transport)
        elif action == "reset-after":
            reset_connection(request.transport)
            raise errors.Dropped("injected connection reset after the request")
        return response

    # -- collection -----------------------------------------------------------------------------
    async def list_all(self, request: web.Request) -> web.StreamResponse:
        return await self._list(request, None)

    async def list_namespaced(self, request: web.Request) -> web.StreamResponse:
        return await self._list(request, request.match_info["namespace"])

    async def watch_all(self, request: web.Request) -> web.StreamResponse:
        return await serve_watch(request, core=self.core, namespace=None)

    async def watch_namespaced(self, request: web.Request) -> web.StreamResponse:
        return await serve_watch(request, core=self.core, namespace=request.match_info["namespace"])

    async def _list(self, request: web.Request, namespace: str | None) -> web.StreamResponse:
        q = request.query
        if q.get("watch", "").lower() in ("true", "1"):
            return await serve_watch(request, core=self.core, namespace=namespace)
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(q.get("fieldSelector"))
        limit = query_int(request, "limit") or 0
        self._check_list_rv(q.get("resourceVersion"), q.get("resourceVersionMatch"), has_continue=bool(q.get("continue")))
        action = await self._gate(request, "list", namespace=namespace)
        body = self.service.list_body(namespace, labels=labels, fields=fields, limit=max(0, limit), continue_token=q.get("continue"))
        return await self._finish(request, action, response=json_response(body))

    def _check_list_rv(self, rv_text: str | None, match: str | None, *, has_continue: bool) -> None:
        store = self.core.store
        if match and match not in ("NotOlderThan", "Exact"):
            raise errors.list_options_invalid("resourceVersionMatch", f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"')
        if match and not rv_text:
            raise errors.list_options_invalid("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")
        if has_continue and rv_text and rv_text != "0":
            raise errors.list_options_invalid("resourceVersion", "Forbidden: specifying resource version is not allowed when using continue")
        if not rv_text:
            return
        try:
            rv = int(rv_text)
        except ValueError:
            raise errors.bad_request(f'invalid resource version "{rv_text}"') from None
        if match == "Exact" and rv == 0:
            raise errors.list_options_invalid("resourceVersionMatch", 'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
        if rv > store.rv:
            raise errors.too_large(rv, store.rv)
        if match == "Exact" and rv < store.rv and not store.history.available_from(rv):
            raise errors.too_old(rv, store.history.compacted_rv + 1)

    async def create(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        body = await read_body(request)
        name = (body.get("metadata") or {}).get("name") if isinstance(body, dict) else None
        action = await self._gate(request, "create", namespace=namespace, name=name)
        result = self.service.create(namespace, body, dry_run=dry_run(request))
        return await self._finish(request, action, response=json_response(_object_bytes(result), status=201))

    async def delete_collection(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"))
        body = await read_body(request, required=False)
        options = self._delete_options(request, body)
        action = await self._gate(request, "deletecollection", namespace=namespace)
        items: list[bytes] = []
        for key, entry in sorted(self.core.store.iter_pods(namespace)):
            if labels.matches(entry.obj["metadata"].get("labels")) and fields.matches(entry.obj):
                result, _gone = self.service.delete(key[0], key[1], options=options)
                items.append(_object_bytes(result))
        list_rv = str(self.core.store.rv).encode()
        raw = b'{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"' + list_rv + b'"},"items":[' + b",".join(items) + b"]}"
        return await self._finish(request, action, response=json_response(raw))

    # -- one pod ----------------------------------------------------------------------------------
    async def get(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        action = await self._gate(request, "get", namespace=namespace, name=name)
        return await self._finish(request, action, response=json_response(self.service.entry(namespace, name).raw))

    async def log(self, request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        query = parse_query(request, name)
        action = await self._gate(request, "get", namespace=namespace, name=name)
        response = await serve_log(request, core=self.core, query=query)
        if isinstance(response, web.Response):
            return await self._finish(request, action, response=response)
        return response

    async def replace(self, request: web.Request, subresource: str | None = None) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        body = await read_body(request)
        action = await self._gate(request, "update", namespace=namespace, name=name)
        result = self.service.replace(namespace, name, body=body, subresource=subresource, dry_run=dry_run(request))
        return await self._finish(request, action, response=json_response(_object_bytes(result)))

    async def replace_status(self, request: web.Request) -> web.Response:
        return await self.replace(request, "status")

    async def patch(self, request: web.Request, subresource: str | None = None) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        content_type = media_type(request)
        if content_type not in patching.PATCH_TYPES:
            raise errors.unsupported_media(content_type)
        if content_type == patching.APPLY_PATCH and not request.query.get("fieldManager"):
            raise errors.ApiError(
                code=422,
                reason="Invalid",
                message='PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            )
        body = await read_body(request)
        action = await self._gate(request, "patch", namespace=namespace, name=name)
        if content_type == patching.APPLY_PATCH and self.core.store.get(namespace, name) is None and subresource is None:
            created = self.service.create(namespace, body, dry_run=dry_run(request))
            return await self._finish(request, action, response=json_response(_object_bytes(created), status=201))
        result = self.service.patch(
            namespace, name, patch=body, content_type=content_type, subresource=subresource, dry_run=dry_run(request)
        )
        return await self._finish(request, action, response=json_response(_object_bytes(result)))

    async def patch_status(self, request: web.Request) -> web.Response:
        return await self.patch(request, "status")

    def _delete_options(self, request: web.Request, body: Any) -> DeleteOptions:
        options = DeleteOptions(grace_period=query_int(request, "gracePeriodSeconds"), propagation=request.query.get("propagationPolicy"))
        if isinstance(body, dict):
            if body.get("gracePeriodSeconds") is not None:
                options.grace_period = int(body["gracePeriodSeconds"])
            pre = body.get("preconditions") or {}
            options.uid = pre.get("uid")
            options.resource_version = pre.get("resourceVersion")
            options.propagation = body.get("propagationPolicy") or options.propagation
        if options.propagation not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(f"propagationPolicy: Unsupported value: {options.propagation!r}")
        options.dry_run = dry_run(request, body)
        return options

    async def delete(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        body = await read_body(request, required=False)
        options = self._delete_options(request, body)
        action = await self._gate(request, "delete", namespace=namespace, name=name)
        result, _gone = self.service.delete(namespace, name, options=options)
        return await self._finish(request, action, response=json_response(_object_bytes(result)))
