"""Kubernetes ``Status`` errors: one exception type and the builders for each reason kubesim answers with."""

from __future__ import annotations

from typing import Any

import orjson

JsonDict = dict[str, Any]


class KubeSimError(Exception):
    """Base class of every error kubesim raises on purpose."""


class Dropped(KubeSimError):
    """The connection was dropped on purpose (an injected fault); there is nothing left to answer."""


class ApiError(KubeSimError):
    """An API failure that is answered with a ``Status`` body and the HTTP code it carries."""

    def __init__(
        self,
        *,
        code: int,
        reason: str,
        message: str,
        details: JsonDict | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> JsonDict:
        """The ``Status`` object as the apiserver serializes it."""
        body: JsonDict = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def body(self) -> bytes:
        return orjson.dumps(self.status())


def _details(name: str | None, *, kind: str = "pods", **extra: Any) -> JsonDict:
    details: JsonDict = {}
    if name:
        details["name"] = name
    details["kind"] = kind
    details.update(extra)
    return details


def not_found(name: str, *, resource: str = "pods") -> ApiError:
    return ApiError(code=404, reason="NotFound", message=f'{resource} "{name}" not found', details=_details(name, kind=resource))


def already_exists(name: str, *, resource: str = "pods") -> ApiError:
    return ApiError(
        code=409, reason="AlreadyExists", message=f'{resource} "{name}" already exists', details=_details(name, kind=resource)
    )


def conflict(name: str, *, why: str = "") -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        code=409,
        reason="Conflict",
        message=f'Operation cannot be fulfilled on pods "{name}": {why}',
        details=_details(name),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(code=400, reason="BadRequest", message=message)


def invalid(name: str, causes: list[JsonDict], *, kind: str = "Pod", group_kind: str = "pods") -> ApiError:
    """422 Invalid; each cause is ``{"reason", "message", "field"}``, message is ``field: message``."""
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(
        code=422,
        reason="Invalid",
        message=f'{kind} "{name}" is invalid: {joined}',
        details={"name": name, "kind": group_kind, "causes": causes} if name else {"kind": group_kind, "causes": causes},
    )


def list_options_invalid(field: str, message: str) -> ApiError:
    cause = {"reason": "FieldValueForbidden", "message": message, "field": field}
    return ApiError(
        code=422,
        reason="Invalid",
        message=f'ListOptions.meta.k8s.io "" is invalid: {field}: {message}',
        details={"group": "meta.k8s.io", "kind": "ListOptions", "causes": [cause]},
    )


def expired(message: str) -> ApiError:
    return ApiError(code=410, reason="Expired", message=message)


def too_old(requested: int, oldest: int) -> ApiError:
    return expired(f"too old resource version: {requested} ({oldest})")


def too_large(requested: int, current: int) -> ApiError:
    return ApiError(
        code=504,
        reason="Timeout",
        message=f"Too large resource version: {requested}, current: {current}",
        details={
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    )


def unsupported_media(content_type: str) -> ApiError:
    return ApiError(
        code=415,
        reason="UnsupportedMediaType",
        message=(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
            "application/strategic-merge-patch+json"
            + (f" (got {content_type})" if content_type else "")
        ),
    )


def not_acceptable() -> ApiError:
    return ApiError(
        code=406,
        reason="NotAcceptable",
        message="only the following media types are accepted: application/json, application/yaml",
    )


def method_not_allowed(method: str) -> ApiError:
    return ApiError(code=405, reason="MethodNotAllowed", message=f"the server does not allow this method on the requested resource ({method})")


def quota_exceeded(*, name: str | None) -> ApiError:
    """A ResourceQuota refusing a create (the quota admission plugin's message)."""
    return ApiError(
        code=403,
        reason="Forbidden",
        message=(f'pods "{name}" is forbidden: ' if name else "pods is forbidden: ")
        + "exceeded quota: compute-resources, requested: requests.cpu=1, used: requests.cpu=4, limited: requests.cpu=4",
        details={"name": name or "", "kind": "pods"},
    )


def forbidden(*, verb: str, namespace: str | None, name: str | None = None) -> ApiError:
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return ApiError(
        code=403,
        reason="Forbidden",
        message=(f'pods "{name}" is forbidden: ' if name else "pods is forbidden: ")
        + f'User "system:serviceaccount:podq:podq" cannot {verb} resource "pods" in API group "" {scope}',
        details=_details(name),
    )


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        code=429,
        reason="TooManyRequests",
        message="the server has received too many requests and has asked us to try again later",
        details={"retryAfterSeconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def internal_error(message: str = "an error on the server (\"injected by kubesim\") has prevented the request from succeeding") -> ApiError:
    return ApiError(code=500, reason="InternalError", message=message, details={"causes": [{"message": "injected by kubesim"}]})


def service_unavailable(retry_after: int = 1) -> ApiError:
    return ApiError(
        code=503,
        reason="ServiceUnavailable",
        message="the server is currently unable to handle the request",
        details={"retryAfterSeconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )
