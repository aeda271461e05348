"""Small HTTP helpers shared by the route modules: JSON responses, bodies, query values."""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from aiohttp import web

from . import errors

JSON = "application/json"


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=raw, status=status, content_type=JSON, headers=headers)


def error_response(exc: errors.ApiError) -> web.Response:
    return json_response(exc.body(), status=exc.code, headers=exc.headers or None)


def check_accept(request: web.Request) -> None:
    accept = request.headers.get("Accept")
    if not accept:
        return
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("application/json", "application/*", "*/*") or media.startswith("application/json"):
            return
    raise errors.not_acceptable()


def media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


async def read_body(request: web.Request, *, required: bool = True) -> Any:
    """The request body as JSON (YAML when so labelled); a missing Content-Type means JSON."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise errors.bad_request("Object 'Kind' is missing in '{}'")
        return None
    kind = media_type(request)
    try:
        if kind.endswith("yaml"):
            return yaml.safe_load(raw)
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"error decoding request body: {exc}") from None


def query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{value}": must be an integer') from None


def query_bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def dry_run(request: web.Request, body: Any = None) -> bool:
    values = request.query.getall("dryRun", [])
    if isinstance(body, dict) and isinstance(body.get("dryRun"), list):
        values = [*values, *body["dryRun"]]
    for value in values:
        if value != "All":
            raise errors.bad_request(f'unsupported dryRun value "{value}": supported values: "All"')
    return bool(values)
