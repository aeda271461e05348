"""kubesim's opt-in container runtime (``run_containers``) and the pods/log API, through the official client.

Each pod's command really runs here; the statuses come from what the process did (exit code, memory limit,
activeDeadlineSeconds, deletion's SIGTERM/SIGKILL) and its output is read back with read_namespaced_pod_log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from podq.kubesim.errors import KubeSimError
from podq.kubesim.process import spawn
from podq.kubesim.server import KubeSim
from podq.kubesim.testing import fast_settings, running_kubesim, wait_for
from tests.support import core_v1

NS = "default"
PY_IMAGE = "local/python:3"
"""mapped to this interpreter's directory, so ``python`` in a command is the test venv's interpreter"""
TERMINAL = ("Succeeded", "Failed")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSim]:
    settings = fast_settings(
        run_containers=True,
        image_map=(("local/python*", str(Path(sys.executable).parent)),),
        container_env=(("FROM_HOST", "host-value"),),
        runtime_dir=str(tmp_path_factory.mktemp("pods")),
        memory_poll=0.05,
    )
    with running_kubesim(settings) as server:
        yield server


@pytest.fixture(scope="module")
def v1(sim: KubeSim) -> Iterator[client.CoreV1Api]:
    with core_v1(sim.kubeconfig) as api:
        yield api


def pod(name: str, command: list[str] | None = None, *, image: str = PY_IMAGE, restart: str = "Never", **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image}
    if command is not None:
        container["command"] = command
    container.update(extra.pop("container", {}))
    return {"metadata": {"name": name, **extra.pop("metadata", {})}, "spec": {"restartPolicy": restart, "containers": [container], **extra}}


def python(code: str) -> list[str]:
    return ["python", "-c", code]


def finished(v1: client.CoreV1Api, name: str, *, timeout: float = 30.0) -> client.V1Pod:
    def check() -> client.V1Pod | None:
        current = v1.read_namespaced_pod(name, NS)
        return current if current.status.phase in TERMINAL else None

    return wait_for(check, timeout=timeout, what=f"pod {name} to finish")


def running(v1: client.CoreV1Api, name: str, *, timeout: float = 30.0) -> client.V1Pod:
    return wait_for(lambda: (lambda p: p if p.status.phase == "Running" else None)(v1.read_namespaced_pod(name, NS)),
                    timeout=timeout, what=f"pod {name} to run")


def terminated(p: client.V1Pod, index: int = 0) -> client.V1ContainerStateTerminated:
    state = p.status.container_statuses[index].state.terminated
    assert state is not None, p.status.container_statuses[index].state
    return state


def ending(v1: client.CoreV1Api, name: str) -> tuple[str, int, str]:
    """The finished pod's phase and its container's exit code and reason."""
    done = finished(v1, name)
    state = terminated(done)
    return done.status.phase, state.exit_code, state.reason


# -- statuses from real exits ------------------------------------------------------------------------


def test_exit_zero_succeeds_with_env_from_the_spec(v1: client.CoreV1Api) -> None:
    code = "import os; print(os.environ['GREETING'], os.environ['WHO'], os.environ['POD'], os.environ['FROM_HOST'], os.environ['LABEL'])"
    v1.create_namespaced_pod(NS, pod(
        "ok", python(code), metadata={"labels": {"team": "blue"}},
        container={"env": [
            {"name": "GREETING", "value": "hello"},
            {"name": "WHO", "value": "$(GREETING)-world"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
        ]},
    ))
    assert ending(v1, "ok") == ("Succeeded", 0, "Completed")
    assert v1.read_namespaced_pod_log("ok", NS) == "hello hello-world ok host-value blue\n"


def test_nonzero_exit_fails_with_the_code_and_reason_error(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod(NS, pod("bad", ["sh", "-c", "echo about to fail >&2; exit 3"], image="busybox"))
    assert ending(v1, "bad") == ("Failed", 3, "Error")
    assert v1.read_namespaced_pod_log("bad", NS) == "about to fail\n"


def test_fallback_to_logs_on_error_puts_the_output_end_in_the_message(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod(NS, pod("lastwords", ["sh", "-c", "seq 1 200; echo Traceback: boom; exit 1"], image="busybox",
                                     container={"terminationMessagePolicy": "FallbackToLogsOnError"}))
    message = terminated(finished(v1, "lastwords")).message
    assert message.endswith("200\nTraceback: boom\n") and message.count("\n") == 80


def test_a_missing_executable_is_a_start_error(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod(NS, pod("nocmd", ["no-such-program-kubesim"]))
    state = terminated(finished(v1, "nocmd"))
    assert (state.exit_code, state.reason) == (128, "StartError")
    assert 'exec: "no-such-program-kubesim": executable file not found in $PATH' in state.message


def test_args_alone_run_as_the_command_as_airflow_pods_give_them(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod(NS, pod("argsonly", container={"args": python("import sys; print(sys.executable)")}))
    assert finished(v1, "argsonly").status.phase == "Succeeded"
    printed = Path(v1.read_namespaced_pod_log("argsonly", NS).strip())
    assert printed.parent == Path(sys.executable).parent, "the image map put the venv first on PATH"


def test_a_secret_reference_is_a_config_error(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod(NS, pod("secretref", python("print(1)"), container={
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]}))

    def waiting() -> client.V1ContainerStateWaiting | None:
        statuses = v1.read_namespaced_pod("secretref", NS).status.container_statuses or []
        state = statuses[0].state.waiting if statuses else None
        return state if state is not None and state.reason == "CreateContainerConfigError" else None

    assert wait_for(waiting, timeout=20, what="CreateContainerConfigError").message == 'secret "creds" not found'


def test_exceeding_the_memory_limit_is_oomkilled(v1: client.CoreV1Api) -> None:
    grow = "import time\nblocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))\n    time.sleep(0.01)\n"
    v1.create_namespaced_pod(NS, pod("oom", python(grow), container={"resources": {"limits": {"memory": "128Mi"}}}))
    assert ending(v1, "oom") == ("Failed", 137, "OOMKilled")


def test_pages_shared_by_forked_processes_count_once(v1: client.CoreV1Api) -> None:
    # 96 MiB touched, then three forks sleeping on it: resident sizes add up to ~400 MiB, the real use is ~100
    script = ("import os, time\nblock = bytearray(96 << 20)\nfor _ in range(3):\n    if os.fork() == 0:\n"
              "        time.sleep(1.5); os._exit(0)\ntime.sleep(1.5)\nfor _ in range(3): os.wait()\n")
    v1.create_namespaced_pod(NS, pod("forks", python(script), container={"resources": {"limits": {"memory": "200Mi"}}}))
    assert ending(v1, "forks") == ("Succeeded", 0, "Completed")


def test_active_deadline_ends_the_pod_with_deadline_exceeded(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod(NS, pod("deadline", ["sleep", "120"], image="busybox", activeDeadlineSeconds=1,
                                     terminationGracePeriodSeconds=5))
    started = time.monotonic()
    done = finished(v1, "deadline")
    assert time.monotonic() - started < 60
    assert (done.status.phase, done.status.reason) == ("Failed", "DeadlineExceeded")
    state = terminated(done)
    assert state.exit_code == 143 and state.reason == "Error", "sleep ends on the SIGTERM"


def test_on_failure_restarts_until_the_command_succeeds(v1: client.CoreV1Api) -> None:
    script = "import os, sys\nif os.path.exists('tried'):\n    print('second try'); sys.exit(0)\nopen('tried', 'w').close(); print('first try'); sys.exit(2)\n"
    v1.create_namespaced_pod(NS, pod("retry", python(script), restart="OnFailure"))
    done = finished(v1, "retry")
    status = done.status.container_statuses[0]
    assert done.status.phase == "Succeeded" and status.restart_count == 1
    assert status.last_state.terminated.exit_code == 2
    assert v1.read_namespaced_pod_log("retry", NS) == "second try\n"
    assert v1.read_namespaced_pod_log("retry", NS, previous=True) == "first try\n"


def test_init_containers_run_first(v1: client.CoreV1Api) -> None:
    body = pod("init", python("print(open('ready').read())"))
    body["spec"]["initContainers"] = [{"name": "prepare", "image": PY_IMAGE, "command": python("open('ready', 'w').write('prepared')")}]
    v1.create_namespaced_pod(NS, body)
    done = finished(v1, "init")
    assert done.status.phase == "Succeeded"
    assert done.status.init_container_statuses[0].state.terminated.reason == "Completed"
    assert v1.read_namespaced_pod_log("init", NS) == "prepared\n"
    assert v1.read_namespaced_pod_log("init", NS, container="prepare") == ""


# -- deletion ------------------------------------------------------------------------------------------


def _last_status_before_deletion(v1: client.CoreV1Api, name: str, *, timeout: float = 30.0) -> client.V1Pod:
    """Watch the pod until it is gone; the last MODIFIED before DELETED (the kubelet's report of the kill)."""
    last = None
    for event in watch.Watch().stream(v1.list_namespaced_pod, NS, field_selector=f"metadata.name={name}", timeout_seconds=int(timeout)):
        if event["type"] == "DELETED":
            break
        last = event["object"]
    assert last is not None
    return last


def test_deletion_sends_sigterm_and_the_exit_is_reported(v1: client.CoreV1Api, tmp_path: Path) -> None:
    marker = tmp_path / "got-term"
    script = (f"import signal, sys, time\ndef term(*_):\n    open({str(marker)!r}, 'w').close(); sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, term)\nprint('ready', flush=True)\ntime.sleep(120)\n")
    v1.create_namespaced_pod(NS, pod("graceful", python(script), terminationGracePeriodSeconds=30))
    running(v1, "graceful")
    wait_for(lambda: v1.read_namespaced_pod_log("graceful", NS) == "ready\n", timeout=20, what="the handler installed")
    v1.delete_namespaced_pod("graceful", NS)
    last = _last_status_before_deletion(v1, "graceful")
    assert marker.exists(), "the process received SIGTERM"
    state = terminated(last)
    assert (state.exit_code, state.reason) == (0, "Completed")


def test_deletion_kills_after_the_grace_period(v1: client.CoreV1Api) -> None:
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ignoring', flush=True)\ntime.sleep(120)\n"
    v1.create_namespaced_pod(NS, pod("stubborn", python(script), terminationGracePeriodSeconds=1))
    running(v1, "stubborn")
    wait_for(lambda: v1.read_namespaced_pod_log("stubborn", NS) == "ignoring\n", timeout=20, what="SIGTERM ignored")
    v1.delete_namespaced_pod("stubborn", NS)
    state = terminated(_last_status_before_deletion(v1, "stubborn"))
    assert (state.exit_code, state.reason) == (137, "Error")


# -- pods/log ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def counted(v1: client.CoreV1Api) -> str:
    """A finished pod that printed ``line 1`` .. ``line 5``, one a line."""
    v1.create_namespaced_pod(NS, pod("counted", python("for i in range(1, 6): print('line', i)")))
    finished(v1, "counted")
    return "counted"


def test_log_tail_lines_limit_bytes_and_timestamps(v1: client.CoreV1Api, counted: str) -> None:
    assert v1.read_namespaced_pod_log(counted, NS, container="main") == "".join(f"line {i}\n" for i in range(1, 6))
    assert v1.read_namespaced_pod_log(counted, NS, tail_lines=2) == "line 4\nline 5\n"
    assert v1.read_namespaced_pod_log(counted, NS, tail_lines=0) == ""
    assert v1.read_namespaced_pod_log(counted, NS, limit_bytes=9) == "line 1\nli"
    stamped = v1.read_namespaced_pod_log(counted, NS, timestamps=True, tail_lines=1)
    stamp, _, text = stamped.partition(" ")
    assert text == "line 5\n"
    assert len(stamp) == len("2026-01-01T00:00:00.000000000Z") and stamp.endswith("Z") and stamp[10] == "T"


def test_log_since_seconds(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod(NS, pod("since", python("import time\nprint('old', flush=True)\ntime.sleep(6)\nprint('new', flush=True)\ntime.sleep(120)"),
                                     terminationGracePeriodSeconds=0))
    running(v1, "since")
    # polled: for 4 s after 'new' appears it is younger than 4 s while 'old' is older (they are 6 s apart)
    wait_for(lambda: v1.read_namespaced_pod_log("since", NS, since_seconds=4) == "new\n", timeout=30, what="only the new line")
    assert v1.read_namespaced_pod_log("since", NS, since_seconds=3600) == "old\nnew\n"
    v1.delete_namespaced_pod("since", NS, grace_period_seconds=0)


def test_log_follow_streams_until_the_container_ends(v1: client.CoreV1Api) -> None:
    script = "import sys, time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.3)\n"
    v1.create_namespaced_pod(NS, pod("follow", python(script)))
    running(v1, "follow")
    response = v1.read_namespaced_pod_log("follow", NS, follow=True, _preload_content=False)
    try:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert b"".join(response.stream(64)) == b"tick 0\ntick 1\ntick 2\n"
    finally:
        response.release_conn()
    assert finished(v1, "follow").status.phase == "Succeeded"


def test_log_follow_through_watch_stream(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod(NS, pod("follow-watch", python("import time\nfor i in range(3):\n    print('row', i, flush=True); time.sleep(0.2)\n")))
    running(v1, "follow-watch")
    lines = list(watch.Watch().stream(v1.read_namespaced_pod_log, "follow-watch", NS, follow=True))
    assert lines == ["row 0", "row 1", "row 2"]


def _status_error(call: Any) -> tuple[int, dict[str, Any]]:
    import json

    with pytest.raises(client.ApiException) as info:
        call()
    return info.value.status, json.loads(info.value.body)


def test_log_errors_are_status_objects(v1: client.CoreV1Api, counted: str) -> None:
    code, body = _status_error(lambda: v1.read_namespaced_pod_log(counted, NS, container="sidecar"))
    assert (code, body["kind"], body["reason"]) == (400, "Status", "BadRequest")
    assert body["message"] == f"container sidecar is not valid for pod {counted}"
    code, body = _status_error(lambda: v1.read_namespaced_pod_log("no-such-pod", NS))
    assert (code, body["reason"], body["message"]) == (404, "NotFound", 'pods "no-such-pod" not found')
    code, body = _status_error(lambda: v1.read_namespaced_pod_log(counted, NS, since_seconds=0))
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["message"] == f'PodLogOptions "{counted}" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0'
    code, body = _status_error(lambda: v1.read_namespaced_pod_log(counted, NS, previous=True))
    assert (code, body["message"]) == (400, f'previous terminated container "main" in pod "{counted}" not found')


def test_log_of_several_containers_needs_a_name(v1: client.CoreV1Api) -> None:
    body = pod("two", python("print('a')"))
    body["spec"]["containers"].append({"name": "side", "image": PY_IMAGE, "command": python("print('b')")})
    v1.create_namespaced_pod(NS, body)
    assert finished(v1, "two").status.phase == "Succeeded"
    code, status = _status_error(lambda: v1.read_namespaced_pod_log("two", NS))
    assert (code, status["message"]) == (400, "a container name must be specified for pod two, choose one of: [main side]")
    assert v1.read_namespaced_pod_log("two", NS, container="side") == "b\n"


def test_log_of_a_container_not_started_yet(v1: client.CoreV1Api) -> None:
    body = pod("pulling", python("print(1)"), metadata={"annotations": {"kubesim.podq.io/outcome": "ErrImagePull"}})
    v1.create_namespaced_pod(NS, body)

    def waiting_reason() -> str | None:
        statuses = v1.read_namespaced_pod("pulling", NS).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting.reason if waiting is not None and waiting.reason in ("ErrImagePull", "ImagePullBackOff") else None

    wait_for(waiting_reason, timeout=20, what="image pull failure")
    code, status = _status_error(lambda: v1.read_namespaced_pod_log("pulling", NS))
    assert code == 400 and status["message"].startswith('container "main" in pod "pulling" is waiting to start: ')


# -- the simulated kubelet stays the default --------------------------------------------------------------


def test_without_the_runtime_nothing_runs_and_logs_are_empty(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with running_kubesim() as server, core_v1(server.kubeconfig) as api:
        api.create_namespaced_pod(NS, pod("simulated", ["touch", str(marker)], image="busybox"))
        assert finished(api, "simulated").status.phase == "Succeeded"
        assert api.read_namespaced_pod_log("simulated", NS) == ""
        assert server.admin().stats()["runContainers"] is False
    assert not marker.exists()


def test_simulated_follow_lasts_while_the_container_runs() -> None:
    with running_kubesim() as server, core_v1(server.kubeconfig) as api:
        api.create_namespaced_pod(NS, pod("sim-follow", ["true"], image="busybox",
                                          metadata={"annotations": {"kubesim.podq.io/run-seconds": "1.5"}}))
        running(api, "sim-follow")
        response = api.read_namespaced_pod_log("sim-follow", NS, follow=True, _preload_content=False)
        try:
            assert b"".join(response.stream(64)) == b""
        finally:
            response.release_conn()
        assert api.read_namespaced_pod("sim-follow", NS).status.container_statuses[0].state.terminated is not None, \
            "the stream ended because the container did"


def test_in_process_runtime_refuses_a_public_address() -> None:
    with pytest.raises(KubeSimError, match="allow-remote-command-execution"):
        KubeSim.start(fast_settings(run_containers=True, host="0.0.0.0"))


def test_a_process_group_dies_with_its_container(v1: client.CoreV1Api) -> None:
    mark = f"kubesim-test-{os.getpid()}-{time.monotonic_ns()}"
    v1.create_namespaced_pod(NS, pod("leaves-child", ["sh", "-c", "sleep 300 & echo started"], image="busybox",
                                     container={"env": [{"name": "PODQ_TEST_MARK", "value": mark}]}))
    assert finished(v1, "leaves-child").status.phase == "Succeeded"
    wait_for(lambda: not marked_processes(mark), timeout=20, what="the background sleep to be killed")


def marked_processes(mark: str) -> list[int]:
    """Pids of this user's processes whose environment holds PODQ_TEST_MARK=<mark>."""
    needle = f"PODQ_TEST_MARK={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


# -- the kubesim process: loopback only, and no process outlives it -----------------------------------------


def test_cli_refuses_a_public_address_without_the_explicit_flag(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "podq.kubesim", "--run-containers", "--host", "0.0.0.0", "--port", "0",
         "--kubeconfig", str(tmp_path / "kc")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "--host '0.0.0.0' refused" in result.stderr and "--allow-remote-command-execution" in result.stderr
    assert result.stdout == "" and not (tmp_path / "kc").exists()


def test_cli_serves_a_public_address_when_the_danger_is_named(tmp_path: Path) -> None:
    with spawn("--run-containers", "--host", "0.0.0.0", "--allow-remote-command-execution", "--log-level", "WARNING",
               kubeconfig=str(tmp_path / "kc")) as sim:
        assert sim.admin().stats()["runContainers"] is True


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_stopping_kubesim_leaves_no_container_process(tmp_path: Path, stop: str) -> None:
    mark = f"kubesim-test-{os.getpid()}-{time.monotonic_ns()}"
    sim = spawn("--run-containers", "--log-level", "WARNING", kubeconfig=str(tmp_path / "kc"))
    try:
        with core_v1(sim.kubeconfig) as api:
            # a child in the background and one in the foreground: both in the container's process group
            api.create_namespaced_pod(NS, pod("sleeper", ["sh", "-c", "sleep 300 & sleep 301"], image="busybox",
                                              container={"env": [{"name": "PODQ_TEST_MARK", "value": mark}]}))
            running(api, "sleeper")
            wait_for(lambda: len(marked_processes(mark)) >= 3, timeout=20, what="sh and both sleeps")
        if stop == "sigterm":
            assert sim.stop() == 0
        else:
            sim.process.kill()
            sim.process.wait(30)
        wait_for(lambda: not marked_processes(mark), timeout=30, what=f"no container process after {stop}")
    finally:
        sim.stop()
        for pid in marked_processes(mark):  # never leave anything behind, even when the test fails
            os.kill(pid, signal.SIGKILL)
