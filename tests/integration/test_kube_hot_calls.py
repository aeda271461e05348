"""The hot pod calls (shared/kubeclient.py) against kubesim over HTTP and HTTPS.

What the worker and the watcher send pre-serialized must mean on the wire what the official
client sends for the same call (kubesim logs each request as it arrived), and authentication
must still come from the client's own configuration loading: a bearer token, client
certificates, an exec plugin.
"""
from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client

from podq.kubesim.testing import running_kubesim
from podq.shared import naming
from podq.shared.kubeclient import api_client
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import KubeSettings, WatcherSettings
from podq.watcher.errors import WatchFailed
from podq.watcher.kube import KubePods
from podq.workers.errors import KubeApiError
from podq.workers.kube import Kube, open_kube
from podq.workers.podspec import build_pod
from podq.workers.templates import template_store

NAMESPACE = "default"


def podq_pod(task: str) -> dict:
    """A pod as a worker builds it (the default template, podq's labels and annotations)."""
    key = TaskKey(dag_id="dag", task_id=task, run_id="run-1", try_number=1)
    job = KubernetesJob.new(scheduler_id="wire", key=key, command=["echo", "hello"], namespace=NAMESPACE,
                            pod_override={"spec": {"containers": [{"name": "base", "env": [{"name": "A", "value": "1"}],
                                                                   "resources": {"limits": {"cpu": "1"}}}]}})
    return build_pod(job, template=template_store(None).get(None), namespace=NAMESPACE)


def meaning(entry: dict, *, name: str) -> dict:
    """A logged request as the API server reads it: the pod's name made generic, and a body without a
    Content-Type read as JSON (the client 37 sends none on create and delete; the server defaults to JSON)."""
    entry = json.loads(json.dumps(entry).replace(name, "NAME"))
    if entry["body"] is not None and entry["contentType"] is None:
        entry["contentType"] = "application/json"
    return entry


def test_the_hot_calls_mean_on_the_wire_what_the_official_client_sends(tmp_path):
    with running_kubesim(request_log=100, kubelet_paused=True) as sim:
        settings = KubeSettings(kubeconfig=sim.kubeconfig)
        official = client.CoreV1Api(api_client(settings, pool_size=1))
        kube = open_kube(settings, pool_size=1)
        ours_pod = podq_pod("wire")
        theirs_pod = copy.deepcopy(ours_pod)
        ours = ours_pod["metadata"]["name"]
        theirs = theirs_pod["metadata"]["name"] = f"{ours}-by-the-client"
        patch = {"metadata": {"labels": {naming.POD_REVOKED: "True"}}}
        options = {"gracePeriodSeconds": 5, "propagationPolicy": "Background"}

        official.create_namespaced_pod(NAMESPACE, theirs_pod, _preload_content=False).read()
        official.read_namespaced_pod(theirs, NAMESPACE, _preload_content=False).read()
        official.patch_namespaced_pod(theirs, NAMESPACE, patch, _preload_content=False).read()
        official.delete_namespaced_pod(theirs, NAMESPACE, body=options, _preload_content=False).read()
        created = kube.create_pod(ours_pod)
        assert kube.read_pod(ours, NAMESPACE).uid == created.uid
        assert kube.patch_pod(ours, NAMESPACE, patch).labels[naming.POD_REVOKED] == "True"
        kube.delete_pod(ours, NAMESPACE, options=options)

        logged = [entry for entry in sim.admin().requests() if entry["path"].startswith("/api/v1/namespaces/")]
        official.api_client.close()
        kube.close()
    assert len(logged) == 8
    theirs_calls, ours_calls = logged[:4], logged[4:]
    assert [entry["method"] for entry in ours_calls] == ["POST", "GET", "PATCH", "DELETE"]
    for sent_by_client, sent_by_podq in zip(theirs_calls, ours_calls):
        assert meaning(sent_by_podq, name=ours) == meaning(sent_by_client, name=theirs)
    assert ours_calls[0]["body"] == ours_pod and ours_calls[3]["body"] == options
    assert ours_calls[2]["contentType"] == "application/strategic-merge-patch+json"
    assert ours_calls[0]["authorization"] == "Bearer kubesim"


