"""podq: launch Kubernetes pods for a scheduler through Redis and Celery."""

# The one place podq's version is written: pyproject.toml reads it from here (setuptools' ``attr:``),
# `podq --version` prints it, CHANGELOG.md names it.
__version__ = "0.1.0"
