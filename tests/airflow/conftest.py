"""The Airflow tier: runs only in .venv-airflow (`make airflow-test`, `make airflow-test-quick`).

Airflow reads its configuration when first imported, so this conftest gives it a private
AIRFLOW_HOME (a session temporary directory) and the few settings every test needs first.
"""
from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="podq-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "podq-tests-jwt-secret-0123456789abcdef")
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "")


try:
    import airflow  # noqa: F401
except ImportError:
    # Not .venv-airflow: collect nothing here (`pytest tests/airflow` then reports no tests, exit 5).
    collect_ignore_glob = ["test_*.py"]
