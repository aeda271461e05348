"""``rediss://``: every service (Celery's transport included) over TLS, and certificate problems named.

The embedded Valkey has no TLS built in; tests.support.tls terminates TLS in front
of it (certificates made here with ``cryptography``, a client certificate required).
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import pytest

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.shared.errors import SettingsError
from podq.shared.settings import RedisSettings, load_settings
from podq.stack import Stack, StackOptions
from tests.support.system import Collector, make_jobs, new_scheduler
from tests.support.tls import CertificateAuthority, TlsProxy

# A certificate problem is reported at once, not retried like an outage (redis-py alone retries ~30 s).
PROMPT = 10.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(directory)
    return {"ca": ca.cert,
            "server": ca.issue("server", common_name="valkey", hosts=("localhost", "127.0.0.1")),
            "expired": ca.issue("expired", common_name="valkey", hosts=("localhost", "127.0.0.1"), expired=True),
            "elsewhere": ca.issue("elsewhere", common_name="valkey", hosts=("redis.example",)),
            "client": ca.issue("client", common_name="podq", client=True),
            "other_ca": CertificateAuthority(directory / "other", name="another CA").cert,
            "stranger": CertificateAuthority(directory / "stranger", name="stranger CA").issue(
                "stranger-client", common_name="podq", client=True)}


@pytest.fixture
def tls_server(redis_server, pki):
    with TlsProxy(target_port=redis_server.port, server=pki["server"], client_ca=pki["ca"]) as proxy:
        yield proxy


def tls_settings(pki, **overrides) -> RedisSettings:
    fields = {"tls_ca_file": str(pki["ca"]), "tls_cert_file": str(pki["client"].cert),
              "tls_key_file": str(pki["client"].key), **overrides}
    return RedisSettings(**fields)


def test_a_client_reaches_the_server_through_tls_with_a_client_certificate(tls_server, pki, redis_url):
    client = connect(f"rediss://localhost:{tls_server.port}/0", settings=tls_settings(pki))
    client.set("podq:tls-probe", "over tls")
    assert client.get("podq:tls-probe") == b"over tls"
    client.close()


@pytest.mark.parametrize("case, setting", [
    ("wrong CA", "PODQ_REDIS_TLS_CA_FILE"),
    ("no client certificate", "PODQ_REDIS_TLS_CERT_FILE"),
    ("client certificate of another CA", "PODQ_REDIS_TLS_CERT_FILE"),
    ("missing CA file", "PODQ_REDIS_TLS_CA_FILE"),
    ("certificate without its key", "PODQ_REDIS_TLS_KEY_FILE"),
])
def test_a_certificate_problem_is_an_error_naming_the_setting_at_once(tls_server, pki, case, setting):
    settings = {
        "wrong CA": tls_settings(pki, tls_ca_file=str(pki["other_ca"])),
        "no client certificate": tls_settings(pki, tls_cert_file=None, tls_key_file=None),
        "client certificate of another CA": tls_settings(pki, tls_cert_file=str(pki["stranger"].cert),
                                                         tls_key_file=str(pki["stranger"].key)),
        "missing CA file": tls_settings(pki, tls_ca_file=str(pki["ca"]) + ".missing"),
        "certificate without its key": tls_settings(pki, tls_key_file=None),
    }[case]
    started = time.monotonic()
    with pytest.raises(SettingsError) as raised:
        connect(f"rediss://localhost:{tls_server.port}/0", settings=settings).ping()
    assert str(raised.value).startswith(setting), str(raised.value)
    assert time.monotonic() - started < PROMPT


def test_an_expired_server_certificate_is_named_as_such(redis_server, pki):
    with TlsProxy(target_port=redis_server.port, server=pki["expired"]) as proxy:
        with pytest.raises(SettingsError, match=r"^PODQ_REDIS_URL: .*has expired"):
            connect(f"rediss://localhost:{proxy.port}/0", settings=tls_settings(pki))


def test_the_hostname_check_is_a_setting(redis_server, pki):
    with TlsProxy(target_port=redis_server.port, server=pki["elsewhere"]) as proxy:
        url = f"rediss://localhost:{proxy.port}/0"
        with pytest.raises(SettingsError, match=r"^PODQ_REDIS_TLS_CHECK_HOSTNAME: .*does not name"):
            connect(url, settings=tls_settings(pki))
        client = connect(url, settings=tls_settings(pki, tls_check_hostname=False))
        assert client.ping()
        client.close()


def test_tls_to_a_server_without_tls_is_named_without_waiting_for_the_socket_timeout(redis_server, pki):
    # A plain-text server given a ClientHello answers nothing; podq asks it a plain PING instead of
    # waiting out the socket timeout (60 s here) for a handshake that never comes.
    started = time.monotonic()
    with pytest.raises(SettingsError, match=r"^PODQ_REDIS_URL: rediss:// .*does not speak TLS \(it answered a "
                                            r"plain-text PING\): use redis://"):
        connect(f"rediss://127.0.0.1:{redis_server.port}/0", settings=tls_settings(pki, socket_timeout=60.0))
    assert time.monotonic() - started < PROMPT


def test_a_tls_server_slower_than_the_first_try_is_still_reached(tls_server, pki, monkeypatch):
    from podq.broker.store import tls

    # A first try far shorter than any handshake: the server does not answer plain text, so
    # podq gives the handshake the whole socket timeout and connects.
    monkeypatch.setattr(tls, "TLS_FIRST_TRY", 0.000001)
    client = connect(f"rediss://localhost:{tls_server.port}/0", settings=tls_settings(pki))
    assert client.ping()
    client.close()


def test_a_worker_with_the_wrong_ca_exits_with_the_setting_named(tls_server, pki, kubesim, tmp_path):
    env = {"PODQ_REDIS_URL": f"rediss://localhost:{tls_server.port}/0", "PODQ_REDIS_TLS_CA_FILE": str(pki["other_ca"]),
           "PODQ_REDIS_TLS_CERT_FILE": str(pki["client"].cert), "PODQ_REDIS_TLS_KEY_FILE": str(pki["client"].key),
           "PODQ_KUBE_KUBECONFIG": kubesim.kubeconfig, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "podq", "worker"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "PODQ_REDIS_TLS_CA_FILE" in done.stdout + done.stderr


def test_the_whole_stack_runs_over_tls(tls_server, pki, redis_url, tmp_path):
    """intake, two Celery workers and the watcher on rediss://, jobs submitted and results read over TLS."""
    url = f"rediss://localhost:{tls_server.port}/0"
    redis_settings = tls_settings(pki, url=url)
    env = {"PODQ_REDIS_TLS_CA_FILE": redis_settings.tls_ca_file, "PODQ_REDIS_TLS_CERT_FILE": redis_settings.tls_cert_file,
           "PODQ_REDIS_TLS_KEY_FILE": redis_settings.tls_key_file}
    settings = dataclasses.replace(load_settings({}), redis=redis_settings)
    options = StackOptions(workers=2, worker_concurrency=2, data_dir=str(tmp_path / "stack"), extra_env=env)
    with Stack(settings, options) as stack:
        client = connect(url, settings=redis_settings, block_ms=200)
        scheduler_id = new_scheduler("tls")
        jobs, expected = make_jobs(scheduler_id, 20, run_seconds=0.1)
        submit_many(client, jobs)
        collector = Collector(ResultsConsumer(client, scheduler_id=scheduler_id, consumer="scheduler-1"))
        collector.until_all_terminal(set(expected), timeout=90, stack=stack)
        assert collector.ends() == expected
        client.close()
