"""Write docs/vectors/vectors.json: podq's conformance vectors, from podq's own codec.

Run ``.venv/bin/python docs/vectors/generate.py`` after changing the protocol; the
unit tests fail when the committed file differs from what this script writes.

Each vector is a record as msgpack bytes (``hex``) with what podq makes of it:
``decoded`` (the record with every default filled in, as podq re-encodes it) for a
valid one, ``error`` (podq's exact message) for an invalid one. ``stage`` says
where podq refuses it: ``decode`` (any reader) or ``admission`` (intake, with the
settings in ``admission_settings``). ``job_ids`` lists derivations of job_id.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import msgpack

from podq.broker.control.operations import validate_control
from podq.broker.intake.admission import check_job
from podq.broker.store.ledger import LedgerEntry
from podq.shared.errors import DecodeError
from podq.shared.naming import TRACEPARENT as TRACEPARENT_ANNOTATION, derive_job_id, pod_name_for
from podq.shared.records import ControlRecord, KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.settings import load_settings

OUT = Path(__file__).with_name("vectors.json")
RECORDS = {"job": KubernetesJob, "control": ControlRecord, "result": KubernetesWatch}
ADMISSION_ENV: dict[str, str] = {}  # defaults: namespace "default", no templates, pod policy on
AT = 1_790_000_000.25
LAUNCH = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"  # Airflow writes a UUID like this at each queueing


def key(dag="etl", task="load", run="manual__2026-01-01", try_number=1, map_index=-1) -> dict[str, Any]:
    return {"dag_id": dag, "task_id": task, "run_id": run, "try_number": try_number, "map_index": map_index}


def jid(scheduler_id: str, task_key: dict[str, Any]) -> str:
    return derive_job_id(scheduler_id, TaskKey(**task_key))


def job(**fields) -> dict[str, Any]:
    return {"schema": "1.0", "kind": "job", "scheduler_id": "sched-a", "task_key": key(), **fields}


def control(**fields) -> dict[str, Any]:
    return {"schema": "1.0", "kind": "control", "op": "revoke", "scheduler_id": "sched-a",
            "job_id": jid("sched-a", key()), **fields}


def result(state="running", **fields) -> dict[str, Any]:
    job_id = jid("sched-a", key())
    return {"schema": "1.0", "kind": "result", "event_id": f"{job_id}:{state}", "job_id": job_id,
            "scheduler_id": "sched-a", "task_key": key(), "source": "watcher", "state": state,
            "terminal": state in ("succeeded", "failed", "lost", "revoked"),
            "pod_name": pod_name_for(job_id, TaskKey(**key())), "namespace": "default",
            "annotations": {}, "resource_version": "4711", "failure_details": None, "emitted_at": AT, **fields}


def raw(*items: tuple[str | bytes, Any]) -> bytes:
    """A msgpack map written pair by pair, so a key may repeat; bytes items are written as they are."""
    out = bytearray(b"\xde" + len(items).to_bytes(2, "big"))
    for item in items:
        for part in item:
            out += part if isinstance(part, bytes) else msgpack.packb(part, use_bin_type=True)
    return bytes(out)


def raw_job(*extra: tuple[str | bytes, Any], task_key: Any = None) -> bytes:
    """A job as raw pairs: the required fields, then ``extra`` (which may repeat one of them)."""
    return raw(("schema", "1.0"), ("kind", "job"), ("scheduler_id", "sched-a"),
               ("task_key", key() if task_key is None else task_key), *extra)


TIMESTAMP = b"\xd6\xff" + (1_790_000_000).to_bytes(4, "big")  # msgpack's timestamp extension (type -1)


def without(record: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name not in names}


def nested(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``record`` with ``path`` (dotted) set to ``value``."""
    copy = json.loads(json.dumps(record))
    *parents, last = path.split(".")
    node = copy
    for part in parents:
        node = node[part]
    node[last] = value
    return copy


