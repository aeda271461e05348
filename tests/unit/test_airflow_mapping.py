"""The Airflow executor's rules that need no Airflow: config, workload -> job, result -> event."""
from __future__ import annotations

import pytest

from podq.airflow import mapping
from podq.airflow.config import ExecutorConfigError, QueueRoute, load_config
from podq.airflow.mapping import Event, WorkloadError
from podq.shared.naming import derive_job_id
from podq.shared.records import FailureDetails, KubernetesResults, TaskKey
from podq.shared.states import Source, State

KEY = TaskKey(dag_id="etl", task_id="load", run_id="manual__1", try_number=2, map_index=3)


def config(**options):
    return load_config(lambda option: options.get(option), env={"PODQ_REDIS_URL": "redis://127.0.0.1:1/0"})


def result(state: State, details: FailureDetails | None = None) -> KubernetesResults:
    return KubernetesResults(entry_id="1-0", event_id=f"j:{state.value}", job_id="j", key=KEY, state=state,
                             terminal=state.terminal, pod_name="etl-load-0123", namespace="airflow",
                             resource_version=None, failure_details=details, source=Source.WATCHER)


def test_config_defaults_and_env_fallback():
    cfg = config()
    assert cfg.redis_url == "redis://127.0.0.1:1/0"
    assert (cfg.consumer, cfg.namespace, cfg.pod_template, cfg.scheduler_id_prefix) == \
        ("airflow-executor", None, None, "")
    assert cfg.logs_from_kubernetes is False and cfg.running_pod_log_lines == 100


def test_config_without_redis_names_the_option():
    with pytest.raises(ExecutorConfigError, match=r"\[podq_executor\] redis_url is not set"):
        load_config(lambda option: None, env={})


@pytest.mark.parametrize(("options", "message"), [
    ({"results_batch": "many"}, r"results_batch: expected a whole number, got 'many'"),
    ({"results_batch": "0"}, r"results_batch: must be at least 1"),
    ({"logs_from_kubernetes": "perhaps"}, r"logs_from_kubernetes: expected true or false"),
    ({"queue_routes": "{"}, r"queue_routes: not JSON"),
    ({"queue_routes": "[]"}, r"queue_routes: expected a JSON object"),
    ({"queue_routes": '{"gpu": {"nodes": "x"}}'}, r"queue_routes.gpu: unknown key\(s\) nodes"),
    ({"queue_routes": '{"gpu": {"namespace": 3}}'}, r"queue_routes.gpu.namespace: expected a non-empty string"),
    ({"pod_template": "a", "pod_template_file": "/b.yaml"}, r"set one, not both"),
])
def test_config_errors_name_the_option(options, message):
    with pytest.raises(ExecutorConfigError, match=message):
        config(**options)


def test_queue_routes_fall_back_to_the_executor_wide_settings():
    cfg = config(namespace="airflow", pod_template_file="/opt/airflow/pod_templates/worker.yaml",
                 queue_routes='{"gpu": {"namespace": "gpu", "pod_template_file": "/t/gpu.yml"},'
                              ' "small": {"pod_template": "small"}}')
    assert cfg.route("gpu") == QueueRoute(namespace="gpu", pod_template="gpu")
    assert cfg.route("small") == QueueRoute(namespace="airflow", pod_template="small")
    assert cfg.route("default") == QueueRoute(namespace="airflow", pod_template="worker")
    assert cfg.route(None) == QueueRoute(namespace="airflow", pod_template="worker")


def test_pod_command_is_the_kubernetes_executors():
    assert mapping.pod_command('{"ti": 1}') == [
        "python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", '{"ti": 1}']


def test_job_key_is_the_task_instance_key_and_a_retry_is_a_new_job():
    cfg = config()
    first = mapping.build_job(scheduler="7", key=KEY, workload_json="{}", config=cfg, queue="default",
                              executor_config={}, override=None, airflow_version=None, ti_id=None)
    again = mapping.build_job(scheduler="7", key=KEY, workload_json="{}", config=cfg, queue="default",
                              executor_config={}, override=None, airflow_version=None, ti_id=None)
    retry = mapping.build_job(scheduler="7", key=TaskKey(**{**KEY.to_wire(), "try_number": 3}),
                              workload_json="{}", config=cfg, queue="default", executor_config={},
                              override=None, airflow_version=None, ti_id=None)
    assert first.key == KEY and first.job_id == again.job_id == derive_job_id("7", KEY)
    assert retry.job_id != first.job_id
    assert first.pod_override is None
    assert first.priority == 0


@pytest.mark.parametrize(("weight", "priority"), [(None, 0), (7, 7), (-3, -3), (2 ** 40, 2 ** 31 - 1),
                                                  (-(2 ** 40), -(2 ** 31))])
def test_priority_weight_becomes_the_jobs_priority(weight, priority):
    job = mapping.build_job(scheduler="7", key=KEY, workload_json="{}", config=config(), queue="default",
                            executor_config={}, override=None, airflow_version=None, ti_id=None,
                            priority_weight=weight)
    assert job.priority == priority


def test_task_template_file_wins_over_queue_and_executor():
    cfg = config(pod_template="base", queue_routes='{"gpu": {"pod_template": "gpu"}}')
    job = mapping.build_job(scheduler="7", key=KEY, workload_json="{}", config=cfg, queue="gpu",
                            executor_config={"pod_template_file": "/dags/templates/special.yaml"},
                            override=None, airflow_version=None, ti_id=None)
    assert job.pod_template == "special"
    job = mapping.build_job(scheduler="7", key=KEY, workload_json="{}", config=cfg, queue="gpu",
                            executor_config={}, override=None, airflow_version=None, ti_id=None)
    assert job.pod_template == "gpu"


