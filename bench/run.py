"""`make bench`: every benchmark, one after the other, each its own process; a Markdown report.

    .venv/bin/python -m bench.run [--quick] [--only NAME ...] [--report PATH]

Each benchmark compares side by side within its own run and reports medians; each figure
with a target prints a ``target:`` line, gathered here into the summary at the top of the
report (figure, target, met or not). The report goes to stdout and to .podq/bench-report.md.
--quick runs one small repetition of each, to check that every benchmark still runs (CI does);
its figures mean little. A benchmark that fails (exit status) fails the run; a missed target
does not (the machine decides that as much as the code).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

# name -> (module, full arguments, quick arguments)
BENCHMARKS = {
    "launch-25ms": ("bench.launch", ["--latency", "0.025", "--runs", "5", "--jobs", "3000"],
                    ["--latency", "0.025", "--runs", "1", "--jobs", "300", "--serial-jobs", "10"]),
    "launch-150ms": ("bench.launch", ["--latency", "0.150", "--runs", "5", "--jobs", "3000", "--serial-jobs", "20"],
                     ["--latency", "0.150", "--runs", "1", "--jobs", "300", "--serial-jobs", "5"]),
    "latency": ("bench.latency", ["--runs", "5", "--seconds", "10"], ["--runs", "1", "--seconds", "3"]),
    "watcher": ("bench.watcher_events", ["--runs", "3"], ["--runs", "1", "--pods", "500"]),
    "relist": ("bench.relist", ["--runs", "3"], ["--runs", "1", "--pods", "2000"]),
    "hotcalls": ("bench.hotcalls", ["--runs", "3"], ["--runs", "1", "--creates", "100"]),
    "kubesim": ("bench.kubesim_load", ["--runs", "5"], ["--runs", "1", "--creates", "500", "--watch-creates", "200"]),
    "limits": ("bench.limits", [], ["--quick"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS))
    parser.add_argument("--report", default=".podq/bench-report.md")
    args = parser.parse_args(argv)
    sections, failed, targets = [], [], []
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    for name in args.only or BENCHMARKS:
        module, full, quick = BENCHMARKS[name]
        started = time.monotonic()
        print(f"== {name}: python -m {module} {' '.join(quick if args.quick else full)}", flush=True)
        try:
            done = subprocess.run([sys.executable, "-m", module, *(quick if args.quick else full)],
                                  capture_output=True, text=True, timeout=600 if args.quick else 3600)
        except subprocess.TimeoutExpired as exc:
            done = subprocess.CompletedProcess(exc.cmd, 124, _text(exc.stdout), _text(exc.stderr) + "\ntimed out")
        print(done.stdout[-4000:], flush=True)
        if done.returncode != 0:
            failed.append(name)
            print(done.stderr[-3000:], file=sys.stderr, flush=True)
        targets += [(name, line.removeprefix("target: ")) for line in done.stdout.splitlines()
                    if line.startswith("target: ")]
        sections.append(f"## {name} ({time.monotonic() - started:.0f} s, exit {done.returncode})\n\n{done.stdout.strip()}")
    summary = ["## Targets", "", "| benchmark | figure (target): met? |", "| --- | --- |",
               *(f"| {name} | {line} |" for name, line in targets),
               *(f"| {name} | FAILED to run (see its section) |" for name in failed)]
    header = (f"# podq benchmark report{' (quick pass: checks that each runs; figures mean little)' if args.quick else ''}"
              f"\n\nStarted {began}; {os.cpu_count()} cores; load average {load} at the start (other work on the "
              "machine depresses every figure; compare side by side within a section).")
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n\n".join([header, "\n".join(summary), *sections]) + "\n")
    print("\n".join(summary))
    print(f"report: {report}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else (output or "")


if __name__ == "__main__":
    sys.exit(main())
