"""The Node.js client over TLS and through Sentinel (clients/node/src/connect.js), as PODQ_REDIS_URL says.

The same URL schemes and PODQ_REDIS_TLS_* variables as podq's own services: the Node
CLI submits jobs and reads results over ``rediss://`` with a client certificate
(TLS terminated by tests/support/tls.py in front of the embedded Valkey), and through
``redis+sentinel://`` to the primary three Sentinels name; Python checks both ends.
"""
from __future__ import annotations

import json

import pytest

from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.broker.store.publish import Publisher
from podq.shared.naming import pod_name_for
from podq.shared.records import KubernetesJob, KubernetesWatch
from podq.shared.settings import RedisSettings
from podq.shared.states import Source, State
from tests.support.node import node  # noqa: F401 - the fixture
from tests.support.sentinel import SentinelCluster
from tests.support.tls import CertificateAuthority, TlsProxy

JOBS = [{"taskKey": {"dag_id": "ha", "task_id": f"t{n}", "run_id": "r"}, "command": ["true"]}
        for n in range(3)]


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def submit_and_consume(node, url: str, env: dict[str, str], client, scheduler_id: str) -> None:
    done = node("bin/podq-node.js", "submit", "--redis", url, "--scheduler-id", scheduler_id,
                "--jobs", json.dumps(JOBS), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    submitted = lines(done.stdout)
    assert len(submitted) == len(JOBS)
    records = [KubernetesJob.decode(fields[b"record"]) for _, fields in client.xrange(keys.JOBS_STREAM)]
    assert sorted(job.job_id for job in records) == sorted(item["jobId"] for item in submitted)
    Publisher(client).publish([
        KubernetesWatch.build(job_id=job.job_id, scheduler_id=scheduler_id, key=job.key, source=Source.WATCHER,
                              state=State.SUCCEEDED, pod_name=pod_name_for(job.job_id, job.key), namespace="default")
        for job in records])
    done = node("bin/podq-node.js", "consume", "--redis", url, "--scheduler-id", scheduler_id, "--consumer", "n1",
                "--expect-terminal", str(len(JOBS)), "--timeout", "60", env=env, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {item["jobId"] for item in lines(done.stdout) if item.get("terminal")} == {j.job_id for j in records}
    assert client.xpending(keys.results_stream(scheduler_id), keys.RESULTS_GROUP)["pending"] == 0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = CertificateAuthority(tmp_path_factory.mktemp("pki"))
    return ca, ca.issue("server", common_name="valkey", hosts=("localhost",)), ca.issue("client", common_name="n",
                                                                                        client=True)


def test_node_over_tls_with_a_client_certificate(node, redis_server, redis_client, pki):
    ca, server, client_pair = pki
    with TlsProxy(target_port=redis_server.port, server=server, client_ca=ca.cert) as proxy:
        env = {"PODQ_REDIS_TLS_CA_FILE": str(ca.cert), "PODQ_REDIS_TLS_CERT_FILE": str(client_pair.cert),
               "PODQ_REDIS_TLS_KEY_FILE": str(client_pair.key)}
        submit_and_consume(node, f"rediss://localhost:{proxy.port}/0", env, redis_client, "node-tls")


def test_node_names_the_setting_when_the_ca_is_wrong(node, redis_server, pki, tmp_path):
    ca, server, client_pair = pki
    other = CertificateAuthority(tmp_path / "other", name="another CA")
    with TlsProxy(target_port=redis_server.port, server=server, client_ca=ca.cert) as proxy:
        env = {"PODQ_REDIS_TLS_CA_FILE": str(other.cert), "PODQ_REDIS_TLS_CERT_FILE": str(client_pair.cert),
               "PODQ_REDIS_TLS_KEY_FILE": str(client_pair.key)}
        done = node("bin/podq-node.js", "submit", "--redis", f"rediss://localhost:{proxy.port}/0", "--scheduler-id",
                    "node-tls", "--jobs", json.dumps(JOBS), env=env, timeout=30)
    assert done.returncode == 2
    assert "PODQ_REDIS_TLS_CA_FILE: the TLS certificate of the server" in done.stderr, done.stderr


def test_node_through_sentinel(node, tmp_path):
    with SentinelCluster(tmp_path) as cluster:
        client = connect(cluster.url, settings=RedisSettings())
        submit_and_consume(node, cluster.url, {}, client, "node-sentinel")
        client.close()
