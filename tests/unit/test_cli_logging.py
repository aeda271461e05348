"""`podq --log-json/--log-level SERVICE`: the services take podq's logging options like every command."""
from __future__ import annotations

import importlib
import types

import pytest

from podq import cli


@pytest.mark.parametrize("argv, expected", [
    (["--log-json", "worker", "-l", "warning"], (None, True, ["worker", "-l", "warning"])),
    (["--log-level", "debug", "--log-json", "watcher"], ("debug", True, ["watcher"])),
    (["--log-level=error", "intake", "--log-json"], ("error", False, ["intake", "--log-json"])),
    (["kubesim", "--log-level", "WARNING"], (None, False, ["kubesim", "--log-level", "WARNING"])),
    (["--log-level"], (None, False, ["--log-level"])),
])
def test_logging_options_before_the_command_are_podqs_and_the_rest_is_the_services(argv, expected):
    assert cli.logging_options(argv) == expected


@pytest.mark.parametrize("service", ["worker", "watcher", "intake"])
def test_services_are_started_with_the_json_log_option(service, monkeypatch):
    configured, called = [], []
    monkeypatch.setattr(cli, "configure_logging", lambda level, *, json_format: configured.append((level, json_format)))
    monkeypatch.setattr(cli, "freeze_imports", lambda: None)
    fake = types.SimpleNamespace(main=lambda argv, settings: called.append(argv) or 0)
    real_import = importlib.import_module
    monkeypatch.setattr(cli.importlib, "import_module",
                        lambda name: fake if name == cli.PASSTHROUGH[service][0] else real_import(name))
    assert cli.main(["--log-json", service, "--flag"]) == 0
    assert configured == [("info", True)] and called == [["--flag"]]
    configured.clear()
    assert cli.main([service]) == 0
    assert configured == [("info", False)]