def test_override_goes_over_the_executor_made_parts():
    override = {"metadata": {"labels": {"team": "a"}},
                "spec": {"containers": [{"name": "base", "image": "mine:1"}, {"name": "side", "image": "s"}]}}
    merged = mapping.pod_override(override, image="apache/airflow:3.3.2", airflow_version="3.3.2+local",
                                  ti_id="0193")
    assert merged["metadata"] == {"labels": {"airflow_version": "3.3.2-local", "team": "a"},
                                  "annotations": {"task_instance_id": "0193"}}
    assert merged["spec"]["containers"] == [{"name": "base", "image": "mine:1"}, {"name": "side", "image": "s"}]
    assert override["metadata"] == {"labels": {"team": "a"}}, "the task's override is not changed"


def test_unnamed_first_override_container_is_base_and_gets_the_configured_image_only_if_it_has_none():
    merged = mapping.pod_override({"spec": {"containers": [{"resources": {"limits": {"cpu": "1"}}}]}},
                                  image="img:1", airflow_version=None, ti_id=None)
    assert merged["spec"]["containers"] == [{"name": "base", "image": "img:1", "resources": {"limits": {"cpu": "1"}}}]


@pytest.mark.parametrize(("executor_config", "message"), [
    ("pod", r"executor_config: expected a dict, got str"),
    ({"KubernetesExecutor": {"image": "x"}}, r"legacy"),
    ({"pod_template_file": 3}, r"pod_template_file: expected a path, got int"),
])
def test_bad_executor_config_is_a_workload_error(executor_config, message):
    with pytest.raises(WorkloadError, match=message):
        mapping.build_job(scheduler="7", key=KEY, workload_json="{}", config=config(), queue=None,
                          executor_config=executor_config, override=None, airflow_version=None, ti_id=None)


def test_every_state_maps_to_one_event():
    assert set(mapping.EVENTS) == set(State)
    assert mapping.EVENTS[State.SUCCEEDED] is Event.SUCCESS
    assert mapping.EVENTS[State.FAILED] is mapping.EVENTS[State.LOST] is Event.FAILED
    assert mapping.EVENTS[State.RUNNING] is Event.RUNNING
    assert mapping.EVENTS[State.ADOPTED] is Event.FREED
    assert mapping.EVENTS[State.PENDING] is Event.NOTHING


def test_failure_details_read_as_one_line():
    details = FailureDetails(pod_status="Failed", pod_reason="Error", container_state="terminated",
                             container_reason="Error", exit_code=1, container_type="main", container_name="base",
                             container_message="Traceback: boom")
    text = mapping.describe(result(State.FAILED, details))
    assert text == ("podq job j (pod airflow/etl-load-0123) failed: main container base terminated Error, "
                    "exit code 1: Traceback: boom; pod Failed Error")
    lost = mapping.describe(result(State.LOST, FailureDetails(reason="PodGone", message="deleted outside podq")))
    assert lost.endswith("lost: PodGone: deleted outside podq")
    assert mapping.describe(result(State.SUCCEEDED)) == "podq job j (pod airflow/etl-load-0123) succeeded"


def test_scheduler_id_needs_the_scheduler_job():
    assert mapping.scheduler_id("af1-", 12) == "af1-12"
    with pytest.raises(ExecutorConfigError, match="no scheduler job id"):
        mapping.scheduler_id("", None)


def test_a_pending_reason_reads_as_one_line_for_the_event_log():
    from podq.shared.records import KubernetesResults, KubernetesWatch, PendingReason, TaskKey
    from podq.shared.states import Source, State
    from podq.airflow.mapping import describe
    watch = KubernetesWatch.build(job_id="j1", scheduler_id="s", key=TaskKey(dag_id="d", task_id="t", run_id="r"),
                                  source=Source.WATCHER, state=State.PENDING, pod_name="p", namespace="ns",
                                  pending_reason=PendingReason(reason="Unschedulable", message="0/3 nodes"),
                                  again="7")
    text = describe(KubernetesResults.from_watch("1-0", watch))
    assert text == "podq job j1 (pod ns/p) pending: Unschedulable: 0/3 nodes"


def test_a_task_goes_to_its_own_cluster_else_its_queues_else_the_executors():
    cfg = config(cluster="home", queue_routes='{"gpu": {"cluster": "gpu-cluster"}, "eu": {"namespace": "eu"}}')
    assert cfg.route("gpu") == QueueRoute(namespace=None, pod_template=None, cluster="gpu-cluster")
    assert cfg.route("eu").cluster == "home"

    def cluster(queue, executor_config):
        return mapping.build_job(scheduler="7", key=KEY, workload_json="{}", config=cfg, queue=queue,
                                 executor_config=executor_config, override=None, airflow_version=None,
                                 ti_id=None).cluster
    assert cluster("gpu", {}) == "gpu-cluster"
    assert cluster("eu", {}) == "home"
    assert cluster("gpu", {"cluster": "eu-west"}) == "eu-west"
    assert mapping.build_job(scheduler="7", key=KEY, workload_json="{}", config=config(), queue=None,
                             executor_config={}, override=None, airflow_version=None, ti_id=None).cluster is None
    with pytest.raises(WorkloadError, match=r"executor_config.cluster: expected a cluster name, got int"):
        cluster("gpu", {"cluster": 2})
