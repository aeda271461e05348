"""Errors raised by watcher/."""
from podq.shared.errors import PodqError


class WatcherError(PodqError):
    """Base of watcher/'s errors."""


class ResourceExpired(WatcherError):
    """The API server no longer holds the history a watch asked for (410 Gone / Expired)."""


class WatchFailed(WatcherError):
    """A watch or list request failed in a way a retry may fix (the loop backs off and resumes)."""
