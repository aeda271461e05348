"""podq: launch Kubernetes pods for a scheduler through Redis and Celery."""
