"""docs/operations.md lists exactly the settings the code reads."""
from __future__ import annotations

from pathlib import Path

from podq.shared.settings_doc import markdown_table, setting_docs


def test_every_setting_is_documented_in_code():
    missing = [row.variable for row in setting_docs() if not row.doc]
    assert missing == []


def test_operations_doc_holds_the_current_table():
    doc = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    assert markdown_table() in doc, "regenerate with: .venv/bin/podq settings --markdown"
