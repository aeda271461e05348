"""Edge validation: each admission rule refuses its case with a reason naming the field or rule."""
from __future__ import annotations

import pytest

from podq.broker.intake.admission import check_job
from podq.broker.intake.policy import check_override
from podq.shared.pods.templates import TemplateError
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import IntakeSettings, KubeSettings, load_settings
from podq.workers.templates import template_store

KEY = TaskKey(dag_id="dag", task_id="task", run_id="run-1")


def job(**fields) -> KubernetesJob:
    fields.setdefault("command", ["true"])
    return KubernetesJob.new(scheduler_id="sched", key=KEY, **fields)


@pytest.fixture
def settings(tmp_path):
    (tmp_path / "gpu.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: base\n")
    (tmp_path / "root.yaml").write_text("spec:\n  hostPID: true\n  containers: [{name: base}]\n")
    (tmp_path / "broken.yaml").write_text("spec: [unclosed SECRET-TOKEN\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    return load_settings({}, kube=KubeSettings(namespace="jobs"),
                         intake=IntakeSettings(templates_dir=str(tmp_path), namespaces=("jobs", "batch")))


def spec(**fields):
    return {"spec": fields}


def container(**security):
    return {"name": "base", "securityContext": security}


@pytest.mark.parametrize("override, reason", [
    (spec(hostNetwork=True), "job.pod_override.spec.hostNetwork: refused by pod policy (host namespaces)"),
    (spec(hostPID=True), "job.pod_override.spec.hostPID: refused by pod policy (host namespaces)"),
    (spec(hostIPC=True), "job.pod_override.spec.hostIPC: refused by pod policy (host namespaces)"),
    (spec(volumes=[{"name": "ok", "emptyDir": {}}, {"name": "root", "hostPath": {"path": "/"}}]),
     "job.pod_override.spec.volumes[1].hostPath: refused by pod policy (hostPath volumes)"),
    (spec(containers=[container(privileged=True)]),
     "job.pod_override.spec.containers[0].securityContext.privileged: refused by pod policy (privileged containers)"),
    (spec(initContainers=[container(privileged=True)]),
     "job.pod_override.spec.initContainers[0].securityContext.privileged: refused by pod policy (privileged containers)"),
    (spec(ephemeralContainers=[container(allowPrivilegeEscalation=True)]),
     "job.pod_override.spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation: "
     "refused by pod policy (privilege escalation)"),
    (spec(containers=[container(), container(allowPrivilegeEscalation=True)]),
     "job.pod_override.spec.containers[1].securityContext.allowPrivilegeEscalation: "
     "refused by pod policy (privilege escalation)"),
])
def test_each_pod_policy_rule_refuses_its_case(settings, override, reason):
    assert check_job(job(namespace="jobs", pod_override=override), settings) == reason


@pytest.mark.parametrize("override, reason", [
    ({"status": {}}, "job.pod_override.status: not a pod field (allowed: apiVersion, kind, metadata, spec)"),
    ({"kind": "Deployment"}, "job.pod_override.kind: must be 'Pod'"),
    ({"apiVersion": "apps/v1"}, "job.pod_override.apiVersion: must be 'v1'"),
    ({"metadata": []}, "job.pod_override.metadata: must be a map"),
    ({"metadata": {"name": "mine"}},
     "job.pod_override.metadata.name: producers may set only labels and annotations "
     "(podq names the pod and takes the namespace from job.namespace)"),
    ({"metadata": {"labels": {"a": 1}}}, "job.pod_override.metadata.labels: keys and values must be strings"),
    ({"spec": "x"}, "job.pod_override.spec: must be a map"),
    (spec(hostnetwork=True), "job.pod_override.spec.hostnetwork: not a PodSpec field"),
    (spec(containers={"name": "base"}), "job.pod_override.spec.containers: must be an array of maps"),
    (spec(nodeSelector=["a"]), "job.pod_override.spec.nodeSelector: must be a map"),
    (spec(hostNetwork="yes"), "job.pod_override.spec.hostNetwork: must be a bool"),
    (spec(containers=[{"name": "base", "securityContext": "root"}]),
     "job.pod_override.spec.containers[0].securityContext: must be a map"),
])
def test_pod_override_must_be_a_map_of_pod_fields(settings, override, reason):
    assert check_job(job(namespace="jobs", pod_override=override), settings) == reason


def test_deeply_nested_override_is_refused():
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    assert check_override({"metadata": {"annotations": deep}}) == \
        "job.pod_override: nested deeper than 32 levels"


def test_safe_override_is_admitted(settings):
    override = {"metadata": {"labels": {"team": "data"}, "annotations": {"note": "x"}},
                "spec": {"containers": [{"name": "base", "image": "python:3.12",
                                         "securityContext": {"allowPrivilegeEscalation": False,
                                                             "privileged": False}}],
                         "volumes": [{"name": "scratch", "emptyDir": {}}],
                         "nodeSelector": {"pool": "batch"}, "hostNetwork": False}}
    assert check_job(job(namespace="batch", pod_override=override), settings) is None


