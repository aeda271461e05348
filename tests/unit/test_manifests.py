"""Every deployment file checked against its real schema, with validators from PyPI.

The Kubernetes objects are what ``kubectl kustomize`` renders of each overlay in
deploy/kubernetes/overlays, made as docs/operations.md ("A first deployment") says: the production
overlay's Redis users written by ``podq redis-acl --env-dir``. This needs ``kubectl`` with its built-in
kustomize v5 (kubectl 1.27 or newer: this machine kind ships it at /usr/bin/kubectl; Debian's own
``kubernetes-client`` is 1.20, too old for kustomize components).

- Kubernetes objects: the OpenAPI-derived JSON schemas of Kubernetes 1.37 (the version the
  pinned ``kubernetes`` client 37.x speaks), strict (unknown fields refused), as shipped by
  ``kubernetes-validate``;
- KEDA objects: KEDA's CRD schema as generated into ``cloudcoil.models.keda`` (pydantic models
  of KEDA 2.16's CRDs), plus a check that no field was dropped as unknown;
- compose.yaml: the Compose specification's JSON schema, as vendored by ``check-jsonschema``,
  validated with ``jsonschema``.

None of them needs the network: the schemas ship inside the packages.
"""
from __future__ import annotations

import base64
import copy
import importlib.resources
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda

import podq
from podq.broker.store import keys
from podq.broker.intake.policy import check_pod_policy
from podq.shared.pods.templates import parse_template

ROOT = Path(__file__).resolve().parents[2]
KUBE_DIR = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
KEDA_KINDS = {"ScaledObject": keda.ScaledObject, "TriggerAuthentication": keda.TriggerAuthentication}


OVERLAYS = sorted(path.name for path in (KUBE_DIR / "overlays").iterdir() if path.is_dir())
# docs/operations.md's production steps: the URL the Redis users' Secrets are written for.
PRODUCTION_URL = "rediss+sentinel://redis-sentinel:26379/podq/0"


def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found, ("these tests render deploy/kubernetes with `kubectl kustomize`: install kubectl 1.27 or newer "
                   "(kustomize v5 built in; Debian's kubernetes-client 1.20 is too old)")
    return found


