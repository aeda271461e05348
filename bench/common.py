"""What the benchmarks share: a kubesim subprocess, timing and reporting."""
from __future__ import annotations

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
    """A kubesim in its own process (its own core, as a real API server would be)."""
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
        yield url, match.group("kubeconfig"), Admin(url)
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    import os
    import platform
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def report(title: str, rows: list[tuple[str, list[float], str]]) -> str:
    """Markdown table of each measurement's runs and median."""
    lines = [f"### {title}", "", "| what | runs | median |", "| --- | --- | --- |"]
    for name, runs, unit in rows:
        lines.append(f"| {name} | {', '.join(f'{r:.1f}' for r in runs)} | **{median(runs):.1f} {unit}** |")
    return "\n".join(lines)
