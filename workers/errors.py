"""workers/' errors, and the one place a Kubernetes API status becomes an error class.

:func:`error_for` is the classification table (docs/pods.md, "API error policy"):
every status the worker can meet maps to exactly one class, and the class says
whether the call may be retried.
"""
from __future__ import annotations

from podq.shared.errors import PodqError


class WorkerError(PodqError):
    """Base of workers/' errors."""


class PodBuildError(WorkerError):
    """The pod for a job could not be built; ``reason`` is the result's failure reason."""

    reason = "PodBuildError"


class MutationHookError(PodBuildError):
    """The configured pod mutation hook raised or returned something that is not a pod."""

    reason = "PodMutationHookError"


class KubeApiError(WorkerError):
    """A Kubernetes API call failed; ``reason``/``message`` come from the API's Status."""

    retryable = False

    def __init__(self, *, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class TransientApiError(KubeApiError):
    """Worth retrying: the same call may succeed later."""

    retryable = True


class TooManyRequests(TransientApiError):
    """429: the API server asks us to slow down (``retry_after`` seconds when it says so)."""


class ServerError(TransientApiError):
    """500, 502, 503 or 504."""


class QuotaExceeded(TransientApiError):
    """403 caused by a ResourceQuota: capacity frees up as other pods finish."""


class TransportError(TransientApiError):
    """No HTTP answer: connection refused or reset, or a broken response."""


class ApiTimeout(TransportError):
    """No answer within the request timeout; a create may or may not have happened."""


class ConflictError(KubeApiError):
    """409: an object of that name already exists."""


class NotFoundError(KubeApiError):
    """404: the object (or for a create, the namespace) does not exist."""


class ForbiddenError(KubeApiError):
    """403 (other than quota): RBAC or an admission policy refuses the call."""


class InvalidError(KubeApiError):
    """400 or 422: the object itself was refused."""


class PermanentApiError(KubeApiError):
    """Any other status: retrying the same call will not help."""


_BY_STATUS: dict[int, type[KubeApiError]] = {
    400: InvalidError, 403: ForbiddenError, 404: NotFoundError, 409: ConflictError,
    422: InvalidError, 429: TooManyRequests,
    500: ServerError, 502: ServerError, 503: ServerError, 504: ServerError,
}
# Every answer the policy names, and 0 (no answer): podq_kube_requests_total's series from start-up.
KNOWN_STATUSES = (0, *_BY_STATUS)


def error_for(status: int | None, *, reason: str | None = None, message: str | None = None,
              retry_after: float | None = None) -> KubeApiError:
    """The error for an API answer with HTTP ``status`` (0 or None: no answer at all)."""
    status = status or 0
    message = message or ""
    if status == 0:
        return TransportError(status=0, reason=reason or "ConnectionError", message=message)
    cls = _BY_STATUS.get(status, PermanentApiError)
    if cls is ForbiddenError and "exceeded quota" in message:
        cls = QuotaExceeded
    return cls(status=status, reason=reason or cls.__name__, message=message, retry_after=retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds only, as the API server sends)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