def deep(levels: int) -> dict[str, Any]:
    """``levels`` maps nested in one another, the innermost holding a string."""
    node: Any = "v"
    for _ in range(levels):
        node = {"k": node}
    return node


LONG = "x" * 251
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"  # the W3C specification's example
VALID: list[tuple[str, str, Any]] = [
    ("job-minimal", "only the required fields; every default filled in", job()),
    ("job-minimal-key", "task_key without try_number and map_index (defaults 1 and -1)",
     job(task_key=without(key(), "try_number", "map_index"))),
    ("job-full", "every field, job_id given and matching",
     job(job_id=jid("sched-a", key()), command=["python", "-c", "print('hi')"], namespace="default",
         pod_template="gpu", pod_override={"metadata": {"labels": {"team": "data"}},
                                           "spec": {"nodeSelector": {"pool": "batch"}}},
         submitted_at=AT)),
    ("job-mapped-unicode", "a mapped task's third try, non-ASCII ids (job_id hashes their UTF-8)",
     job(scheduler_id="planificateur-é", task_key=key(dag="données", task="charger→s3", run="run ☃",
                                                      try_number=3, map_index=12))),
    ("job-nil-optionals", "nil optional fields read as absent",
     job(job_id=None, command=None, namespace=None, pod_template=None, pod_override=None, submitted_at=None)),
    ("job-integer-time", "submitted_at may be an integer", job(submitted_at=1790000000)),
    ("job-traceparent", "a W3C traceparent, carried as sent (a job without one has no traceparent field)",
     job(traceparent=TRACEPARENT)),
    ("job-priority", "a priority: higher goes first among its scheduler's waiting jobs (0, the default, is not written)",
     job(priority=-3)),
    ("job-priority-extremes", "the largest priority (a 32-bit signed integer)", job(priority=2 ** 31 - 1)),
    ("job-launch", "one launch of a try (Airflow's reschedule or resume): launch_id enters job_id",
     job(job_id=jid("sched-a", {**key(), "launch_id": LAUNCH}), task_key={**key(), "launch_id": LAUNCH})),
    ("job-cluster", "a job naming its cluster (absent: routing rules, else the default cluster)",
     job(cluster="eu-west")),
    ("job-newer-minor", "schema 1.7 from a newer producer: unknown fields ignored at every depth",
     job(schema="1.7", deadline=5, labels=["x"], task_key={**key(), "attempt_uuid": "u-1"})),
    ("control-revoke", "revoke one job", control(reason="operator request", requested_at=AT)),
    ("control-delete", "delete a job's pod with options",
     control(op="delete", delete_options={"gracePeriodSeconds": 0, "propagationPolicy": "Background"})),
    ("control-mark-done", "mark a job done", control(op="mark_done")),
    ("control-adopt", "a new scheduler takes over sched-a's jobs (no job_id)",
     without(control(op="adopt", new_scheduler_id="sched-b"), "job_id")),
    ("result-running", "a progress result", result()),
    ("result-failed", "a terminal failure with details",
     result("failed", failure_details={"pod_status": "Failed", "container_state": "terminated",
                                       "container_reason": "Error", "exit_code": 2,
                                       "container_type": "main", "container_name": "base"})),
    ("result-rejected", "intake's failed result for a refused job (no pod)",
     result("failed", source="intake", pod_name=None, namespace=None, resource_version=None,
            failure_details={"reason": "Rejected",
                             "message": "job.namespace: 'kube-system' is not in the allowed namespaces (default)"})),
    ("result-adopted", "adopted, published to the old scheduler: event_id names it",
     result("adopted", source="broker", event_id=f"{jid('sched-a', key())}:adopted:sched-a")),
    ("result-lost-with-events", "a job whose pod never ran: the pod's last Kubernetes Events in its failure",
     result("lost", failure_details={"pod_status": "Pending", "reason": "PodDeleted",
                                     "message": "pod deleted while Pending",
                                     "events": ["Normal Scheduled: Successfully assigned default/p to node-1",
                                                'Warning FailedMount: MountVolume.SetUp failed for volume "cfg" : '
                                                'configmap "airflow-config" not found (x4)']})),
    ("result-failed-with-log-tail", "a failed pod whose container started: its log's last lines (opt-in)",
     result("failed", failure_details={"pod_status": "Failed", "container_state": "terminated",
                                       "container_reason": "Error", "exit_code": 1, "container_type": "main",
                                       "container_name": "base",
                                       "log_tail": ["Traceback (most recent call last):",
                                                    "ModuleNotFoundError: No module named 'dags_helpers'"]})),
    ("result-launch", "a result about one launch: its task_key carries the launch_id",
     result(state="succeeded", job_id=jid("sched-a", {**key(), "launch_id": LAUNCH}),
            event_id=f"{jid('sched-a', {**key(), 'launch_id': LAUNCH})}:succeeded",
            task_key={**key(), "launch_id": LAUNCH},
            pod_name=pod_name_for(jid("sched-a", {**key(), "launch_id": LAUNCH}), TaskKey(**key())))),
    ("result-pending-reason", "a later pending: a new reason, its event_id names the pod's resourceVersion",
     result("pending", event_id=f"{jid('sched-a', key())}:pending:81273",
            pending_reason={"reason": "Unschedulable",
                            "message": "0/12 nodes are available: 12 Insufficient cpu."})),
    ("result-pending-reason-only", "a pending reason without a message",
     result("pending", pending_reason={"reason": "ContainerCreating"})),
    ("result-cluster", "a result naming the cluster of the job's pod",
     result("running", cluster="eu-west")),
    ("result-newer-minor", "schema 1.3 result with a field this reader does not know",
     result("succeeded", schema="1.3", node_name="node-7", terminal=True)),
]

