"""Who may call the API, and what they sent: optional TLS with client certificates, a required bearer
token, and a log of recent API requests.

By default kubesim serves plain HTTP and accepts every request (the kubeconfig it writes carries a
token nobody checks). Started with ``tls_cert_file``/``tls_key_file`` it serves HTTPS; with
``client_ca_file`` it asks for client certificates and accepts those the CA signed; with ``token``
it accepts ``Authorization: Bearer <token>``. Once either is set, a request that shows neither gets
401 Unauthorized, as an API server answers. The request log (``request_log`` > 0) keeps the newest
API requests as sent — method, path, query, content type, body — so tests can compare clients on the
wire (admin API: ``GET /_kubesim/requests``).
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections import deque
from typing import Any

import orjson
from aiohttp import web

from . import errors
from .settings import SimSettings


def ssl_context(settings: SimSettings) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP."""
    if not settings.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    if settings.client_ca_file:
        context.load_verify_locations(settings.client_ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL  # a bearer token may authenticate instead
    return context


class Gate:
    """Decides whether a request is authenticated; open (accepts all) unless a token or client CA is set."""

    def __init__(self, settings: SimSettings) -> None:
        self._bearer = f"Bearer {settings.token}" if settings.token else None
        self._certificates = bool(settings.client_ca_file)
        self.open = self._bearer is None and not self._certificates

    def check(self, request: web.Request) -> None:
        if self.open:
            return
        if self._bearer is not None and request.headers.get("Authorization") == self._bearer:
            return
        if self._certificates and request.transport is not None and request.transport.get_extra_info("peercert"):
            return  # the TLS handshake verified it against the client CA
        raise errors.ApiError(code=401, reason="Unauthorized", message="Unauthorized")


ANONYMOUS = "system:anonymous"


def identity(authorization: str | None, peercert: dict[str, Any] | None) -> str:
    """Who sent a request, as an API server names its user (API Priority and Fairness's flow).

    A service-account token (a JWT) names its ``sub`` (``system:serviceaccount:NS:NAME``); any other bearer
    token stands for a user of its own, named by the token's hash (kubesim keeps no token file); a client
    certificate names its subject's common name; nothing at all is ``system:anonymous``.
    """
    if authorization and authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
        return _token_user(token)
    if peercert:
        for rdn in peercert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return str(value)
    return ANONYMOUS


def _token_user(token: str) -> str:
    parts = token.split(".")
    if len(parts) == 3:
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            claims = None
        if isinstance(claims, dict) and isinstance(claims.get("sub"), str) and claims["sub"]:
            return claims["sub"]
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]


class RequestLog:
    """The newest ``size`` API requests as they arrived (empty and free when ``size`` is 0)."""

    def __init__(self, size: int) -> None:
        self.enabled = size > 0
        self.entries: deque[dict[str, Any]] = deque(maxlen=max(size, 1))

    async def record(self, request: web.Request) -> None:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self.entries.append({
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "contentType": request.headers.get("Content-Type"),
            "accept": request.headers.get("Accept"),
            "authorization": request.headers.get("Authorization"),
            "body": body,
        })
