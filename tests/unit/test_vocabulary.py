"""The states and control operations are defined once (shared/states.py, broker/control/operations.py);
every other copy must agree: the Lua scripts, the Node client, the conformance vectors, docs/protocol.md."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from podq.broker.control.operations import OPERATIONS
from podq.broker.store.scripts import NAMES, constants, render
from podq.shared.errors import DecodeError
from podq.shared.records import ControlRecord
from podq.shared.states import TERMINAL_STATES, ControlOp, LedgerState, State

ROOT = Path(__file__).parents[2]
LUA = ROOT / "broker" / "store" / "lua"
WORDS = {state.value for state in State} | {state.value for state in LedgerState}


def lua_sources() -> list[Path]:
    return sorted(LUA.rglob("*.lua"))


def code_of(path: Path) -> str:
    """A script without its comments (they may name states and keys in prose)."""
    return "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())


def test_every_script_is_registered_and_renders():
    assert sorted(path.stem for path in LUA.glob("*.lua")) == sorted(NAMES)
    for name in NAMES:
        text = render(name)
        assert "$(" not in text, name


def test_an_unknown_placeholder_fails_the_load(monkeypatch):
    from podq.broker.store import scripts
    monkeypatch.setattr(scripts, "_lua", lambda path: "return $(state.paused)")
    with pytest.raises(KeyError, match=r"\$\(state.paused\)"):
        scripts.render.__wrapped__("made_up")


@pytest.mark.parametrize("path", lua_sources(), ids=lambda path: path.name)
def test_scripts_name_no_key_and_spell_no_state(path):
    code = code_of(path)
    assert "podq:" not in code, f"{path.name} builds a key; pass it through KEYS[] (broker/store/keys.py)"
    quoted = set(re.findall(r"'([a-z_]+)'", code)) | set(re.findall(r'"([a-z_]+)"', code))
    assert not quoted & WORDS, (f"{path.name} spells {sorted(quoted & WORDS)}; use $(state.x), $(ledger.x) "
                                f"or a $(..._states) set, rendered from shared/states.py")


def test_rendered_terminal_set_is_the_enums():
    rendered = set(re.findall(r"\['([a-z_]+)'\] = true", constants()["terminal_states"]))
    assert rendered == {state.value for state in TERMINAL_STATES}
    assert all(state.value in render("publish") for state in TERMINAL_STATES)


def test_node_client_agrees():
    source = (ROOT / "clients" / "node" / "src" / "protocol.js").read_text()

    def js_set(name: str) -> set[str]:
        match = re.search(rf"const {name} = new Set\(\[([^\]]*)\]\)", source)
        assert match, f"clients/node/src/protocol.js has no {name} set"
        return set(re.findall(r"'([a-z_]+)'", match.group(1)))

    assert js_set("TERMINAL") == {state.value for state in TERMINAL_STATES}
    states = js_set("STATES") | (js_set("TERMINAL") if "...TERMINAL" in source else set())
    assert states == {state.value for state in State}
    assert js_set("CONTROL_OPS") == {op.value for op, operation in OPERATIONS.items() if operation.from_producers}


def test_vectors_agree():
    vectors = json.loads((ROOT / "docs" / "vectors" / "vectors.json").read_text())["vectors"]
    results = [vector["decoded"] for vector in vectors if vector["kind"] == "result" and vector["valid"]]
    assert results
    for result in results:
        assert result["terminal"] is State(result["state"]).terminal, result
    spec = importlib.util.spec_from_file_location("vectors_generate", ROOT / "docs" / "vectors" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for state in State:
        assert generate.result(state.value)["terminal"] is state.terminal, state


def test_protocol_document_state_table_agrees():
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text[text.index("## States"):]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section[:section.index("\n\n", section.index("| ---"))],
                           re.M))
    assert set(rows) == {state.value for state in State}
    assert {name for name, terminal in rows.items() if terminal.strip() == "yes"} == \
        {state.value for state in TERMINAL_STATES}


def test_protocol_document_names_every_control_operation():
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text[text.index("## Control operations"):]
    table = section[section.index("| op |"):]
    table = table[:table.index("\n\n")]
    assert set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M)) == {op.value for op in ControlOp}


def test_every_control_op_has_one_operation_and_the_decoder_agrees_on_its_fields():
    assert set(OPERATIONS) == set(ControlOp)
    for op, operation in OPERATIONS.items():
        assert operation.op is op
        for field in ("job_id", "new_scheduler_id"):
            wire = {"op": op.value, "scheduler_id": "s", "job_id": "j", "new_scheduler_id": "n"}
            del wire[field]
            record = ControlRecord(op=op, scheduler_id="s", **{k: v for k, v in wire.items()
                                                              if k in ("job_id", "new_scheduler_id")})
            if field in operation.fields:
                with pytest.raises(DecodeError, match=field):
                    ControlRecord.decode(record.encode())
            else:
                assert ControlRecord.decode(record.encode()).op is op
