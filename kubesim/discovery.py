"""Discovery (/version, /api, /api/v1, /apis) and the Namespace resource (list, get, create)."""

from __future__ import annotations

from aiohttp import web

from . import errors
from .core import SimCore
from .http_util import json_response, read_body
from .pods import name_problem

VERSION = {
    "major": "1",
    "minor": "35",
    "emulationMajor": "1",
    "emulationMinor": "35",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "34",
    "gitVersion": "v1.35.0-kubesim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_POD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
API_RESOURCES = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "v1",
    "resources": [
        {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event",
         "verbs": ["get", "list", "watch"], "shortNames": ["ev"]},
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
         "verbs": ["create", "get", "list"], "shortNames": ["ns"]},
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": _POD_VERBS,
         "shortNames": ["po"], "categories": ["all"]},
        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
        {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get", "patch", "update"]},
    ],
}


class DiscoveryRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core

    def add_to(self, app: web.Application) -> None:
        for path, handler in (("/version", self.version), ("/api", self.api), ("/api/v1", self.api_v1), ("/apis", self.apis)):
            app.router.add_get(path, handler)
            app.router.add_get(path + "/", handler)  # the generated clients ask for "/version/" and "/api/v1/"
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.healthz)
        app.router.add_get("/livez", self.healthz)
        app.router.add_get("/api/v1/namespaces", self.list_namespaces)
        app.router.add_post("/api/v1/namespaces", self.create_namespace)
        app.router.add_get("/api/v1/namespaces/{name}", self.get_namespace)

    async def version(self, request: web.Request) -> web.Response:
        return json_response(VERSION)

    async def api(self, request: web.Request) -> web.Response:
        host = request.host or "127.0.0.1"
        return json_response(
            {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}
        )

    async def api_v1(self, request: web.Request) -> web.Response:
        return json_response(API_RESOURCES)

    async def apis(self, request: web.Request) -> web.Response:
        return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    async def list_namespaces(self, request: web.Request) -> web.Response:
        items = [{k: v for k, v in ns.items() if k not in ("kind", "apiVersion")} for _, ns in sorted(self.core.store.namespaces.items())]
        return json_response({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.core.store.rv)}, "items": items})

    async def get_namespace(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        ns = self.core.store.namespaces.get(name)
        if ns is None:
            raise errors.not_found(name, resource="namespaces")
        return json_response(ns)

    async def create_namespace(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        meta = (body or {}).get("metadata") or {}
        name = meta.get("name") or ""
        problem = name_problem(name) if name else "Required value"
        if problem:
            cause = {"reason": "FieldValueInvalid", "message": f'Invalid value: "{name}": {problem}', "field": "metadata.name"}
            raise errors.invalid(name, [cause], kind="Namespace", group_kind="namespaces")
        if name in self.core.store.namespaces:
            raise errors.already_exists(name, resource="namespaces")
        ns = self.core.store.add_namespace(name, labels=meta.get("labels"))
        return json_response(ns, status=201)
