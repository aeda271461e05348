"""`pip install 'podq[airflow]'` next to apache-airflow and the cncf-kubernetes provider: resolved and importable.

This environment is .venv-airflow, built by `make airflow-venv` from constraints-airflow.txt with
`pip install -e '.[airflow,test]' apache-airflow-providers-cncf-kubernetes`; these tests check
what it holds, so a constraint that stops resolving or importing fails here (and in `.ci/run`).
"""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version


def requirement(dist: str, name: str, extra: str | None = None) -> Requirement:
    for line in metadata.requires(dist) or []:
        req = Requirement(line)
        if req.name == name and (extra is None or (req.marker and req.marker.evaluate({"extra": extra}))):
            return req
    raise AssertionError(f"{dist} does not require {name}" + (f" in extra {extra}" if extra else ""))


def test_the_environment_is_consistent():
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_airflow_3_and_the_provider_sit_beside_podq():
    assert Version(metadata.version("apache-airflow")).major == 3
    assert requirement("podq", "apache-airflow", extra="airflow").specifier.contains(
        metadata.version("apache-airflow"))
    assert Version(metadata.version("apache-airflow-providers-cncf-kubernetes")) >= Version("10.0")


def test_kubernetes_is_the_low_end_of_podqs_tested_range():
    installed = metadata.version("kubernetes")
    podq_range = requirement("podq", "kubernetes").specifier
    provider_range = requirement("apache-airflow-providers-cncf-kubernetes", "kubernetes").specifier
    assert podq_range.contains(installed) and provider_range.contains(installed)
    assert installed == "36.0.3", "constraints-airflow.txt pins the low end podq is tested with"


def test_airflow_loads_the_executor_by_its_class_path():
    from airflow.executors.executor_loader import ExecutorLoader, ExecutorName
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from podq.airflow.executor import PodqExecutor

    loaded, _source = ExecutorLoader.import_executor_cls(ExecutorName("podq.airflow.executor.PodqExecutor"))
    assert loaded is PodqExecutor
    assert KubernetesExecutor.__module__.startswith("airflow.providers.cncf.kubernetes")
