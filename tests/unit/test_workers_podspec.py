"""Building a job's pod: template, override, podq's identity, the hook; template problems."""
from __future__ import annotations

import pytest

from podq.shared import naming
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.pods.templates import TemplateError, parse_template
from podq.workers.errors import MutationHookError, PodBuildError
from podq.workers.hook import load_hook
from podq.workers.podspec import build_pod
from podq.workers.templates import template_store

KEY = TaskKey(dag_id="etl", task_id="load", run_id="manual__1", try_number=2)


def job(**fields) -> KubernetesJob:
    return KubernetesJob.new(scheduler_id="sched-1", key=KEY, command=["airflow", "tasks", "run"], **fields)


def build(j: KubernetesJob, store=None, **kwargs):
    store = store or template_store(None)
    return build_pod(j, template=store.get(j.pod_template), namespace="podq", **kwargs)


def test_default_pod_has_identity_command_and_executor_env():
    j = job()
    pod = build(j)
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == naming.pod_name_for(j.job_id, KEY) and meta["namespace"] == "podq"
    assert meta["labels"] == naming.pod_labels(job_id=j.job_id, scheduler_id="sched-1", key=KEY)
    assert meta["annotations"] == naming.pod_annotations(job_id=j.job_id, scheduler_id="sched-1", key=KEY)
    assert spec["restartPolicy"] == "Never"
    base = spec["containers"][0]
    assert base["name"] == "base" and base["args"] == ["airflow", "tasks", "run"]
    assert {"name": "AIRFLOW_IS_K8S_EXECUTOR_POD", "value": "True"} in base["env"]


def test_a_templates_placeholder_name_and_namespace_are_replaced_without_a_warning(caplog):
    # The cncf-kubernetes provider's dags_in_image_template.yaml, as docs/airflow.md has users copy it.
    template = parse_template("apiVersion: v1\nkind: Pod\nmetadata:\n  name: placeholder-name\n"
                              "  namespace: elsewhere\nspec:\n  containers:\n    - name: base\n"
                              "      image: apache/airflow:3.3.2\n", name="dags_in_image_template")
    j = job()
    with caplog.at_level("WARNING", logger="podq.workers.podspec"):
        pod = build_pod(j, template=template, namespace="podq")
    assert pod["metadata"]["name"] == naming.pod_name_for(j.job_id, KEY)
    assert pod["metadata"]["namespace"] == "podq"
    assert caplog.records == []


def test_an_override_naming_the_pod_is_told_podqs_name_wins(caplog):
    j = job(pod_override={"metadata": {"name": "mine"}})
    with caplog.at_level("WARNING", logger="podq.workers.podspec"):
        pod = build(j)
    assert pod["metadata"]["name"] == naming.pod_name_for(j.job_id, KEY)
    assert [record.getMessage() for record in caplog.records] == [
        f"job {j.job_id}: pod name/namespace set by the pod override or the mutation hook ignored"]


def test_override_merges_but_cannot_undo_podq_identity():
    override = {"metadata": {"name": "mine", "labels": {"team": "x", naming.JOB_ID_KEY: "forged"}},
                "spec": {"restartPolicy": "Always",
                         "containers": [{"image": "custom:1", "env": [{"name": "X", "value": "1"}]}]}}
    j = job(pod_override=override)
    pod = build(j, image="configured:2")
    assert pod["metadata"]["name"] == naming.pod_name_for(j.job_id, KEY)
    assert pod["metadata"]["labels"]["team"] == "x"
    assert pod["metadata"]["labels"][naming.JOB_ID_KEY] == j.job_id
    assert pod["spec"]["restartPolicy"] == "Never"
    base = pod["spec"]["containers"][0]
    assert base["image"] == "custom:1"   # the override beats the configured image
    assert [e["name"] for e in base["env"]] == ["X", "AIRFLOW_IS_K8S_EXECUTOR_POD"]


def test_configured_image_replaces_the_templates():
    assert build(job(), image="registry/airflow:9")["spec"]["containers"][0]["image"] == "registry/airflow:9"


def test_owner_after_adoption_names_label_and_annotation():
    pod = build(job(), owner="sched 2")
    assert pod["metadata"]["labels"][naming.AIRFLOW_WORKER] == naming.safe_label_value("sched 2")
    assert pod["metadata"]["annotations"][naming.SCHEDULER_ID_KEY] == "sched 2"