def test_policy_can_be_switched_off_but_shape_still_holds(settings):
    relaxed = load_settings({}, kube=settings.kube,
                            intake=IntakeSettings(namespaces=("jobs",), pod_policy=False))
    assert check_job(job(pod_override=spec(hostNetwork=True)), relaxed) is None
    assert check_job(job(pod_override={"status": {}}), relaxed).startswith("job.pod_override.status:")


@pytest.mark.parametrize("namespace, reason", [
    ("kube-system", "job.namespace: 'kube-system' is not in the allowed namespaces (jobs, batch)"),
    ("Bad_NS", "job.namespace: 'Bad_NS' is not a valid namespace name"),
])
def test_namespace_allowlist(settings, namespace, reason):
    assert check_job(job(namespace=namespace), settings) == reason


def test_default_namespace_is_allowed_and_star_allows_any(settings):
    assert check_job(job(), settings) is None
    anything = load_settings({}, intake=IntakeSettings(namespaces=("*",)))
    assert check_job(job(namespace="whatever"), anything) is None


@pytest.mark.parametrize("name, reason", [
    ("../etc/passwd", "job.pod_template: '../etc/passwd' is not a template name (names only, no paths)"),
    ("/abs/path", "job.pod_template: '/abs/path' is not a template name (names only, no paths)"),
    ("a..b", "job.pod_template: 'a..b' is not a template name (names only, no paths)"),
    ("missing", "job.pod_template: no template named 'missing' is configured"),
    ("broken", "job.pod_template: template 'broken' cannot be read as YAML at line 2, column 1"),
    ("list", "job.pod_template: template 'list' is not a map (found a list)"),
    ("root", "job.pod_template[root].spec.hostPID: refused by pod policy (host namespaces)"),
])
def test_templates_only_by_name_from_the_configured_directory(settings, name, reason):
    assert check_job(job(namespace="jobs", pod_template=name), settings) == reason


def test_template_errors_never_quote_file_content(settings):
    assert "SECRET" not in check_job(job(namespace="jobs", pod_template="broken"), settings)


def test_named_template_is_admitted(settings):
    assert check_job(job(namespace="jobs", pod_template="gpu"), settings) is None


def test_no_templates_dir_means_no_named_templates():
    assert check_job(job(pod_template="gpu"), load_settings({})) == \
        "job.pod_template: no template named 'gpu' is configured"


def test_record_size_limit(settings):
    small = load_settings({}, kube=settings.kube, intake=IntakeSettings(max_record_bytes=1024))
    big = job(command=["x" * 2000])
    reason = check_job(big, small)
    assert reason.startswith("job: record is ") and reason.endswith("bytes, over the 1024-byte limit")
    assert check_job(job(command=["x" * 200]), small) is None


def test_submit_with_intakes_settings_raises_intakes_message(settings):
    from podq.broker.client.submit import SubmitError, submit

    bad = job(namespace="jobs", pod_override=spec(hostPID=True))
    with pytest.raises(SubmitError) as caught:
        submit(None, bad, settings=settings)  # refused before anything is sent
    assert str(caught.value).endswith(": " + check_job(bad, settings))


@pytest.mark.parametrize("text, problem", [
    ("kind: Secret\nspec: {containers: [{name: x}]}\n", "is not a Pod"),
    ("kind: Pod\nmetadata: {}\n", "has no spec map"),
    ("kind: Pod\nspec: {containers: []}\n", "has no spec.containers list"),
    ("spec: {containers: [{name: x}]}\nmetadata: {annotations: {when: 2024-01-01}}\n", "not JSON"),
])
def test_admission_refuses_what_a_worker_could_not_build_from(tmp_path, text, problem):
    # The same store and rules as the workers: a template admitted here never fails in a worker.
    (tmp_path / "odd.yaml").write_text(text)
    settings = load_settings({}, intake=IntakeSettings(templates_dir=str(tmp_path)))
    reason = check_job(job(pod_template="odd"), settings)
    assert reason is not None and reason.startswith("job.pod_template: template 'odd'") and problem in reason
    with pytest.raises(TemplateError) as raised:
        template_store(str(tmp_path)).get("odd")
    assert reason == f"job.pod_template: {raised.value}"


def test_a_namespace_the_watcher_settings_leave_out_is_refused():
    env = {"PODQ_INTAKE_NAMESPACES": "team-a,default", "PODQ_WATCHER_NAMESPACES": "default"}
    settings = load_settings(env)
    assert check_job(job(namespace="team-a"), settings) == (
        "job.namespace: 'team-a' is not watched (PODQ_WATCHER_NAMESPACES: default), so nothing could report its pod")
    assert check_job(job(namespace="default"), settings) is None
    # Every namespace watched, or the watched set not stated in the settings: admitted.
    assert check_job(job(namespace="team-a"), load_settings({**env, "PODQ_WATCHER_NAMESPACES": "*"})) is None
    assert check_job(job(namespace="team-a"), load_settings({"PODQ_INTAKE_NAMESPACES": "team-a"})) is None
