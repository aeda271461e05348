"""`podq demo` as a user runs it: a clean summary, and nothing left behind, also on Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from tests.support import wait_for


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries ``marker`` (children inherit it from the demo)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def demo(*args: str) -> tuple[subprocess.Popen, str]:
    marker = f"PODQ_TEST_MARKER={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    env.pop("PODQ_REDIS_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "podq", "demo", *args], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return process, marker


def test_demo_runs_every_job_to_its_planned_end_and_cleans_up():
    process, marker = demo("--jobs", "8", "--run-seconds", "0.2")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "summary: 1 failed, 7 succeeded — 8/8 jobs terminal" in output
    assert "demo.task_006" in output and "every job reached its expected terminal result" in output
    wait_for(lambda: not processes_with(marker), message="every service to exit")


def test_ctrl_c_stops_the_demo_and_every_service():
    process, marker = demo("--jobs", "30", "--run-seconds", "60")
    for line in process.stdout:
        if "submitted 30 jobs" in line:
            break
    assert len(processes_with(marker)) >= 6  # the demo, kubesim, valkey, intake, 2 workers, watcher
    process.send_signal(signal.SIGINT)
    output = process.stdout.read()
    process.stdout.close()
    assert process.wait(timeout=60) == 130, output
    assert "interrupted" in output
    wait_for(lambda: not processes_with(marker), timeout=20, message="every service to exit")
