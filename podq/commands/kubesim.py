"""`podq kubesim`: passed straight to its own argument parser (see podq.cli.main)."""
from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("kubesim", help="run the kubesim (`podq kubesim --help` for its options)", add_help=False)
