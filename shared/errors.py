"""The errors every podq package shares."""


class PodqError(Exception):
    """Base of every error podq raises on purpose."""


class DecodeError(PodqError, ValueError):
    """A wire payload could not be read; the message says what and where."""


class SettingsError(PodqError, ValueError):
    """A PODQ_ setting is missing or malformed; the message names the variable."""
