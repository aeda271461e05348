"""What the benchmarks share: a kubesim subprocess, CPU accounting, timing, reporting and targets."""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from podq.kubesim.admin import Admin
from podq.shared.procs import die_with_parent

_LINE = re.compile(r"http://(?P<host>[^:\s]+):(?P<port>\d+).*kubeconfig=(?P<kubeconfig>\S+)")


@contextmanager
def kubesim_process(*args: str):
    """A kubesim in its own process (its own core, as a real API server would be): url, kubeconfig, admin, pid."""
    workdir = Path(tempfile.mkdtemp(prefix="podq-bench-"))
    with open(workdir / "kubesim.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "podq", "kubesim", "--port", "0",
                                    "--kubeconfig", str(workdir / "kubeconfig"), "--log-level", "WARNING", *args],
                                   stdout=subprocess.PIPE, stderr=log, text=True, preexec_fn=die_with_parent)
    try:
        match = None
        while match is None:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"kubesim did not start; see {workdir / 'kubesim.log'}")
            match = _LINE.search(line)
        url = f"http://{match.group('host')}:{match.group('port')}"
        yield url, match.group("kubeconfig"), Admin(url), process.pid
    finally:
        process.terminate()
        try:
            process.wait(60)  # with 20,000 pods and a loaded machine, stopping takes a while
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def wait_until_watching(admin, *, timeout: float = 120.0) -> None:
    """Until the stack's watcher has its watch open (a job created before that is first seen finished)."""
    import time
    deadline = time.monotonic() + timeout
    while admin.stats()["watches"] < 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the watcher opened no watch in {timeout:.0f} s")
        time.sleep(0.1)


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """min–max of the runs, the honest companion of a median on a noisy machine."""
    return f"{min(values):.1f}–{max(values):.1f}" if values else "-"


def machine() -> str:
    import platform
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load} at the start")


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICK


def target(name: str, value: float, *, goal: float, unit: str, higher_is_better: bool = True) -> str:
    """One figure against its target, as a line ``bench.run`` gathers into its summary."""
    met = value >= goal if higher_is_better else value <= goal
    sign = "≥" if higher_is_better else "≤"
    line = f"target: {name}: {value:,.2f} {unit} (target {sign} {goal:,g} {unit}): {'MET' if met else 'NOT MET'}"
    print(line, flush=True)
    return line


def report(title: str, rows: list[tuple[str, list[float], str]]) -> str:
    """Markdown table of each measurement's runs and median."""
    lines = [f"### {title}", "", "| what | runs | median |", "| --- | --- | --- |"]
    for name, runs, unit in rows:
        lines.append(f"| {name} | {', '.join(f'{r:.1f}' for r in runs)} | **{median(runs):.1f} {unit}** |")
    return "\n".join(lines)