def prepare(overlay_dir: Path) -> None:
    """What docs/operations.md has an operator do before rendering an overlay."""
    if overlay_dir.name == "production":
        subprocess.run([sys.executable, "-m", "podq", "redis-acl", "--scheduler", "airflow", "--url", PRODUCTION_URL,
                        "--env-dir", str(overlay_dir / "redis-users")], check=True, capture_output=True, timeout=60)
        (overlay_dir / "redis-tls").mkdir(exist_ok=True)
        (overlay_dir / "redis-tls" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n(the Redis CA)\n")


def render(overlay: str) -> list[dict]:
    """``kubectl kustomize`` of one overlay, in a copy of deploy/kubernetes prepared as the docs say."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "kubernetes"
        shutil.copytree(KUBE_DIR, copy, ignore=shutil.ignore_patterns("redis-users", "redis-tls"))
        prepare(copy / "overlays" / overlay)
        done = subprocess.run([kubectl(), "kustomize", str(copy / "overlays" / overlay)], capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize overlays/{overlay}: {done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


RENDERED = {overlay: render(overlay) for overlay in OVERLAYS}


def manifests() -> list[tuple[str, dict]]:
    """Every rendered object, a fresh copy each call (some tests break theirs on purpose)."""
    return [(f"{overlay}: {doc.get('kind')}/{doc['metadata']['name']}", copy.deepcopy(doc))
            for overlay, docs in RENDERED.items() for doc in docs]


def dropped_fields(given: Any, kept: Any, path: str = "") -> list[str]:
    """Paths present in ``given`` but not in ``kept`` (what a model ignored as unknown)."""
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path or "."]
        return [missing for name, value in given.items()
                for missing in (dropped_fields(value, kept[name], f"{path}.{name}") if name in kept
                                else [f"{path}.{name}"])]
    if isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [path]
        return [missing for index, (a, b) in enumerate(zip(given, kept))
                for missing in dropped_fields(a, b, f"{path}[{index}]")]
    return []


def schema_errors(doc: dict) -> list[str]:
    """Every way ``doc`` breaks its schema (empty: valid)."""
    if doc.get("apiVersion", "").startswith("keda.sh/"):
        model = KEDA_KINDS.get(doc.get("kind"))
        if model is None:
            return [f"no KEDA schema for kind {doc.get('kind')!r}"]
        try:
            parsed = model.model_validate(doc)
        except ValueError as exc:
            return [str(exc)]
        kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
        return [f"unknown field {path}" for path in dropped_fields(doc, kept)]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc).splitlines()[0]]
    return []


def compose_validator() -> jsonschema.protocols.Validator:
    text = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


MANIFESTS = manifests()


@pytest.mark.parametrize("where, doc", MANIFESTS, ids=[where for where, _ in MANIFESTS])
def test_every_manifest_matches_its_schema(where, doc):
    assert schema_errors(doc) == [], where


def test_the_manifests_include_keda_hpa_and_disruption_budgets():
    kinds = {(doc["apiVersion"], doc["kind"]) for _, doc in MANIFESTS}
    assert {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
            ("apps/v1", "Deployment")} <= kinds


@pytest.mark.parametrize("broken, expected", [
    (lambda d: d["spec"]["template"]["spec"].update(bogus=1), "bogus"),
    (lambda d: d["spec"].update(replicas="two"), "two"),
], ids=["unknown field", "wrong type"])
def test_the_kubernetes_validator_refuses_a_broken_deployment(broken, expected):
    doc = next(doc for _, doc in manifests() if doc["kind"] == "Deployment")
    broken(doc)
    errors = schema_errors(doc)
    assert errors and expected in errors[0]


@pytest.mark.parametrize("broken, expected", [
    (lambda d: d["spec"]["triggers"][0].update(typo="redis"), "unknown field .spec.triggers[0].typo"),
    (lambda d: d["spec"]["scaleTargetRef"].pop("name"), "scaleTargetRef.name"),
    (lambda d: d["spec"].update(minReplicaCount="one"), "minReplicaCount"),
], ids=["unknown field", "missing target", "wrong type"])
def test_the_keda_validator_refuses_a_broken_scaled_object(broken, expected):
    doc = next(doc for _, doc in manifests() if doc["kind"] == "ScaledObject")
    broken(doc)
    errors = schema_errors(doc)
    assert errors and expected in errors[0]


def test_compose_yaml_matches_the_compose_specification():
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert [error.message for error in compose_validator().iter_errors(doc)] == []


def test_compose_mounts_the_kubeconfig_named_by_the_settings_own_variable():
    from podq.shared.settings_doc import setting_docs
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    anchor = doc["x-podq"]
    assert anchor["environment"]["PODQ_KUBE_KUBECONFIG"] == "/etc/podq/kubeconfig"
    (volume,) = anchor["volumes"]
    host, inside, _mode = volume.rsplit(":", 2)
    assert inside == "/etc/podq/kubeconfig"
    variable = host.removeprefix("${").split(":-")[0]
    assert variable == "PODQ_KUBE_KUBECONFIG" and variable in {item.variable for item in setting_docs()}


def test_the_compose_validator_refuses_an_unknown_service_field():
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    doc["services"]["worker"]["replicaz"] = 3
    assert any("replicaz" in error.message for error in compose_validator().iter_errors(doc))


def _deployments(overlay: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in RENDERED[overlay] if doc["kind"] == "Deployment"}


def _of_kind(overlay: str, kind: str) -> list[dict]:
    return [doc for doc in RENDERED[overlay] if doc["kind"] == kind]


def test_the_overlays_are_plain_and_production():
    assert OVERLAYS == ["plain", "production"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_autoscaler_targets_the_worker_deployment_and_the_celery_queue(overlay):
    scalers = [doc for doc in RENDERED[overlay] if doc["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]
    assert len(scalers) == 1   # KEDA or the HPA: two controllers would fight over the replica count
    target = scalers[0]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "podq-worker")
    assert target["name"] in _deployments(overlay)
    if scalers[0]["kind"] == "ScaledObject":
        (trigger,) = scalers[0]["spec"]["triggers"]
        assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == keys.CELERY_QUEUE


def test_kedas_trigger_authentication_reads_only_keys_its_secret_has():
    secrets = {doc["metadata"]["name"]: doc for doc in _of_kind("plain", "Secret")}
    (auth,) = _of_kind("plain", "TriggerAuthentication")
    (scaled,) = _of_kind("plain", "ScaledObject")
    assert scaled["spec"]["triggers"][0]["authenticationRef"]["name"] == auth["metadata"]["name"]
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["name"] in secrets, f"{ref['name']} is not a Secret of the overlay (by its exact name)"
        assert ref["key"] in secrets[ref["name"]]["data"], f"Secret {ref['name']} has no key {ref['key']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_disruption_budget_selects_a_deployments_pods(overlay):
    labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in _deployments(overlay).values()]
    budgets = _of_kind(overlay, "PodDisruptionBudget")
    assert {doc["metadata"]["name"] for doc in budgets} == {"podq-worker", "podq-watcher", "podq-intake"}
    for doc in budgets:
        wanted = doc["spec"]["selector"]["matchLabels"]
        assert any(wanted.items() <= pod_labels.items() for pod_labels in labels), doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_is_written_once_in_the_overlay_and_reaches_every_object(overlay):
    written = sorted(path.relative_to(KUBE_DIR).as_posix() for path in KUBE_DIR.rglob("*.yaml")
               if "namespace: airflow" in path.read_text() or "value: airflow" in path.read_text())
    assert written == [f"overlays/{overlay}/kustomization.yaml" for overlay in OVERLAYS]
    namespace = yaml.safe_load((KUBE_DIR / "overlays" / overlay / "kustomization.yaml").read_text())["namespace"]
    assert {doc["metadata"].get("namespace") for doc in RENDERED[overlay]} == {namespace}
    for doc in _of_kind(overlay, "RoleBinding"):
        assert {subject["namespace"] for subject in doc["subjects"]} == {namespace}
    for doc in _deployments(overlay).values():
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item for item in container["env"]}
        assert env["PODQ_KUBE_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        assert "--namespace" not in container["args"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_image_is_named_once_and_carries_the_version(overlay):
    base = yaml.safe_load((KUBE_DIR / "base" / "kustomization.yaml").read_text())
    (image,) = base["images"]
    assert image["newTag"] == podq.__version__
    for doc in _deployments(overlay).values():
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert container["image"] == f"{image['newName']}:{podq.__version__}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_intake_and_workers_mount_the_templates_configmap_at_the_templates_dir(overlay):
    configmaps = {doc["metadata"]["name"]: doc for doc in _of_kind(overlay, "ConfigMap")}
    deployments = _deployments(overlay)
    for name in ("podq-intake", "podq-worker"):
        spec = deployments[name]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        folder = next(item["value"] for item in container["env"] if item["name"] == "PODQ_INTAKE_TEMPLATES_DIR")
        mount = next(item for item in container["volumeMounts"] if item["mountPath"] == folder)
        volume = next(item for item in spec["volumes"] if item["name"] == mount["name"])
        templates = configmaps[volume["configMap"]["name"]]["data"]
        assert "airflow-task.yaml" in templates
        # Each template passes the checks intake and the workers apply to it (the default pod policy too).
        for file_name, text in templates.items():
            pod = parse_template(text, name=file_name.removesuffix(".yaml"))
            assert check_pod_policy(pod, where=f"job.pod_template[{file_name}]") is None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_liveness_asks_the_running_process_and_tolerates_a_redis_blip(overlay):
    from podq.shared.loops import STALL_LIMIT
    for name, doc in _deployments(overlay).items():
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        for kind in ("livenessProbe", "startupProbe"):
            probe = container[kind]
            assert "exec" not in probe, f"{name}: a new interpreter per probe"
            assert probe["httpGet"] == {"path": "/healthz", "port": "metrics"}, name
            assert probe["timeoutSeconds"] >= 5, name
        live = container["livenessProbe"]
        # Restarted only after the loops have been stuck longer than a Redis outage keeps them busy.
        assert live["periodSeconds"] * live["failureThreshold"] >= STALL_LIMIT, name


def test_production_gives_each_service_its_own_redis_user_tls_and_replica_waits():
    secrets = {doc["metadata"]["name"]: doc for doc in _of_kind("production", "Secret")}
    for name, doc in _deployments("production").items():
        role = name.removeprefix("podq-")
        spec = doc["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        (source,) = container["envFrom"]
        secret = secrets[source["secretRef"]["name"]]
        url = base64.b64decode(secret["data"]["PODQ_REDIS_URL"]).decode()
        assert url.startswith(f"rediss+sentinel://podq-{role}:") and url.endswith("@redis-sentinel:26379/podq/0")
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["PODQ_REDIS_WAIT_REPLICAS"] == "1"
        ca = env["PODQ_REDIS_TLS_CA_FILE"]
        mount = next(item for item in container["volumeMounts"] if ca.startswith(item["mountPath"] + "/"))
        volume = next(item for item in spec["volumes"] if item["name"] == mount["name"])
        assert "ca.crt" in secrets[volume["secret"]["secretName"]]["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_declares_the_metrics_port_prometheus_scrapes(overlay):
    from podq.shared.settings import MetricsSettings
    port = MetricsSettings().port
    for name, doc in _deployments(overlay).items():
        template = doc["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port), name
        for container in template["spec"]["containers"]:
            assert {"name": "metrics", "containerPort": port} in container.get("ports", []), name


def _render_dir(path: Path) -> list[dict]:
    done = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {path}: {done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_the_remote_cluster_component_gives_every_service_the_cells_clusters():
    """components/remote-cluster added to the plain overlay (docs/operations.md, "Clusters"): valid objects,
    every service knows both clusters, the workers and west's watchers mount west's kubeconfig Secret."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "kubernetes"
        shutil.copytree(KUBE_DIR, copy, ignore=shutil.ignore_patterns("redis-users", "redis-tls"))
        overlay = copy / "overlays" / "plain" / "kustomization.yaml"
        overlay.write_text(overlay.read_text().replace("  - ../../components/keda\n",
                                                       "  - ../../components/keda\n  - ../../components/remote-cluster\n"))
        docs = _render_dir(copy / "overlays" / "plain")
    assert [error for doc in docs for error in schema_errors(doc)] == []
    deployments = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Deployment"}
    assert set(deployments) == {"podq-intake", "podq-worker", "podq-watcher", "podq-watcher-west"}
    for name, doc in deployments.items():
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert (env["PODQ_KUBE_CLUSTER"], env["PODQ_KUBE_CLUSTERS"]) == ("home", "west"), name
        mounted = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
        if name in ("podq-worker", "podq-watcher-west"):
            assert env["PODQ_CLUSTER_WEST_KUBECONFIG"].startswith("/etc/podq/clusters/west/"), name
            assert "/etc/podq/clusters/west" in mounted, name
    assert deployments["podq-watcher-west"]["spec"]["template"]["spec"]["containers"][0]["args"] == \
        ["watcher", "--cluster", "west"]


def test_the_remote_clusters_role_allows_what_workers_and_watchers_call_there():
    docs = _render_dir(KUBE_DIR / "remote-cluster")
    assert [error for doc in docs for error in schema_errors(doc)] == []
    (role,) = [doc for doc in docs if doc["kind"] == "Role"]
    base = yaml.safe_load_all((KUBE_DIR / "base" / "rbac.yaml").read_text())
    wanted: dict[str, set[str]] = {}
    for doc in base:
        if doc and doc["kind"] == "Role":
            for rule in doc["rules"]:
                for resource in rule["resources"]:
                    wanted.setdefault(resource, set()).update(rule["verbs"])
    granted = {resource: set(rule["verbs"]) for rule in role["rules"] for resource in rule["resources"]}
    assert granted == wanted
