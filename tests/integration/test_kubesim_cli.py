"""`python -m podq.kubesim`: the first stdout line, the kubeconfig, startup faults, a clean exit on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, config

from podq.kubesim.admin import Admin

LINE = re.compile(r"^kubesim listening on (?P<url>http://127\.0\.0\.1:(?P<port>\d+)) kubeconfig=(?P<kubeconfig>\S+) port=(?P=port)$")


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc" / "config"
    process = subprocess.Popen(
        [sys.executable, "-m", "podq.kubesim", "--port", "0", "--kubeconfig", str(kubeconfig), "--log-level", "WARNING",
         "--namespace", "extra", "--fault", "403:create:1:locked", "--latency", "get=0.01:0.01", "--kubelet-paused"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        match = LINE.match(process.stdout.readline().strip())
        assert match, "first line is not machine-readable"
        assert Path(match["kubeconfig"]) == kubeconfig.absolute()
        api_client = config.new_client_from_config(config_file=match["kubeconfig"])
        v1 = client.CoreV1Api(api_client)
        assert "extra" in {n.metadata.name for n in v1.list_namespace().items}
        v1.create_namespace({"metadata": {"name": "locked"}})
        with pytest.raises(client.ApiException) as info:
            v1.create_namespaced_pod("locked", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
        assert info.value.status == 403
        api_client.close()
        admin = Admin.from_kubeconfig(match["kubeconfig"])
        stats = admin.stats()
        assert stats["kubeletPaused"] is True
        with urllib.request.urlopen(f"{match['url']}/version", timeout=5) as response:
            assert json.load(response)["major"] == "1"
        with pytest.raises(urllib.error.HTTPError) as http_info:
            urllib.request.urlopen(f"{match['url']}/api/v1/nothing", timeout=5)
        assert http_info.value.code == 404 and json.loads(http_info.value.read())["kind"] == "Status"
    finally:
        process.send_signal(signal.SIGTERM)
        _out, errors = process.communicate(timeout=15)  # also closes the pipes
    assert process.returncode == 0, errors


def test_spawn_helper() -> None:
    from podq.kubesim.process import spawn

    with spawn("--log-level", "WARNING", "--kubelet-paused") as sim:
        assert sim.admin().stats()["kubeletPaused"] is True
        assert Path(sim.kubeconfig).exists()
    assert sim.process.returncode == 0


def test_the_api_limit_flags_start_the_model() -> None:
    from podq.kubesim.process import spawn

    with spawn("--log-level", "WARNING", "--limit-rate", "200", "--limit-queue-length", "7", "--limit-retry-after", "2") as sim:
        limit = sim.admin().limit()
        assert limit["settings"] | {"enabled": True} == limit["settings"]
        assert (limit["settings"]["rate"], limit["settings"]["queue_length"], limit["settings"]["retry_after"], limit["seats"]) == (200, 7, 2, 20)


def test_a_bad_limit_flag_exits_with_the_reason(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "podq.kubesim", "--kubeconfig", str(tmp_path / "kc"), "--limit-rate", "-5"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "rate=-5.0: must be >= 0" in result.stderr
