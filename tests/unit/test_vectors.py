"""The Python codec against the conformance vectors in docs/vectors/vectors.json."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import msgpack
import pytest

from podq.broker.control.operations import validate_control
from podq.broker.intake.admission import check_job
from podq.broker.intake.service import Rejection, rejection_result
from podq.broker.store import keys
from podq.broker.store.ledger import LedgerEntry
from podq.shared.errors import DecodeError
from podq.shared.naming import derive_job_id, pod_name_for
from podq.shared.records import ControlRecord, KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
VECTORS_DIR = ROOT / "docs" / "vectors"
DATA = json.loads((VECTORS_DIR / "vectors.json").read_text(encoding="utf-8"))
RECORDS = {"job": KubernetesJob, "control": ControlRecord, "result": KubernetesWatch}


def by(**match):
    return [pytest.param(v, id=v["name"]) for v in DATA["vectors"]
            if all(v[name] == value for name, value in match.items())]


def test_committed_vectors_are_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("podq_vectors_generate", VECTORS_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (VECTORS_DIR / "vectors.json").read_text(encoding="utf-8"), \
        "docs/vectors/vectors.json is stale: run .venv/bin/python docs/vectors/generate.py"


@pytest.mark.parametrize("vector", by(valid=True))
def test_valid_vector_decodes_as_documented(vector):
    record = RECORDS[vector["kind"]].decode(bytes.fromhex(vector["hex"]))
    assert json.loads(json.dumps(record.to_wire())) == vector["decoded"]
    # And what podq writes back reads the same.
    assert RECORDS[vector["kind"]].decode(record.encode()) == record


@pytest.mark.parametrize("vector", by(valid=False, stage="decode"))
def test_invalid_vector_is_refused_with_its_documented_reason(vector):
    with pytest.raises(DecodeError) as caught:
        RECORDS[vector["kind"]].decode(bytes.fromhex(vector["hex"]))
    assert str(caught.value) == vector["error"]


@pytest.mark.parametrize("vector", by(valid=False, stage="admission", kind="control"))
def test_control_admission_vector_is_refused_by_intake_with_its_documented_reason(vector):
    owners = {job["job_id"]: job["scheduler_id"] for job in DATA["admission_ledger"]}

    class Ledger:
        def get(self, job_id):
            return LedgerEntry(job_id=job_id, scheduler_id=owners[job_id]) if job_id in owners else None

    record = ControlRecord.decode(bytes.fromhex(vector["hex"]))
    assert validate_control(record, Ledger()) == vector["error"]


@pytest.mark.parametrize("vector", by(valid=False, stage="admission", kind="job"))
def test_admission_vector_is_refused_by_intake_with_its_documented_reason(vector):
    settings = load_settings({})
    assert DATA["admission_settings"]["namespaces"] == [settings.kube.namespace]
    job = KubernetesJob.decode(bytes.fromhex(vector["hex"]))
    assert check_job(job, settings) == vector["error"]


@pytest.mark.parametrize("vector", by(valid=False, kind="job"))
def test_refused_job_vector_names_who_gets_its_failed_result(vector):
    identity = KubernetesJob.identity(bytes.fromhex(vector["hex"]))
    expected = vector["failed_result"]
    if expected is None:
        assert identity is None
    else:
        scheduler_id, key = identity
        # What intake publishes for it (broker/intake/service.rejection_result), annotations included.
        published = rejection_result(Rejection(stream=keys.JOBS_STREAM, entry_id="1-0",
                                               payload=bytes.fromhex(vector["hex"]), reason=vector["error"]))
        assert {"scheduler_id": published.scheduler_id, "job_id": published.job_id,
                "annotations": published.annotations} == expected
        assert published.job_id == derive_job_id(scheduler_id, key)


@pytest.mark.parametrize("vector", by(valid=True, stage="admission", kind="job"))
def test_admitted_vector_passes_intakes_checks(vector):
    job = KubernetesJob.decode(bytes.fromhex(vector["hex"]))
    assert check_job(job, load_settings({})) is None


def test_vectors_cover_every_well_formedness_problem():
    errors = [v["error"] for v in DATA["vectors"] if not v["valid"]]
    for problem in ("duplicate map key", "map keys must be strings", "a string is not valid UTF-8",
                    "a map key is not valid UTF-8", "msgpack extension types are not allowed",
                    "nested too deeply", "invalid format byte", "incomplete record", "extra bytes"):
        assert any(problem in error for error in errors), problem
    # Both answers to "who hears of a refused job" are shown.
    answers = {v["failed_result"] is None for v in DATA["vectors"] if "failed_result" in v}
    assert answers == {True, False}


@pytest.mark.parametrize("case", DATA["job_ids"], ids=lambda case: case["job_id"][:8])
def test_job_id_and_pod_name_derivation(case):
    key = TaskKey(**case["task_key"])
    assert derive_job_id(case["scheduler_id"], key) == case["job_id"]
    assert pod_name_for(case["job_id"], key) == case["pod_name"]


def test_newer_minor_version_is_accepted_and_unknown_fields_ignored():
    [vector] = [v for v in DATA["vectors"] if v["name"] == "job-newer-minor"]
    raw = msgpack.unpackb(bytes.fromhex(vector["hex"]))
    assert raw["schema"] == "1.7" and "deadline" in raw and "attempt_uuid" in raw["task_key"]
    job = KubernetesJob.decode(bytes.fromhex(vector["hex"]))
    assert "deadline" not in job.to_wire()
    assert job.encode() == KubernetesJob.decode(job.encode()).encode()
    assert msgpack.unpackb(job.encode())["schema"] == "1.0"


def test_new_major_version_is_refused():
    [vector] = [v for v in DATA["vectors"] if v["name"] == "schema-major-2"]
    with pytest.raises(DecodeError, match=r"^job\.schema: major version 2 is not supported"):
        KubernetesJob.decode(bytes.fromhex(vector["hex"]))


def test_every_documented_kind_and_stage_is_covered():
    kinds = {(v["kind"], v["valid"], v["stage"]) for v in DATA["vectors"]}
    assert {("job", True, "decode"), ("control", True, "decode"), ("result", True, "decode"),
            ("job", False, "decode"), ("control", False, "decode"), ("result", False, "decode"),
            ("job", False, "admission"), ("control", False, "admission")} <= kinds


def test_traceparent_is_carried_when_sent_and_absent_from_the_wire_otherwise():
    [vector] = [v for v in DATA["vectors"] if v["name"] == "job-traceparent"]
    sent = msgpack.unpackb(bytes.fromhex(vector["hex"]))["traceparent"]
    job = KubernetesJob.decode(bytes.fromhex(vector["hex"]))
    assert job.traceparent == sent == vector["decoded"]["traceparent"]
    assert msgpack.unpackb(job.encode())["traceparent"] == sent
    without = [v for v in DATA["vectors"] if v["valid"] and v["kind"] == "job" and v["name"] != "job-traceparent"]
    assert without
    for other in without:
        job = KubernetesJob.decode(bytes.fromhex(other["hex"]))
        assert job.traceparent is None and "traceparent" not in other["decoded"], other["name"]
        assert "traceparent" not in msgpack.unpackb(job.encode()), other["name"]


def test_invalid_traceparents_are_refused_with_the_documented_messages():
    errors = {v["name"]: v["error"] for v in DATA["vectors"] if v["name"].startswith("traceparent-")}
    assert errors == {
        "traceparent-upper-case": "job.traceparent: not a W3C traceparent "
                                  "(00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>, lower case)",
        "traceparent-zero-trace-id": "job.traceparent: an all-zero trace id or parent id is invalid",
        "traceparent-long": "job.traceparent: longer than 55 characters (58)",
        "traceparent-empty": "job.traceparent: must not be empty",
    }
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    for message in errors.values():
        assert f"`{message}`" in protocol, message


def test_protocol_lists_exactly_the_podspec_fields_intake_accepts():
    from podq.broker.intake.policy import SPEC_KEYS
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    listed = text.split("the fields of a v1 PodSpec as of Kubernetes 1.33:", 1)[1].split("—", 1)[0]
    assert sorted(name.strip(" `\n") for name in listed.split(",")) == sorted(SPEC_KEYS)


def test_protocol_names_a_vector_for_each_settled_point():
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    names = {vector["name"] for vector in DATA["vectors"]}
    for name in ("refused-traceparent", "oversize-readable-ids", "shape-before-policy", "policy-first-rule-wins",
                 "control-first-check-wins", "result-first-problem-wins", "override-nil-label",
                 "override-nil-typed-field", "override-nil-removes", "override-depth-32", "override-too-deep",
                 "override-key-path", "job-integer-time"):
        assert name in names and f"`{name}`" in text, name