INVALID: list[tuple[str, str, str, Any]] = [
    # (name, expected kind, description, record or raw bytes)
    ("not-msgpack", "job", "bytes that are not msgpack", b"\xc1"),
    ("truncated", "job", "a map cut short", msgpack.packb(job())[:20]),
    ("extra-bytes", "job", "a valid record followed by another byte", msgpack.packb(job()) + b"\x00"),
    ("too-deep", "job", "arrays nested past the decoder's limit", b"\x91" * 2000),
    ("not-a-map", "job", "an array instead of a map", ["schema", "1.0"]),
    ("integer-map-key", "job", "a map key that is not a string", {**job(), 7: "x"}),
    ("duplicate-scheduler-id", "job", "scheduler_id twice: refused, never the last one winning",
     raw_job(("scheduler_id", "sched-b"))),
    ("duplicate-key-in-task-key", "job", "task_key.run_id twice",
     raw_job(task_key=raw(("dag_id", "etl"), ("task_id", "load"), ("run_id", "a"), ("run_id", "b")))),
    ("duplicate-key-in-override", "job", "a label written twice inside pod_override (any depth counts)",
     raw_job(("pod_override", raw(("metadata", raw(("labels", raw(("team", "a"), ("team", "b"))))))))),
    ("command-not-utf8", "job", "a command item whose bytes are not UTF-8",
     raw_job(("command", b"\x92\xa4echo\xa2\xff\xfe"))),
    ("override-integer-key", "job", "a map key inside pod_override that is not a string",
     raw_job(("pod_override", raw(("spec", raw(("nodeSelector", {1: "x"}))))))),
    ("override-binary-key", "job", "a map key sent as msgpack bin",
     raw_job(("pod_override", raw((b"\xc4\x04spec", {}))))),
    ("key-not-utf8", "job", "a top-level map key whose bytes are not UTF-8",
     raw_job((b"\xa2\xc3\x28", 1))),
    ("timestamp-extension", "job", "submitted_at as msgpack's timestamp extension",
     raw_job(("submitted_at", TIMESTAMP))),
    ("extension-in-unknown-field", "job", "an extension type in a field podq does not know",
     raw_job(("deadline", b"\xd4\x05\x01"))),
    ("no-schema", "job", "schema missing", without(job(), "schema")),
    ("schema-number", "job", "schema as a float", job(schema=1.0)),
    ("schema-no-minor", "job", "schema without a minor version", job(schema="1")),
    ("schema-major-2", "job", "a new major version is refused", job(schema="2.0")),
    ("wrong-kind", "job", "a result record on the jobs stream", job(kind="result")),
    ("no-kind", "job", "kind missing", without(job(), "kind")),
    ("no-scheduler-id", "job", "scheduler_id missing", without(job(), "scheduler_id")),
    ("empty-scheduler-id", "job", "scheduler_id empty", job(scheduler_id="")),
    ("priority-not-integer", "job", "priority as a string", job(priority="high")),
    ("priority-float", "job", "priority as a float", job(priority=1.5)),
    ("priority-too-large", "job", "priority past a 32-bit signed integer", job(priority=2 ** 31)),
    ("priority-too-small", "job", "priority below a 32-bit signed integer", job(priority=-2 ** 31 - 1)),
    ("long-scheduler-id", "job", "scheduler_id over 250 characters", job(scheduler_id=LONG)),
    ("binary-scheduler-id", "job", "a string sent as msgpack bin", job(scheduler_id=b"sched-a")),
    ("no-task-key", "job", "task_key missing", without(job(), "task_key")),
    ("task-key-string", "job", "task_key not a map", job(task_key="etl.load")),
    ("no-run-id", "job", "task_key.run_id missing", job(task_key=without(key(), "run_id"))),
    ("try-number-string", "job", "try_number as a string", nested(job(), "task_key.try_number", "1")),
    ("try-number-bool", "job", "try_number as a bool", nested(job(), "task_key.try_number", True)),
    ("try-number-float", "job", "try_number as a float", nested(job(), "task_key.try_number", 1.0)),
    ("try-number-negative", "job", "try_number below 0", nested(job(), "task_key.try_number", -1)),
    ("launch-id-empty", "job", "launch_id empty", nested(job(), "task_key.launch_id", "")),
    ("launch-id-long", "job", "launch_id over 128 characters", nested(job(), "task_key.launch_id", "l" * 129)),
    ("launch-id-integer", "job", "launch_id as an integer", nested(job(), "task_key.launch_id", 7)),
    ("map-index-below", "job", "map_index below -1", nested(job(), "task_key.map_index", -2)),
    ("job-id-mismatch", "job", "job_id that is not the derived one", job(job_id="0" * 32)),
    ("command-string", "job", "command as one string", job(command="echo hi")),
    ("command-item", "job", "a command item that is not a string", job(command=["sleep", 5])),
    ("namespace-long", "job", "namespace over 63 characters", job(namespace="n" * 64)),
    ("override-array", "job", "pod_override not a map", job(pod_override=[{"spec": {}}])),
    ("submitted-at-string", "job", "submitted_at as a string", job(submitted_at="now")),
    ("submitted-at-nan", "job", "submitted_at NaN", job(submitted_at=math.nan)),
    ("traceparent-upper-case", "job", "a traceparent in upper-case hex", job(traceparent=TRACEPARENT.upper())),
    ("traceparent-zero-trace-id", "job", "a traceparent whose trace id is all zeros",
     job(traceparent=f"00-{'0' * 32}-00f067aa0ba902b7-01")),
    ("traceparent-long", "job", "a traceparent over 55 characters", job(traceparent=TRACEPARENT + "-00")),
    ("traceparent-empty", "job", "an empty traceparent", job(traceparent="")),
    ("cluster-empty", "job", "an empty cluster", job(cluster="")),
    ("cluster-long", "job", "a cluster name over 63 characters", job(cluster="c" * 64)),
    ("cluster-integer", "job", "cluster as an integer", job(cluster=2)),
    ("control-unknown-op", "control", "an op podq does not know", control(op="pause")),
    ("control-revoke-no-job", "control", "revoke without job_id", without(control(), "job_id")),
    ("control-adopt-no-new", "control", "adopt without new_scheduler_id",
     without(control(op="adopt"), "job_id")),
    ("control-reason-long", "control", "reason over 1024 characters", control(reason="r" * 1025)),
    ("control-duplicate-op", "control", "op twice",
     raw(*control().items(), ("op", "adopt"))),
    ("result-unknown-state", "result", "a state podq does not know", result("done")),
    ("result-unknown-source", "result", "a source podq does not know", result(source="kubelet")),
    ("result-no-event-id", "result", "event_id missing", without(result(), "event_id")),
    ("result-annotation-value", "result", "an annotation value that is not a string",
     result(annotations={"team": 7})),
    ("result-exit-code", "result", "failure_details.exit_code as a string",
     result("failed", failure_details={"exit_code": "137"})),
    ("result-events-not-strings", "result", "failure_details.events holding a number",
     result("failed", failure_details={"events": ["Warning Failed: x", 3]})),
    ("result-log-tail-not-list", "result", "failure_details.log_tail as a string",
     result("failed", failure_details={"log_tail": "line 1"})),
    ("result-pending-reason-no-reason", "result", "pending_reason without its reason",
     result("pending", pending_reason={"message": "waiting"})),
    ("result-pending-reason-not-map", "result", "pending_reason as a string",
     result("pending", pending_reason="Unschedulable")),
    ("result-duplicate-state", "result", "state twice", raw(*result().items(), ("state", "succeeded"))),
    ("oversize-readable-ids", "job", "over the 256 KiB record limit, its scheduler_id and task_key readable: "
     "refused before any field is read, and its scheduler still gets the failed result",
     job(command=["x" * (256 * 1024)])),
    ("result-first-problem-wins", "result", "an unknown state and a bad exit code: fields are read in the "
     "table's order, so the state's message is the refusal", result("done", failure_details={"exit_code": "1"})),
]

