"""The README's Python example, run as written against the whole stack (docs/api.md)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def readme_python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) == 1, "README.md has one Python example"
    return blocks[0]


def test_readme_example_submits_and_reads_to_the_end(stack):
    code = readme_python_example()
    assert code.startswith("from podq import ")   # the public API at the package root, nothing deeper
    env = {**{key: value for key, value in os.environ.items() if not key.startswith("PODQ_")},
           "PODQ_REDIS_URL": stack.redis_url}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines, "the example printed no result"
    assert lines[-1] == "d.t run=r try=1 succeeded None", lines
