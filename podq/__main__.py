"""`python -m podq` is the `podq` command."""
import sys

from podq.cli import main

sys.exit(main())
