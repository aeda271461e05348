"""`podq worker`: passed straight to its own argument parser (see podq.cli.main)."""
from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("worker", help="run the worker (`podq worker --help` for its options)", add_help=False)
