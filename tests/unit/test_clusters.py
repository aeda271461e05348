"""Clusters as settings (PODQ_KUBE_CLUSTER(S), PODQ_CLUSTER_<NAME>_*, PODQ_KUBE_ROUTES) and routing."""
from __future__ import annotations

import pytest

from podq.broker.store import keys
from podq.shared import clusters
from podq.shared.errors import SettingsError
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import load_settings

CELL = {"PODQ_KUBE_CLUSTER": "home", "PODQ_KUBE_CLUSTERS": "eu-west,gpu", "PODQ_KUBE_KUBECONFIG": "/etc/home.yaml",
        "PODQ_WORKER_CREATE_RATE": "300", "PODQ_CLUSTER_EU_WEST_KUBECONFIG": "/etc/eu.yaml",
        "PODQ_CLUSTER_EU_WEST_CONTEXT": "eu", "PODQ_CLUSTER_GPU_CREATE_RATE": "20",
        "PODQ_CLUSTER_GPU_WATCH_NAMESPACES": "ml,batch",
        "PODQ_KUBE_ROUTES": "namespace:ml=gpu, scheduler:eu-*=eu-west, template:gpu-large=gpu"}


def job(**fields) -> KubernetesJob:
    scheduler = fields.pop("scheduler_id", "sched")
    return KubernetesJob.new(scheduler_id=scheduler, key=TaskKey(dag_id="d", task_id="t", run_id="r"), **fields)


def test_a_cell_without_cluster_settings_has_its_one_default_cluster():
    settings = load_settings({})
    assert clusters.names(settings) == ("default",)
    assert clusters.route(job(), settings) == (None, None)
    assert clusters.settings_for(settings, None).kube == settings.kube
    assert keys.celery_queue(None) == keys.CELERY_QUEUE


def test_each_cluster_takes_the_cells_settings_but_where_its_own_variables_differ():
    settings = load_settings(CELL)
    assert clusters.names(settings) == ("home", "eu-west", "gpu")
    home, eu, gpu = (clusters.settings_for(settings, name) for name in ("home", "eu-west", "gpu"))
    assert (home.kube.kubeconfig, home.kube.cluster, home.worker.create_rate) == ("/etc/home.yaml", "home", 300.0)
    assert (eu.kube.kubeconfig, eu.kube.context, eu.worker.create_rate) == ("/etc/eu.yaml", "eu", 300.0)
    assert (gpu.kube.kubeconfig, gpu.worker.create_rate, gpu.watcher.namespaces) == ("/etc/home.yaml", 20.0,
                                                                                       ("ml", "batch"))
    assert clusters.settings_for(settings, None).kube.cluster == "home"
    assert clusters.as_recorded(settings) == (None, "eu-west", "gpu")


@pytest.mark.parametrize("fields, expected", [
    ({"cluster": "gpu"}, "gpu"),                               # its own field first
    ({"cluster": "home"}, None),                               # the default is kept as no cluster
    ({"namespace": "ml", "cluster": "eu-west"}, "eu-west"),    # the field beats a rule
    ({"namespace": "ml"}, "gpu"),
    ({"scheduler_id": "eu-airflow"}, "eu-west"),               # a prefix rule
    ({"pod_template": "gpu-large"}, "gpu"),
    ({"pod_template": "gpu-large-2"}, None),                   # no prefix without "*"
    ({}, None),
])
def test_a_job_goes_to_its_field_else_the_first_matching_rule_else_the_default(fields, expected):
    assert clusters.route(job(**fields), load_settings(CELL)) == (expected, None)


def test_a_namespace_rule_sees_the_default_namespace_of_a_job_without_one():
    settings = load_settings({**CELL, "PODQ_KUBE_NAMESPACE": "ml"})
    assert clusters.route(job(), settings) == ("gpu", None)


def test_an_unknown_cluster_is_refused_with_the_cells_clusters_named():
    cluster, why = clusters.route(job(cluster="eu-east"), load_settings(CELL))
    assert cluster is None
    assert why == "job.cluster: 'eu-east' is not a cluster of this cell (clusters: home, eu-west, gpu)"


@pytest.mark.parametrize("env, message", [
    ({"PODQ_KUBE_CLUSTERS": "Bad_Name"}, "PODQ_KUBE_CLUSTERS: 'Bad_Name' is not a cluster name"),
    ({"PODQ_KUBE_CLUSTERS": "a,a"}, "PODQ_KUBE_CLUSTERS: a cluster is named twice"),
    ({"PODQ_CLUSTER_B_KUBECONFIG": "/x"}, "PODQ_CLUSTER_B_KUBECONFIG: no such cluster setting (clusters: default;"),
    ({"PODQ_KUBE_CLUSTERS": "b", "PODQ_CLUSTER_B_KUBECONFG": "/x"}, "PODQ_CLUSTER_B_KUBECONFG: no such cluster setting"),
    ({"PODQ_KUBE_CLUSTERS": "b", "PODQ_CLUSTER_B_CREATE_RATE": "fast"}, "PODQ_CLUSTER_B_CREATE_RATE: expected a number"),
    ({"PODQ_KUBE_ROUTES": "namespace:ml=gpu"}, "PODQ_KUBE_ROUTES: 'namespace:ml=gpu' names cluster 'gpu', which is not"),
    ({"PODQ_KUBE_ROUTES": "label:x=default"}, "PODQ_KUBE_ROUTES: 'label:x=default' is not <namespace|scheduler|template>"),
    ({"PODQ_KUBE_ROUTES": "namespace=default"}, "PODQ_KUBE_ROUTES: 'namespace=default' is not"),
])
def test_bad_cluster_settings_fail_at_load_naming_the_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert message in str(caught.value)


def test_settings_for_an_unknown_cluster_say_which_are_known():
    with pytest.raises(SettingsError, match=r"cluster 'nope' is not one of this cell's \(home, eu-west, gpu"):
        clusters.settings_for(load_settings(CELL), "nope")


def test_each_cluster_has_its_own_celery_queue():
    assert keys.celery_queue("gpu") == "podq.pods.gpu" != keys.celery_queue(None)
