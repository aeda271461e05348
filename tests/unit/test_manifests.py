"""Every deployment file checked against its real schema, with validators from PyPI.

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

import importlib.resources
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda

from podq.broker.store import keys

ROOT = Path(__file__).resolve().parents[2]
KUBE_DIR = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
KEDA_KINDS = {"ScaledObject": keda.ScaledObject, "TriggerAuthentication": keda.TriggerAuthentication}


def manifests() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(KUBE_DIR.glob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                found.append((f"{path.name}#{index} {doc.get('kind')}/{doc['metadata']['name']}", doc))
    return found


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


def test_the_compose_validator_refuses_an_unknown_service_field():
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    doc["services"]["worker"]["replicaz"] = 3
    assert any("replicaz" in error.message for error in compose_validator().iter_errors(doc))


def _deployments() -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in MANIFESTS if doc["kind"] == "Deployment"}


def test_the_autoscalers_target_the_worker_deployment_and_the_celery_queue():
    deployments = _deployments()
    scalers = [doc for _, doc in MANIFESTS if doc["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]
    assert len(scalers) == 2
    for doc in scalers:
        target = doc["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", "podq-worker")
        assert target["name"] in deployments
    scaled = next(doc for doc in scalers if doc["kind"] == "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == keys.CELERY_QUEUE
    auth = {doc["metadata"]["name"] for _, doc in MANIFESTS if doc["kind"] == "TriggerAuthentication"}
    assert trigger["authenticationRef"]["name"] in auth


def test_every_disruption_budget_selects_a_deployments_pods():
    labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in _deployments().values()]
    budgets = [doc for _, doc in MANIFESTS if doc["kind"] == "PodDisruptionBudget"]
    assert {doc["metadata"]["name"] for doc in budgets} == {"podq-worker", "podq-watcher", "podq-intake"}
    for doc in budgets:
        wanted = doc["spec"]["selector"]["matchLabels"]
        assert any(wanted.items() <= pod_labels.items() for pod_labels in labels), doc["metadata"]["name"]


def test_every_deployment_declares_the_metrics_port_prometheus_scrapes():
    from podq.shared.settings import MetricsSettings
    port = MetricsSettings().port
    for name, doc in _deployments().items():
        template = doc["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port), name
        for container in template["spec"]["containers"]:
            assert {"name": "metrics", "containerPort": port} in container.get("ports", []), name
