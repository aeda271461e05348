"""The Celery application podq's workers run, configured for at-least-once pod creation."""
from __future__ import annotations

from celery import Celery

from podq.broker.store import keys
from podq.broker.store.connection import celery_broker
from podq.shared.settings import RedisSettings, WorkerSettings

from .envelopes import CONTROL_TASK, CREATE_TASK


def celery_config(*, broker_url: str, worker: WorkerSettings, redis: RedisSettings | None = None) -> dict:
    """Celery settings: msgpack tasks (JSON for Celery's tools), late acks, requeue on a lost worker, short restore sweep.

    ``redis``: the TLS and Sentinel settings for ``broker_url`` (the same as every other client's).
    """
    broker = celery_broker(broker_url, redis or RedisSettings())
    visibility = worker.visibility_timeout
    transport = {
        "visibility_timeout": visibility,
        # Sweep for unacked messages of dead workers often, not every ~100 s.
        "unacked_restore_interval": max(1.0, min(10.0, visibility / 3)),
        "unacked_restore_throttle": 1,
        # A worker killed while it holds the restore mutex would block every sweep for the
        # default 300 s; the sweep takes milliseconds, so let the mutex lapse soon.
        "unacked_mutex_expire": max(2.0, min(60.0, visibility)),
        "health_check_interval": 25,
        "socket_timeout": 30,
        # BRPOP's timeout. With late acks, a worker whose last free slot was just acked
        # resumes consuming only when its event loop wakes up, which an idle BRPOP does
        # after this long (celery#4378, #7718); the default 1 s put p90 submit→running at ~1 s.
        "polling_interval": 0.05,
        **broker.options,
    }
    return {
        "broker_url": broker.url,
        # podq's kombu transport: a worker rides through a broker failover (broker/store/kombu_transport.py).
        "broker_transport": broker.transport,
        "broker_use_ssl": broker.tls,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        # podq never sends a task through Celery (intake writes msgpack envelopes itself), so this
        # only shapes remote-control replies: JSON, what Celery's own tools (`celery inspect`,
        # Flower) read by default. Both are accepted (their requests are JSON); never pickle.
        "task_serializer": "json",
        "accept_content": ["msgpack", "json"],
        "result_serializer": "msgpack",
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": worker.prefetch_multiplier,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_default_queue": keys.CELERY_QUEUE,
        "task_routes": {CREATE_TASK: {"queue": keys.CELERY_QUEUE},
                        CONTROL_TASK: {"queue": keys.CELERY_QUEUE}},
    }


def make_celery(*, broker_url: str, worker: WorkerSettings, redis: RedisSettings | None = None,
                name: str = "podq") -> Celery:
    """A Celery app for ``broker_url``; workers/ registers its tasks on it."""
    app = Celery(name, set_as_current=False)
    app.conf.update(celery_config(broker_url=broker_url, worker=worker, redis=redis))
    return app