def test_named_template_is_used_and_cached_per_file(tmp_path):
    (tmp_path / "gpu.yaml").write_text(
        "kind: Pod\nspec:\n  containers:\n    - name: main\n      image: gpu:1\n  nodeSelector: {gpu: 'yes'}\n")
    store = template_store(str(tmp_path))
    pod = build(job(pod_template="gpu"), store)
    assert pod["spec"]["nodeSelector"] == {"gpu": "yes"}
    assert pod["spec"]["containers"][0]["name"] == "base"
    first = store.get("gpu")
    first["spec"]["nodeSelector"]["gpu"] = "changed"
    assert store.get("gpu")["spec"]["nodeSelector"] == {"gpu": "yes"}


@pytest.mark.parametrize("text, problem", [
    ("kind: Pod\nspec: [unclosed\n  secret: hunter2", "cannot be read as YAML at line"),
    ("- a\n- b\n", "is not a map (found a list)"),
    ("", "an empty file"),
    ("kind: Secret\nspec: {containers: [{name: x}]}\n", "not a Pod"),
    ("kind: Pod\nmetadata: {}\n", "no spec map"),
    ("kind: Pod\nspec: {containers: []}\n", "no spec.containers"),
    ("kind: Pod\nspec: {containers: [{name: x}]}\nmetadata: {annotations: {when: 2024-01-01}}\n", "not JSON"),
])
def test_template_problems_name_the_template_and_never_its_content(tmp_path, text, problem):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(TemplateError) as raised:
        template_store(str(tmp_path)).get("bad")
    message = str(raised.value)
    assert "'bad'" in message and problem in message
    assert "hunter2" not in message and "Secret" not in message


def test_missing_template_is_a_template_error(tmp_path):
    with pytest.raises(TemplateError, match="no template named 'gone' is configured"):
        template_store(str(tmp_path)).get("gone")
    with pytest.raises(TemplateError, match="no template named 'gone' is configured"):
        template_store(None).get("gone")


def test_parse_template_accepts_json():
    assert parse_template('{"spec": {"containers": [{"name": "a"}]}}', name="j")["spec"]["containers"]


def test_hook_changes_the_pod_last_but_not_its_identity():
    def hook(pod):
        pod["metadata"]["name"] = "renamed"
        pod["metadata"]["labels"]["hooked"] = "yes"
        pod["spec"]["priorityClassName"] = "high"

    j = job()
    pod = build(j, hook=hook)
    assert pod["metadata"]["name"] == naming.pod_name_for(j.job_id, KEY)
    assert pod["metadata"]["labels"]["hooked"] == "yes"
    assert pod["spec"]["priorityClassName"] == "high"


def test_hook_failures_are_build_errors():
    def broken(pod):
        raise RuntimeError("policy service down")

    with pytest.raises(MutationHookError, match="RuntimeError: policy service down"):
        build(job(), hook=broken)
    with pytest.raises(MutationHookError, match="returned str"):
        build(job(), hook=lambda pod: "nope")


def test_load_hook_by_name():
    assert load_hook("json:dumps") is not None and load_hook("json.dumps") is not None
    assert load_hook(None) is None
    with pytest.raises(Exception, match="cannot import"):
        load_hook("no_such_module_podq:f")


def test_override_that_breaks_the_base_container_is_a_build_error():
    with pytest.raises(PodBuildError):
        build(job(pod_override={"spec": {"containers": [{"name": "base", "env": "not-a-list"}]}}))


def test_default_requests_are_lowered_to_an_overrides_lower_limits():
    # The default template requests cpu 100m and memory 256Mi.
    override = {"spec": {"containers": [{"resources": {"limits": {"memory": "128Mi", "cpu": "2"}}}]}}
    resources = build(job(pod_override=override))["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {"memory": "128Mi", "cpu": "2"}
    assert resources["requests"] == {"memory": "128Mi", "cpu": "100m"}  # cpu stays: 100m <= 2


def test_requests_the_override_sets_itself_are_left_as_given():
    override = {"spec": {"containers": [{"name": "base", "resources": {
        "requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}}]}}
    resources = build(job(pod_override=override))["spec"]["containers"][0]["resources"]
    assert resources["requests"]["memory"] == "1Gi"  # the API server's 422 names it; podq does not guess


def test_default_image_is_an_airflow_3_release():
    image = build(job())["spec"]["containers"][0]["image"]
    assert image.startswith("apache/airflow:3."), image
