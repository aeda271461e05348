"""`podq watcher`: passed straight to its own argument parser (see podq.cli.main)."""
from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("watcher", help="run the watcher (`podq watcher --help` for its options)", add_help=False)
