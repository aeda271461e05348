"""Pure parts of kubesim's container runtime and pods/log: selection, quantities, env, container choice, bind check."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from podq.kubesim import errors
from podq.kubesim.log_routes import container_id, container_name
from podq.kubesim.logs import LogBuffer, LogOptions, LogStore, render, select, timestamp
from podq.kubesim.runtime import (
    ConfigError,
    UnsafeBind,
    check_bind,
    container_env,
    exit_info,
    expand,
    is_loopback,
    mapped_bin_dir,
    memory_bytes,
    over_limit,
)
from podq.kubesim.settings import SimSettings

LINES = [(1_000_000_000 * i, f"line {i}\n".encode()) for i in range(1, 6)]


def test_select_tail_then_since() -> None:
    assert select(LINES, LogOptions(tail_lines=2)) == LINES[3:]
    assert select(LINES, LogOptions(tail_lines=0)) == []
    assert select(LINES, LogOptions(tail_lines=10)) == LINES
    assert select(LINES, LogOptions(since_ns=4_000_000_000)) == LINES[3:]
    assert select(LINES, LogOptions(tail_lines=3, since_ns=4_000_000_000)) == LINES[3:]


def test_timestamps_have_nine_fixed_digits_in_utc() -> None:
    assert timestamp(1_700_000_000_000_000_001) == b"2023-11-14T22:13:20.000000001Z"
    assert render(LINES[:1], timestamps=True) == b"1970-01-01T00:00:01.000000000Z line 1\n"
    assert render(LINES[:2], timestamps=False) == b"line 1\nline 2\n"


def test_buffer_keeps_lines_whole_and_drops_the_oldest() -> None:
    buffer = LogBuffer(uid="u", limit_bytes=12, wake=LogStore(limit_bytes=12))
    buffer.feed(b"aaaa\nbb")
    assert [line for _, line in buffer.lines] == [b"aaaa\n"], "a partial line waits for its end"
    buffer.feed(b"bb\ncccc\n")
    assert [line for _, line in buffer.lines] == [b"bbbb\n", b"cccc\n"] and buffer.first_seq == 1
    buffer.feed(b"tail")
    buffer.close()
    assert [line for _, line in buffer.since(2)] == [b"cccc\n", b"tail"] and buffer.closed


def test_memory_quantities() -> None:
    assert memory_bytes("128Mi") == 128 * 2**20
    assert memory_bytes("1G") == 10**9
    assert memory_bytes("1.5Gi") == 3 * 2**29
    assert memory_bytes("1e6") == 10**6
    assert memory_bytes(4096) == 4096
    assert memory_bytes(None) is None and memory_bytes("lots") is None


def test_expand_like_kubernetes() -> None:
    assert expand("$(A)-$(B)-$$(A)-$(MISSING)", {"A": "1", "B": "2"}) == "1-2-$(A)-$(MISSING)"


def test_env_value_field_ref_and_missing_secret() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"k": "v"}}, "spec": {}}
    container = {"name": "c", "env": [
        {"name": "A", "value": "x"},
        {"name": "B", "value": "$(A)y"},
        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['k']"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "S", "valueFrom": {"secretKeyRef": {"name": "opt", "key": "k", "optional": True}}},
    ]}
    env = container_env(pod, container, base={"PATH": "/bin"}, pod_ip="10.0.0.9", host_ip=None)
    assert env == {"PATH": "/bin", "A": "x", "B": "xy", "N": "ns", "L": "v", "IP": "10.0.0.9"}
    with pytest.raises(ConfigError, match='secret "creds" not found'):
        container_env(pod, {"name": "c", "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]},
                      base={}, pod_ip=None, host_ip=None)
    with pytest.raises(ConfigError, match='configmap "cm" not found'):
        container_env(pod, {"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}}]}, base={}, pod_ip=None, host_ip=None)


def test_exit_info() -> None:
    assert (exit_info(0, oom=False).exit_code, exit_info(0, oom=False).reason) == (0, "Completed")
    assert (exit_info(2, oom=False).exit_code, exit_info(2, oom=False).reason) == (2, "Error")
    assert exit_info(-15, oom=False).exit_code == 143
    assert (exit_info(-9, oom=True).exit_code, exit_info(-9, oom=True).reason) == (137, "OOMKilled")


def test_loopback_only_unless_the_danger_is_named() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")
    check_bind(SimSettings(host="0.0.0.0"))  # the simulated kubelet runs nothing: any address
    check_bind(SimSettings(host="127.0.0.1", run_containers=True))
    with pytest.raises(UnsafeBind, match="--allow-remote-command-execution"):
        check_bind(SimSettings(host="0.0.0.0", run_containers=True))
    check_bind(SimSettings(host="0.0.0.0", run_containers=True, allow_remote_command_execution=True))


def _pod(*containers: str, statuses: list[dict] | None = None, inits: tuple[str, ...] = ()) -> dict:
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": c} for c in containers], "initContainers": [{"name": c} for c in inits]},
        "status": {"containerStatuses": statuses or []},
    }


def test_container_choice_as_the_api_server_makes_it() -> None:
    assert container_name(_pod("a"), "") == "a"
    assert container_name(_pod("a", "b"), "b") == "b"
    with pytest.raises(errors.ApiError, match=r"choose one of: \[a b\] or one of the init containers: \[i\]"):
        container_name(_pod("a", "b", inits=("i",)), "")
    with pytest.raises(errors.ApiError, match="container x is not valid for pod p"):
        container_name(_pod("a"), "x")


def test_container_instance_as_the_kubelet_picks_it() -> None:
    running = {"name": "a", "containerID": "c2", "state": {"running": {}}, "lastState": {"terminated": {"containerID": "c1"}}}
    assert container_id(_pod("a", statuses=[running]), "a", previous=False) == "c2"
    assert container_id(_pod("a", statuses=[running]), "a", previous=True) == "c1"
    waiting = {"name": "a", "state": {"waiting": {"reason": "ImagePullBackOff"}}, "lastState": {}}
    with pytest.raises(errors.ApiError, match='is waiting to start: trying and failing to pull image'):
        container_id(_pod("a", statuses=[waiting]), "a", previous=False)
    with pytest.raises(errors.ApiError, match='container "a" in pod "p" is not available'):
        container_id(_pod("a"), "a", previous=False)


def test_memory_of_this_process_against_a_limit() -> None:
    assert not over_limit(os.getpid(), 1 << 40)
    assert over_limit(os.getpid(), 1 << 20), "this interpreter holds more than 1 MiB"


def test_an_image_maps_to_a_directory_or_an_interpreter() -> None:
    venv_bin = str(Path(sys.executable).parent)
    image_map = (("apache/airflow*", venv_bin), ("local/py", sys.executable), ("*", "/opt/fallback/bin"))
    assert mapped_bin_dir("apache/airflow:3.3.2", image_map) == venv_bin
    assert mapped_bin_dir("local/py", image_map) == venv_bin
    assert mapped_bin_dir("busybox", image_map) == "/opt/fallback/bin"
    assert mapped_bin_dir("busybox", ()) is None
