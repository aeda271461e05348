"""`make bench`: every benchmark, one after the other, each its own process; a Markdown report.

    .venv/bin/python -m bench.run [--quick] [--only NAME ...]

Each benchmark compares side by side within its own run and reports medians; the report
goes to stdout and to .podq/bench-report.md. --quick runs fewer, smaller repetitions.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

# name -> (module, full arguments, quick arguments)
BENCHMARKS = {
    "launch": ("bench.launch", ["--runs", "3"], ["--runs", "1", "--jobs", "400", "--serial-jobs", "30"]),
    "latency": ("bench.latency", ["--runs", "3"], ["--runs", "1", "--seconds", "5"]),
    "kubesim": ("bench.kubesim_load", ["--runs", "5"], ["--runs", "1", "--creates", "1000", "--watch-creates", "500"]),
    "watcher": ("bench.watcher_events", ["--runs", "3"], ["--runs", "1"]),
    "relist": ("bench.relist", ["--runs", "3"], ["--runs", "1", "--pods", "5000"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS))
    args = parser.parse_args(argv)
    sections, failed = [], []
    for name in args.only or BENCHMARKS:
        module, full, quick = BENCHMARKS[name]
        started = time.monotonic()
        print(f"== {name}: python -m {module} {' '.join(quick if args.quick else full)}", flush=True)
        done = subprocess.run([sys.executable, "-m", module, *(quick if args.quick else full)],
                              capture_output=True, text=True)
        print(done.stdout[-4000:], flush=True)
        if done.returncode != 0:
            failed.append(name)
            print(done.stderr[-3000:], file=sys.stderr, flush=True)
        sections.append(f"## {name} ({time.monotonic() - started:.0f} s, exit {done.returncode})\n\n{done.stdout.strip()}")
    report = Path(".podq/bench-report.md")
    report.parent.mkdir(exist_ok=True)
    report.write_text("# podq benchmark report\n\n" + "\n\n".join(sections) + "\n")
    print(f"report: {report}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