ADMISSION: list[tuple[str, str, Any]] = [
    ("namespace-not-allowed", "namespace outside the allowlist", job(namespace="kube-system")),
    ("namespace-invalid", "namespace that is not a DNS-1123 label", job(namespace="Data_Team")),
    ("template-path", "a path instead of a template name", job(pod_template="../../etc/pod")),
    ("template-unknown", "a template name the deployment does not have", job(pod_template="gpu")),
    ("override-not-pod-field", "pod_override with a field a Pod has not", job(pod_override={"status": {}})),
    ("override-metadata-name", "pod_override naming the pod", job(pod_override={"metadata": {"name": "mine"}})),
    ("override-spec-field", "pod_override.spec with a misspelt field", job(pod_override={"spec": {"hostnetwork": True}})),
    ("policy-host-network", "hostNetwork", job(pod_override={"spec": {"hostNetwork": True}})),
    ("policy-host-pid", "hostPID", job(pod_override={"spec": {"hostPID": True}})),
    ("policy-host-ipc", "hostIPC", job(pod_override={"spec": {"hostIPC": True}})),
    ("policy-host-path", "a hostPath volume",
     job(pod_override={"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}})),
    ("policy-privileged", "a privileged container",
     job(pod_override={"spec": {"containers": [{"name": "base", "securityContext": {"privileged": True}}]}})),
    ("policy-escalation", "privilege escalation in an init container",
     job(pod_override={"spec": {"initContainers": [
         {"name": "init", "securityContext": {"allowPrivilegeEscalation": True}}]}})),
    ("refused-traceparent", "a refused job with a traceparent: its failed result carries it (failed_result)",
     job(namespace="kube-system", traceparent=TRACEPARENT)),
    ("shape-before-policy", "a misspelt spec field and hostNetwork: the shape check runs before the policy",
     job(pod_override={"spec": {"hostNetwork": True, "hostnetwork": True}})),
    ("policy-first-rule-wins", "host namespaces, a hostPath volume and a privileged container: the rules "
     "are checked in the documented order, host namespaces first",
     job(pod_override={"spec": {"containers": [{"name": "base", "securityContext": {"privileged": True}}],
                                "volumes": [{"name": "root", "hostPath": {"path": "/"}}], "hostPID": True}})),
    ("override-nil-label", "nil as a label value: labels are maps of strings, nil included",
     job(pod_override={"metadata": {"labels": {"team": None}}})),
    ("override-nil-typed-field", "nil for a PodSpec field whose type admission checks",
     job(pod_override={"spec": {"nodeSelector": None}})),
    ("override-too-deep", "33 nested maps (the override's own map is level 1; scalars add no level)",
     job(pod_override={"spec": {"affinity": deep(31)}})),
    ("override-key-path", "a key that is not an identifier, as admission messages write it: after a dot, verbatim",
     job(pod_override={"spec": {"host network": True}})),
]

# Jobs intake admits under admission_settings (valid, stage "admission").
ADMITTED: list[tuple[str, str, Any]] = [
    ("override-nil-removes", "nil where admission checks no type is strategic merge's delete: the worker "
     "removes that key from the template's pod (here the template's priorityClassName)",
     job(pod_override={"spec": {"priorityClassName": None}})),
    ("override-depth-32", "32 nested maps, the deepest holding a scalar: at the limit, admitted",
     job(pod_override={"spec": {"affinity": deep(30)}})),
]

# What intake's ledger holds for the control vectors: one job, sched-a's.
ADMISSION_LEDGER = [{"job_id": jid("sched-a", key()), "scheduler_id": "sched-a"}]

CONTROL_ADMISSION: list[tuple[str, str, Any]] = [
    ("control-complete", "complete is podq's own operation", control(op="complete")),
    ("control-adopt-own-jobs", "a scheduler adopting its own jobs",
     without(control(op="adopt", new_scheduler_id="sched-a"), "job_id")),
    ("control-delete-option-unknown", "a delete option the API does not have",
     control(op="delete", delete_options={"force": True})),
    ("control-delete-option-type", "gracePeriodSeconds as a string",
     control(op="delete", delete_options={"grace_period_seconds": "0"})),
    ("control-delete-option-negative", "a negative grace period",
     control(op="delete", delete_options={"gracePeriodSeconds": -1})),
    ("control-delete-option-policy", "a propagation policy the API does not have",
     control(op="delete", delete_options={"propagationPolicy": "Now"})),
    ("control-unknown-job", "a job the ledger does not hold", control(job_id="f" * 32)),
    ("control-first-check-wins", "complete with a bad delete option: the checks run in the documented "
     "order, complete first", control(op="complete", delete_options={"force": True})),
    ("control-other-scheduler", "another scheduler's job", control(scheduler_id="sched-b")),
]


class VectorLedger:
    """The ledger of ``ADMISSION_LEDGER``, as far as control checks read it."""

    def __init__(self, jobs: list[dict[str, str]]) -> None:
        self.jobs = {job["job_id"]: job["scheduler_id"] for job in jobs}

    def get(self, job_id: str) -> LedgerEntry | None:
        owner = self.jobs.get(job_id)
        return None if owner is None else LedgerEntry(job_id=job_id, scheduler_id=owner)


JOB_ID_KEYS = [
    ("sched-a", key()),
    ("sched-a", key(try_number=2)),
    ("sched-a", key(map_index=0)),
    ("sched-b", key()),
    ("planificateur-é", key(dag="données", task="charger→s3", run="run ☃", try_number=3, map_index=12)),
    ("s", key(dag="d", task="t", run="r", try_number=0, map_index=1000)),
    # Pod names lower-case ASCII letters only: the Kelvin sign and the dotted capital I become "-".
    ("sched-a", key(dag="\u212aelvin", task="\u0130stanbul", run="r")),
    ("sched-a", key(dag="ETL_Daily", task="Load.S3", run="r")),
    # Two launches of one try (Airflow's reschedule, resume after deferral): two jobs, two pods.
    ("sched-a", {**key(), "launch_id": LAUNCH}),
    ("sched-a", {**key(), "launch_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"}),
]


def pack(value: Any) -> bytes:
    return value if isinstance(value, bytes) else msgpack.packb(value, use_bin_type=True)


def plain(value: Any) -> Any:
    """JSON-ready form of a decoded record (tuples as lists)."""
    return json.loads(json.dumps(value))


def error_of(kind: str, payload: bytes) -> str:
    try:
        RECORDS[kind].decode(payload)
    except DecodeError as exc:
        return str(exc)
    raise SystemExit(f"vector of kind {kind} unexpectedly decodes")


def failed_result(payload: bytes) -> dict[str, Any] | None:
    """Who gets intake's ``failed`` result for a refused job (its scheduler and job id) and the result's
    annotations (the job's traceparent, when the record has a valid one), or nobody."""
    identity = KubernetesJob.identity(payload)
    if identity is None:
        return None
    scheduler_id, task_key = identity
    traceparent = KubernetesJob.traceparent_of(payload)
    return {"scheduler_id": scheduler_id, "job_id": derive_job_id(scheduler_id, task_key),
            "annotations": {TRACEPARENT_ANNOTATION: traceparent} if traceparent else {}}


def build() -> dict[str, Any]:
    settings = load_settings(ADMISSION_ENV)
    vectors = []
    for name, description, record in VALID:
        payload = pack(record)
        decoded = RECORDS[record["kind"]].decode(payload)
        vectors.append({"name": name, "kind": record["kind"], "valid": True, "stage": "decode",
                        "description": description, "hex": payload.hex(), "decoded": plain(decoded.to_wire())})
    for name, kind, description, record in INVALID:
        payload = pack(record)
        vector = {"name": name, "kind": kind, "valid": False, "stage": "decode",
                  "description": description, "hex": payload.hex(), "error": error_of(kind, payload)}
        if kind == "job":
            vector["failed_result"] = failed_result(payload)
        vectors.append(vector)
    ledger = VectorLedger(ADMISSION_LEDGER)
    checks = {"job": lambda payload: check_job(KubernetesJob.decode(payload), settings),
              "control": lambda payload: validate_control(ControlRecord.decode(payload), ledger)}
    for kind, cases in (("job", ADMISSION), ("control", CONTROL_ADMISSION)):
        for name, description, record in cases:
            payload = pack(record)
            reason = checks[kind](payload)
            if reason is None:
                raise SystemExit(f"admission vector {name} is admitted")
            vector = {"name": name, "kind": kind, "valid": False, "stage": "admission",
                      "description": description, "hex": payload.hex(), "error": reason}
            if kind == "job":
                vector["failed_result"] = failed_result(payload)
            vectors.append(vector)
    for name, description, record in ADMITTED:
        payload = pack(record)
        reason = check_job(KubernetesJob.decode(payload), settings)
        if reason is not None:
            raise SystemExit(f"admitted vector {name} is refused: {reason}")
        vectors.append({"name": name, "kind": "job", "valid": True, "stage": "admission",
                        "description": description, "hex": payload.hex(),
                        "decoded": plain(KubernetesJob.decode(payload).to_wire())})
    job_ids = [{"scheduler_id": sid, "task_key": task_key, "job_id": jid(sid, task_key),
                "pod_name": pod_name_for(jid(sid, task_key), TaskKey(**task_key))}
               for sid, task_key in JOB_ID_KEYS]
    return {
        "protocol": "podq 1.0 (docs/protocol.md)",
        "admission_settings": {"namespaces": ["default"], "templates_dir": None, "pod_policy": True},
        "admission_ledger": ADMISSION_LEDGER,
        "vectors": vectors,
        "job_ids": job_ids,
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        return 0 if OUT.exists() and OUT.read_text(encoding="utf-8") == text else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(build()['vectors'])} vectors)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
