"""kubesim pure logic: outcome annotations, pod defaults and validation, status model, event history."""

import pytest

from podq.kubesim import outcomes as oc
from podq.kubesim.errors import ApiError
from podq.kubesim.history import ADDED, Event, History
from podq.kubesim.pods import apply_defaults, generate_name, qos_class, validate_create, validate_spec_update
from podq.kubesim.statuses import PodModel, image_id


def test_outcome_defaults_and_overrides() -> None:
    plain = oc.outcome_of(None, default_run_seconds=0.05)
    assert (plain.kind, plain.exit_code, plain.run_seconds) == ("Succeeded", 0, 0.05)
    failing = oc.outcome_of({oc.EXIT_CODE: "3", oc.RUN_SECONDS: "2"}, default_run_seconds=0.05)
    assert (failing.kind, failing.exit_code, failing.run_seconds) == ("Failed", 3, 2.0)
    assert oc.outcome_of({oc.OUTCOME: "OOMKilled"}, default_run_seconds=0).exit_code == 137
    assert oc.outcome_of({oc.OUTCOME: "bogus", oc.RUN_SECONDS: "x"}, default_run_seconds=1).kind == "Succeeded"
    assert oc.outcome_of({oc.OUTCOME: "Evicted", oc.MESSAGE: "m"}, default_run_seconds=0).message_for("Evicted") == "m"


def test_generate_name_shape() -> None:
    name = generate_name("x" * 70)
    assert len(name) == 63 and name.startswith("x" * 58)
    assert set(name[58:]) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_defaults() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "x:1.0"}]}}
    apply_defaults(pod)
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always" and spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst" and spec["schedulerName"] == "default-scheduler"
    assert [t["key"] for t in spec["tolerations"]] == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert [c["imagePullPolicy"] for c in spec["containers"]] == ["Always", "IfNotPresent"]


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ({}, "BestEffort"),
        ({"requests": {"cpu": "1"}}, "Burstable"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
    ],
)
def test_qos_class(resources: dict, qos: str) -> None:
    assert qos_class({"containers": [{"name": "a", "image": "i", "resources": resources}]}) == qos


def test_validation_causes() -> None:
    with pytest.raises(ApiError) as info:
        validate_create({"metadata": {"name": "ok", "labels": {"bad key!": "v"}}, "spec": {"containers": [{"name": "a"}]}},
                        url_namespace="default")
    err = info.value
    assert err.code == 422
    assert {c["field"] for c in err.details["causes"]} == {"metadata.labels", "spec.containers[0].image"}
    assert err.message.startswith('Pod "ok" is invalid: [')
    with pytest.raises(ApiError) as info:
        validate_create({"metadata": {"name": "ok", "labels": {"a": 1}}, "spec": {}}, url_namespace="default")
    assert info.value.code == 400


def test_spec_update_rules() -> None:
    old = {"containers": [{"name": "a", "image": "i:1"}], "restartPolicy": "Never"}
    apply_defaults({"spec": old})
    allowed = {"containers": [{"name": "a", "image": "i:2"}], "restartPolicy": "Never", "activeDeadlineSeconds": 5}
    validate_spec_update("p", old_spec=old, new_spec=allowed)
    with pytest.raises(ApiError) as info:
        validate_spec_update("p", old_spec=old, new_spec={"containers": [{"name": "a", "image": "i:1"}], "restartPolicy": "Always"})
    assert info.value.code == 422


def test_status_model_keeps_transition_times_until_flip() -> None:
    model = PodModel(qos="BestEffort", containers=[("base", "apache/airflow:3.1.0")], init_containers=[])
    model.set_condition("Ready", "False", reason="ContainersNotReady", message="m")
    model.conditions["Ready"]["lastTransitionTime"] = "then"
    model.set_condition("Ready", "False", reason="PodCompleted")
    assert model.conditions["Ready"]["lastTransitionTime"] == "then"
    model.set_condition("Ready", "True")
    assert model.conditions["Ready"]["lastTransitionTime"] != "then"  # flipped: a fresh time
    model.report_containers = True
    cs = model.render()["containerStatuses"][0]
    assert cs["imageID"] == "" and cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    model.containers[0].run("T")
    cs = model.render()["containerStatuses"][0]
    assert cs["imageID"].startswith("docker.io/apache/airflow@sha256:") and cs["containerID"].startswith("containerd://")


def test_image_id_forms() -> None:
    assert image_id("busybox").startswith("docker.io/library/busybox@sha256:")
    assert image_id("ghcr.io/x/y:1").startswith("ghcr.io/x/y@sha256:")


def _event(rv: int) -> Event:
    return Event(rv, ADDED, "ns", {"metadata": {}}, b"{}", None)


def test_history_bounds_and_compaction() -> None:
    history = History(size=10, start_rv=100)
    assert history.available_from(100) and not history.available_from(99)
    for rv in range(101, 200):
        history.append(_event(rv))
    assert not history.available_from(100)
    assert history.available_from(history.compacted_rv)
    assert [e.rv for e in history.since(195)] == [196, 197, 198, 199]
    history.compact(199)
    assert len(history) == 0 and not history.available_from(198) and history.available_from(199)
