"""Shared setup for the watcher's integration and chaos tests.

Pods are created in kubesim with the official client, carrying podq's labels and
annotations, and their jobs are seeded in the ledger (accept → dispatched →
created) the way a worker would leave them: real parts, no mocks.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

import redis
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from podq.broker.store import keys
from podq.broker.store.ledger import Ledger
from podq.shared import naming
from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.settings import KubeSettings, RedisSettings, Settings, WatcherSettings
from podq.shared.states import State
from podq.watcher.daemon import Watcher
from . import pod_status_samples, wait_for

SIM = "kubesim.podq.io/"
SCHEDULER = "sched-w"
SAMPLES_STATUS: dict[str, Any] = pod_status_samples()


def core_api(kubeconfig: str) -> k8s.CoreV1Api:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration, persist_config=False)
    return k8s.CoreV1Api(k8s.ApiClient(configuration))


def settings_for(redis_url: str, kubeconfig: str, **watcher: object) -> Settings:
    fields = {"lease_ttl": 2.0, "lease_poll": 0.2, "reconcile_interval": 0.5, "idle_limit": 10.0,
              "server_timeout": 60, "max_crashes": 20}
    fields.update(watcher)
    return Settings(redis=RedisSettings(url=redis_url), kube=KubeSettings(kubeconfig=kubeconfig),
                    watcher=WatcherSettings(**fields))


def job(index: int, *, run: str = "r1", scheduler_id: str = SCHEDULER, namespace: str = "default") -> KubernetesJob:
    key = TaskKey(dag_id="wdag", task_id=f"t{index}", run_id=run, try_number=1)
    return KubernetesJob.new(scheduler_id=scheduler_id, key=key, namespace=namespace)


def pod_body(item: KubernetesJob, *, outcome: dict[str, str] | None = None) -> dict:
    annotations = naming.pod_annotations(job_id=item.job_id, scheduler_id=item.scheduler_id, key=item.key)
    annotations.update({SIM + name: value for name, value in (outcome or {}).items()})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": naming.pod_name_for(item.job_id, item.key), "namespace": item.namespace,
                         "labels": naming.pod_labels(job_id=item.job_id, scheduler_id=item.scheduler_id,
                                                     key=item.key),
                         "annotations": annotations},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "apache/airflow:3.1.0"}]}}


def launch(client: redis.Redis, api: k8s.CoreV1Api, items: Iterable[tuple[KubernetesJob, dict | None]]) -> list[str]:
    """Seed the ledger for each job and create its pod; returns the pod names."""
    items = list(items)
    ledger = Ledger(client)
    ledger.accept_many([(item, naming.pod_name_for(item.job_id, item.key)) for item, _ in items])
    ledger.mark_dispatched([item.job_id for item, _ in items])
    names = []
    for item, outcome in items:
        body = pod_body(item, outcome=outcome)
        created = api.create_namespaced_pod(item.namespace, body, _preload_content=False)
        uid = orjson.loads(created.data)["metadata"]["uid"]
        ledger.mark_created(item.job_id, uid=uid)
        names.append(body["metadata"]["name"])
    return names


def results(client: redis.Redis, scheduler_id: str = SCHEDULER) -> dict[str, list[KubernetesWatch]]:
    """Every result in the scheduler's stream, per job, in stream order."""
    per_job: dict[str, list[KubernetesWatch]] = defaultdict(list)
    for _, fields in client.xrange(keys.results_stream(scheduler_id)):
        result = KubernetesWatch.decode(fields[keys.RECORD_FIELD.encode()])
        per_job[result.job_id].append(result)
    return per_job


def terminal_of(per_job: dict[str, list[KubernetesWatch]], job_id: str) -> State | None:
    ends = [result.state for result in per_job.get(job_id, []) if result.state.terminal]
    return ends[0] if ends else None


def assert_clean(per_job: dict[str, list[KubernetesWatch]], expected: dict[str, State | set[State]]) -> None:
    """Exactly one terminal result per job, as expected; running at most once, pending once per reason
    (each with its own event id), both before it and pending before running."""
    problems = []
    for job_id, want in expected.items():
        states = [result.state for result in per_job.get(job_id, [])]
        ends = [state for state in states if state.terminal]
        allowed = want if isinstance(want, set) else {want}
        if len(ends) != 1 or ends[0] not in allowed:
            problems.append(f"{job_id}: terminal results {ends}, expected one of {sorted(s.value for s in allowed)}")
            continue
        end_at = states.index(ends[0])
        ids = [result.event_id for result in per_job.get(job_id, [])]
        if len(set(ids)) != len(ids):
            problems.append(f"{job_id}: an event id published twice: {ids}")
        if states.count(State.RUNNING) > 1:
            problems.append(f"{job_id}: running published {states.count(State.RUNNING)} times")
        for progress in (State.PENDING, State.RUNNING):
            if progress in states and len(states) - 1 - states[::-1].index(progress) > end_at:
                problems.append(f"{job_id}: {progress.value} after the terminal result")
        if State.PENDING in states and State.RUNNING in states and (
                len(states) - 1 - states[::-1].index(State.PENDING) > states.index(State.RUNNING)):
            problems.append(f"{job_id}: pending after running")
    assert not problems, "\n".join(problems[:20])


def replace_watcher(settings: Settings, **fields: object) -> Settings:
    return dataclasses.replace(settings, watcher=dataclasses.replace(settings.watcher, **fields))


@dataclasses.dataclass
class Env:
    """A test's parts: Redis, the kube client, kubesim, settings, a temp dir."""

    client: redis.Redis
    api: k8s.CoreV1Api
    sim: Any
    settings: Settings
    tmp: Path

    @contextlib.contextmanager
    def watcher(self, *, namespaces=("default",), instance: str | None = None, health_file: str | None = None,
                **fields: object) -> Iterator[Watcher]:
        settings = replace_watcher(self.settings, **fields) if fields else self.settings
        watcher = Watcher(settings, namespaces=list(namespaces), instance=instance,
                          health_file=health_file or str(self.tmp / f"health-{instance or 'w'}.json"))
        watcher.start()
        try:
            yield watcher
        finally:
            watcher.close()
        assert watcher.failed is None, watcher.failed

    def wait_terminal(self, jobs: Iterable[KubernetesJob], *, timeout: float = 20.0,
                      scheduler_id: str = SCHEDULER) -> dict[str, list[KubernetesWatch]]:
        ids = [item.job_id for item in jobs]

        def done():
            per_job = results(self.client, scheduler_id)
            missing = [job_id for job_id in ids if terminal_of(per_job, job_id) is None]
            return per_job if not missing else None
        wait_for(done, timeout=timeout, message=f"a terminal result for each of {len(ids)} jobs")
        return results(self.client, scheduler_id)


@contextlib.contextmanager
def environment(redis_client, redis_url: str, kubesim, tmp_path: Path) -> Iterator["Env"]:
    """What a watcher test stands on: the session Redis, a fresh kubesim, the official client on it."""
    api = core_api(kubesim.kubeconfig)
    try:
        yield Env(client=redis_client, api=api, sim=kubesim,
                  settings=settings_for(redis_url, kubesim.kubeconfig), tmp=tmp_path)
    finally:
        api.api_client.close()