# -- authentication over TLS ------------------------------------------------------------------------------

def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(subject: str, key, *, issuer=None, issuer_key=None, ca: bool = False, server: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer is not None else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                        critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(path: Path, *objects) -> str:
    chunks = []
    for obj in objects:
        if hasattr(obj, "public_bytes") and hasattr(obj, "subject"):
            chunks.append(obj.public_bytes(serialization.Encoding.PEM))
        else:
            chunks.append(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    path.write_bytes(b"".join(chunks))
    return str(path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    root = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _certificate("podq-test-ca", ca_key, ca=True)
    server = _certificate("kubesim", server_key, issuer=ca, issuer_key=ca_key, server=True)
    user = _certificate("podq-worker", client_key, issuer=ca, issuer_key=ca_key)
    return {"ca": _write(root / "ca.pem", ca), "server_cert": _write(root / "server.pem", server),
            "server_key": _write(root / "server-key.pem", server_key),
            "client_cert": _write(root / "client.pem", user), "client_key": _write(root / "client-key.pem", client_key)}


def kubeconfig(path: Path, url: str, ca: str, user: dict) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "tls",
        "clusters": [{"name": "tls", "cluster": {"server": url, "certificate-authority": ca}}],
        "users": [{"name": "tls", "user": user}],
        "contexts": [{"name": "tls", "context": {"cluster": "tls", "user": "tls"}}]}))
    return str(path)


def exec_plugin(token: str) -> dict:
    """A kubeconfig user whose token comes from an exec credential plugin (a Python one-liner)."""
    credential = {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": token}}
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
                     "args": ["-c", f"print({json.dumps(json.dumps(credential))})"], "interactiveMode": "Never"}}


@pytest.fixture(scope="module")
def tls_sim(pki):
    with running_kubesim(tls_cert_file=pki["server_cert"], tls_key_file=pki["server_key"],
                         client_ca_file=pki["ca"], token="s3cret") as sim:
        yield sim


@pytest.mark.parametrize("user", ["token", "client certificate", "exec plugin"])
def test_the_hot_calls_authenticate_as_the_kubeconfig_says(tls_sim, pki, tmp_path, user):
    users = {"token": {"token": "s3cret"},
             "client certificate": {"client-certificate": pki["client_cert"], "client-key": pki["client_key"]},
             "exec plugin": exec_plugin("s3cret")}
    settings = KubeSettings(kubeconfig=kubeconfig(tmp_path / "kubeconfig", tls_sim.url, pki["ca"], users[user]))
    assert tls_sim.url.startswith("https://")
    kube = open_kube(settings, pool_size=1)
    pod = podq_pod(f"tls-{user.replace(' ', '-')}")
    name = pod["metadata"]["name"]
    created = kube.create_pod(pod)
    assert kube.read_pod(name, NAMESPACE).uid == created.uid
    watcher = KubePods(settings, WatcherSettings())
    assert watcher.read(NAMESPACE, name)["metadata"]["uid"] == created.uid
    assert watcher.label_revoked(NAMESPACE, name)
    assert [item["metadata"]["name"] for item in watcher.list_page(NAMESPACE).items if item["metadata"]["name"] == name]
    kube.delete_pod(name, NAMESPACE, options={"gracePeriodSeconds": 0})
    watcher.close()
    kube.close()


def test_a_wrong_token_is_refused_with_401_and_creates_nothing(tls_sim, pki, tmp_path):
    settings = KubeSettings(kubeconfig=kubeconfig(tmp_path / "kubeconfig", tls_sim.url, pki["ca"], {"token": "wrong"}))
    kube = open_kube(settings, pool_size=1)
    pod = podq_pod("refused")
    with pytest.raises(KubeApiError) as refused:
        kube.create_pod(pod)
    kube.close()
    assert refused.value.status == 401
    name = pod["metadata"]["name"]
    assert tls_sim.call(lambda core: [entry for entry in core.store.audit if entry["name"] == name]) == []
    watcher = KubePods(settings, WatcherSettings())
    with pytest.raises(WatchFailed, match="HTTP 401"):
        watcher.read(NAMESPACE, name)
    watcher.close()
