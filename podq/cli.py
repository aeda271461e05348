"""The `podq` command."""
import sys


def main(argv=None) -> int:
    print("podq: not built yet", file=sys.stderr)
    return 2
