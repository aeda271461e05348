"""podq's kombu transport survives Celery's cleanup after a broker connection loss (broker/store/kombu_transport.py).

The sequence is Celery's own (``Consumer.on_connection_error_after_connected``): the channels of
a connection hold deliveries they have not acknowledged, their BRPOPs are in flight, the server
goes away (a failover, a restart); Celery collects the connection, then closes it. With kombu's transport the
close raises ``AttributeError: 'NoneType' object has no attribute 'hostname'``, which is no
connection error, so the worker exits; with podq's it ends like the other errors of a dead
connection, and the delivery stays in kombu's unacked hash for the worker to give back.
"""
from __future__ import annotations

import socket

import pytest
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors

from podq.broker.embedded import EmbeddedRedis
from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.broker.store.kombu_transport import transport_path
from tests.support import wait_for

QUEUE = "podq-kombu-test"


def lose_the_server_with_deliveries_held(tmp_path, transport) -> int:
    """Two channels of one connection (a worker's task consumer on the default channel, and another
    one), each with an unacknowledged delivery and a BRPOP in flight; the server is SIGKILLed and
    Celery's cleanup follows. Returns how many deliveries kombu's unacked hash holds once the
    server is back (from its AOF)."""
    server = EmbeddedRedis(data_dir=str(tmp_path)).start()
    try:
        connection = Connection(server.url, transport=transport)
        held, channels = [], []
        for name in (f"{QUEUE}-1", f"{QUEUE}-2"):
            queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
            with connection.Producer() as producer:
                producer.publish({"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
            channel = connection.default_channel if name.endswith("1") else connection.channel()
            channels.append(channel)
            connection.Consumer(queue, channel=channel, accept=["json"],
                                callbacks=[lambda body, message: held.append(message)]).consume()
        wait_for(lambda: connection.drain_events(timeout=5) or len(held) == 2, message="both deliveries held")
        with pytest.raises(socket.timeout):
            connection.drain_events(timeout=0.2)   # the queues are empty: the BRPOPs stay in flight
        admin = connect(server.url)
        admin.config_set("appendfsync", "always")
        admin.bgrewriteaof()
        wait_for(lambda: admin.info("persistence")["aof_rewrite_in_progress"] == 0, message="the deliveries on disk")
        assert admin.hlen(keys.KOMBU_UNACKED) == 2
        admin.close()
        server.kill()
        # Celery 5.7, Consumer.on_connection_error_after_connected: the second channel's close fails
        # first (kombu closes the newest first), so the default channel outlives its transport.
        try:
            connection.collect(socket_timeout=2)
        except Exception:  # noqa: BLE001 - Celery ignores what collect raises
            pass
        try:
            ignore_errors(connection, connection.close)
        finally:
            for channel in channels:   # no second try at the interpreter's exit (kombu's finalizer)
                channel.do_restore = False
    finally:
        server.close()
    with EmbeddedRedis(data_dir=str(tmp_path), port=server.port) as again:
        client = connect(again.url)
        unacked = client.hlen(keys.KOMBU_UNACKED)
        client.close()
    return unacked


def test_kombus_own_transport_crashes_the_cleanup(tmp_path):
    """What podq's transport works around (if kombu fixes it, this fails: drop the workaround)."""
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'hostname'"):
        lose_the_server_with_deliveries_held(tmp_path, "redis")


def test_podqs_transport_ends_the_cleanup_like_any_connection_error(tmp_path):
    # The deliveries were neither lost nor given back twice: they wait in kombu's unacked hash.
    assert lose_the_server_with_deliveries_held(tmp_path, transport_path(False)) == 2
