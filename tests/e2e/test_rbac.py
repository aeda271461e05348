"""The Kubernetes RBAC in deploy/kubernetes grants each service exactly the API calls it makes.

The stack runs against kubesim with its request log on; the workers, the watcher and
intake each use a kubeconfig with a token of their own, so every logged request
names its service. The workload takes every path that calls the API: pods that
succeed (deleted by the completion policy), fail (labelled done and kept), are
revoked (deleted), and stay Pending past the deadline (labelled revoked by the
watcher, deleted by a worker), and a job dispatched whose pod never came (the
reconciler reads it). Each service's (verb, resource) pairs, read from the log, must
equal what its Role in deploy/kubernetes/base/rbac.yaml grants.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from podq.broker.client.control import revoke
from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.broker.store.ledger import Ledger
from podq.kubesim.admin import Admin
from podq.kubesim.kubeconfig import write_kubeconfig
from podq.kubesim.server import start_in_thread
from podq.shared.naming import pod_name_for
from podq.shared.settings import load_settings
from podq.shared.states import State
from podq.stack import Stack, StackOptions
from tests.support import wait_for
from tests.support.system import Collector, make_jobs, new_scheduler

RBAC = Path(__file__).parents[2] / "deploy" / "kubernetes" / "base" / "rbac.yaml"
SERVICES = ("worker", "watcher", "intake")


def granted() -> dict[str, set[tuple[str, str]]]:
    """Role name → the (verb, resource) pairs it grants."""
    roles = {}
    for document in yaml.safe_load_all(RBAC.read_text()):
        if document and document.get("kind") in ("Role", "ClusterRole"):
            pairs = roles.setdefault(document["metadata"]["name"], set())
            for rule in document["rules"]:
                pairs.update((verb, resource) for verb in rule["verbs"] for resource in rule["resources"])
    return roles


def verb_of(entry: dict) -> tuple[str, str]:
    """A logged request as the (verb, resource) RBAC checks."""
    parts = [part for part in entry["path"].split("/") if part]
    # /api/v1/namespaces/<ns>/{pods,events}[/<name>[/<subresource>]] or /api/v1/{pods,events}
    kind = "pods" if "pods" in parts else "events"
    resource_at = parts.index(kind)
    named = len(parts) > resource_at + 1
    resource = kind if len(parts) <= resource_at + 2 else f"{kind}/{parts[resource_at + 2]}"
    method = entry["method"]
    if method == "GET":
        if str(entry["query"].get("watch", "")).lower() in ("1", "true"):
            return "watch", resource
        return ("get" if named else "list"), resource
    return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method], resource


def used_by(log: list[dict], tokens: dict[str, str]) -> dict[str, set[tuple[str, str]]]:
    """Each service's (verb, resource) pairs in kubesim's request log."""
    used: dict[str, set[tuple[str, str]]] = {service: set() for service in SERVICES}
    for entry in log:
        if "/pods" not in entry["path"] and "/events" not in entry["path"]:
            continue
        service = next((s for s, token in tokens.items() if entry["authorization"] == f"Bearer {token}"), None)
        assert service is not None, f"a pod request with an unknown token: {entry['method']} {entry['path']}"
        used[service].add(verb_of(entry))
    return used


def test_each_services_api_calls_equal_its_role(tmp_path):
    sim = start_in_thread(kubeconfig=str(tmp_path / "admin-kubeconfig"), request_log=200_000, default_run_seconds=0.2)
    try:
        tokens = {service: f"{service}-token" for service in SERVICES}
        kubeconfigs = {service: str(write_kubeconfig(tmp_path / f"{service}.kubeconfig", sim.url, token=token))
                       for service, token in tokens.items()}
        env = {"PODQ_WATCHER_PENDING_DEADLINE": "2", "PODQ_WATCHER_RECONCILE_INTERVAL": "1",
               "PODQ_WATCHER_LOST_AFTER": "2",
               "PODQ_WORKER_VISIBILITY_TIMEOUT": "10"}
        settings = load_settings({"PODQ_KUBE_KUBECONFIG": sim.kubeconfig, **env})
        options = StackOptions(workers=1, worker_concurrency=2, data_dir=str(tmp_path / "stack"), extra_env=env,
                               service_env={s: {"PODQ_KUBE_KUBECONFIG": kubeconfigs[s]} for s in SERVICES})
        admin = Admin(sim.url)
        with Stack(settings, options) as stack:
            wait_for(lambda: admin.stats()["watches"] >= 1, timeout=60, message="the watcher watching")
            client = connect(stack.redis_url, block_ms=200)
            scheduler_id = new_scheduler("rbac")
            jobs, _ = make_jobs(scheduler_id, 3, run_seconds=30, fail_every=0)
            finishing, _ = make_jobs(scheduler_id, 7, run_seconds=0.1, fail_every=2)
            finishing = finishing[3:]     # task keys t3..t6: distinct from t0..t2 below
            collector = Collector(ResultsConsumer(client, scheduler_id=scheduler_id, consumer="s-1"))

            def read_until(job_ids, what):
                collector.until_all_terminal(set(job_ids), timeout=90, stack=stack)

            submit_many(client, finishing)               # succeed (deleted) and fail (labelled done)
            read_until([j.job_id for j in finishing], "the finishing jobs to end")
            submit_many(client, jobs[:1])                # runs long, then revoked: a worker deletes it
            wait_for(lambda: admin.create_count() >= len(finishing) + 1, timeout=60,
                     message="the long job created")
            revoke(client, job_id=jobs[0].job_id, scheduler_id=scheduler_id)
            read_until([jobs[0].job_id], "the revoked job to end")
            # Dispatched, never created (its message lost): the reconciler asks the API for its pod.
            ghost = jobs[2]
            ledger = Ledger(client)
            ledger.accept_many([(ghost, pod_name_for(ghost.job_id, ghost.key))])
            ledger.mark_dispatched([ghost.job_id], orphaned_after=3600)
            read_until([ghost.job_id], "the reconciler to end the job whose pod never came")
            admin.pause_kubelet()                         # stays Pending past the deadline
            submit_many(client, jobs[1:2])
            read_until([jobs[1].job_id], "the pending job to fail")
            admin.resume_kubelet()
            client.close()
            ended = collector.ends()
            assert ended[jobs[0].job_id] is State.REVOKED and ended[jobs[1].job_id] is State.FAILED
        log = admin.requests()
    finally:
        sim.stop()
    used = used_by(log, tokens)
    roles = granted()
    print({service: sorted(pairs) for service, pairs in used.items()})
    assert used["worker"] == roles["podq-worker"]
    assert used["watcher"] == roles["podq-watcher"]
    assert used["intake"] == set()
