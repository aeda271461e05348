"""Each setting's variable, default and documentation, read from settings.py itself.

Backs `podq settings` and docs/operations.md, so the list operators read is the
one the code uses.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
from dataclasses import dataclass

from . import clusters as clusters_module
from . import settings as settings_module


@dataclass(frozen=True)
class SettingDoc:
    variable: str
    type: str
    default: object
    doc: str


def _field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under each field (``name: T = v`` then a string literal)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def setting_docs() -> list[SettingDoc]:
    """Every PODQ_ variable podq reads."""
    rows = []
    for section in settings_module.sections():
        cls = getattr(settings_module, section.type) if isinstance(section.type, str) else section.type
        docs = _field_docs(cls)
        for item in dataclasses.fields(cls):
            default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
            rows.append(SettingDoc(f"PODQ_{section.name}_{item.name}".upper(), str(item.type), default,
                                   docs.get(item.name, "")))
    # Per cluster: the default is the cell's own setting, which each field's doc names.
    docs = _field_docs(clusters_module.ClusterSettings)
    for item in dataclasses.fields(clusters_module.ClusterSettings):
        rows.append(SettingDoc(f"{clusters_module.ENV_PREFIX}<NAME>_{item.name.upper()}", str(item.type), None,
                               docs.get(item.name, "")))
    return rows


def markdown_table() -> str:
    lines = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for row in setting_docs():
        default = "" if row.default in (None, ()) else f"`{row.default}`"
        kind = row.type.replace(" | None", " (optional)").replace("|", "\\|")
        lines.append(f"| `{row.variable}` | {kind} | {default} | {row.doc} |")
    return "\n".join(lines)
