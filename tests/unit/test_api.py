"""The public Python API: what ``podq.__all__`` names, pinned; loaded lazily so ``import podq`` stays cheap."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import podq

ROOT = Path(__file__).parents[2]

# Changing this list is changing podq's public API: docs/api.md and CHANGELOG.md change with it.
PUBLIC = [
    "Client", "ControlOp", "ControlRecord", "DecodeError", "FailureDetails", "JobStatus", "KubernetesJob",
    "KubernetesResults", "PodqError", "ResultsConsumer", "SettingsError", "State", "SubmitError", "TaskKey",
    "connect", "job_status", "revoke", "send_control", "submit", "submit_many",
]


def test_all_is_pinned():
    assert podq.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_each_name_resolves_and_is_listed_by_dir(name):
    value = getattr(podq, name)
    assert value is not None
    assert name in dir(podq)
    # `from podq import X` gives the object itself (not a module, as `from podq.broker.client import submit` did)
    assert not isinstance(value, type(sys))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        podq.nope  # noqa: B018


def test_docs_api_lists_exactly_the_public_names():
    text = (ROOT / "docs" / "api.md").read_text()
    documented = set(re.findall(r"^### `(\w+)", text, flags=re.M))
    assert documented == set(PUBLIC)


def test_import_podq_loads_no_client_library():
    code = ("import sys, podq; print(sorted(m for m in ('redis', 'celery', 'kubernetes', 'msgpack', "
            "'podq.broker', 'podq.shared.records') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
