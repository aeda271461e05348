"""PODQ_REDIS_URL's four schemes, read once; errors name the setting and never echo a password."""
from __future__ import annotations

import pytest

from podq.broker.store.connection import celery_broker, parse_url
from podq.shared.errors import SettingsError
from podq.shared.settings import RedisSettings


def test_a_plain_url():
    target = parse_url("redis://:s3cret@cache.example:6380/2")
    assert (target.tls, target.sentinel, target.hosts, target.db, target.password) == (
        False, False, (("cache.example", 6380),), 2, "s3cret")


def test_tls_and_defaults():
    target = parse_url("rediss://cache.example")
    assert (target.tls, target.hosts, target.db) == (True, (("cache.example", 6379),), 0)


def test_a_sentinel_url_names_every_sentinel_and_the_master():
    target = parse_url("redis+sentinel://app:pw@s1:26380,s2,[::1]:26381/podq-main/3")
    assert target.sentinel and not target.tls
    assert target.hosts == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (target.master, target.db, target.username, target.password) == ("podq-main", 3, "app", "pw")
    assert parse_url("rediss+sentinel://s1/podq").tls


@pytest.mark.parametrize("url, words", [
    ("http://x", "unknown scheme"),
    ("redis+sentinel://s1:26379", "names the master"),
    ("redis://a:1,b:2/0", "several are Sentinels"),
    ("redis://host:port/0", "is not a number"),
    ("redis://:hunter2@host/zero", "database must be a number"),
])
def test_a_malformed_url_is_named_without_its_password(url, words):
    with pytest.raises(SettingsError) as raised:
        parse_url(url)
    message = str(raised.value)
    assert message.startswith("PODQ_REDIS_URL") and words in message
    assert "hunter2" not in message


def test_redacted_hides_the_password():
    assert parse_url("redis+sentinel://u:hunter2@s1,s2/podq/1").redacted() == "redis+sentinel://u:***@s1:26379,s2:26379/podq/1"


def test_celery_gets_kombus_sentinel_form_and_podqs_transport():
    settings = RedisSettings(sentinel_password="sentinel-pw")
    broker = celery_broker("redis+sentinel://:p%40ss@s1:26380,s2/podq/0", settings)
    # One URL (kombu would switch an alternate URL back to its own transport); every Sentinel in the options.
    assert broker.url == "sentinel://:p%40ss@s1:26380/0"
    assert broker.options["sentinels"] == [["s1", 26380], ["s2", 26379]]
    assert broker.options["master_name"] == "podq"
    assert broker.options["sentinel_kwargs"]["password"] == "sentinel-pw"
    assert broker.tls is None
    assert broker.transport == "podq.broker.store.kombu_transport:SentinelTransport"
    plain = celery_broker("redis://h:1/0", settings)
    assert (plain.url, plain.transport, plain.options, plain.tls) == (
        "redis://h:1/0", "podq.broker.store.kombu_transport:Transport", {}, None)
