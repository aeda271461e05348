"""Helpers every test tier shares: polling with a deadline instead of sleeping, the data files under tests/data.

The modules beside this one hold the harnesses of one part each: :mod:`.watcher`
(pods in kubesim with their ledger entries, a watcher in this process), :mod:`.workers`
(admitted jobs, Celery workers in this process or as ``podq worker`` processes) and
:mod:`.pods` (raw pod objects built from the samples). Test modules import from here,
never from each other.
"""
from __future__ import annotations

import contextlib
import json
import random
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import msgpack
import pytest
from kubernetes import client, config

DATA = Path(__file__).resolve().parents[1] / "data"


def pod_status_samples() -> dict[str, Any]:
    """Real pod ``status`` shapes by situation name (tests/data/pod-status-samples.json)."""
    return json.loads((DATA / "pod-status-samples.json").read_text())


def wait_for(condition: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> object:
    """Poll ``condition`` until it returns a truthy value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def stop_process(process: subprocess.Popen, *, grace: float = 20.0) -> None:
    """SIGTERM ``process``, SIGKILL it after ``grace`` seconds; nothing when it has exited."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def core_v1(kubeconfig: str):
    """The official client's CoreV1Api on ``kubeconfig``, closed afterwards."""
    api_client = config.new_client_from_config(config_file=kubeconfig)
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


def _random_msgpack(rng: random.Random, depth: int = 0) -> bytes:
    """Random msgpack bytes: maps written pair by pair (keys may repeat or not be strings)."""
    choice = rng.randrange(9 if depth < 4 else 6)
    if choice == 0:
        return msgpack.packb(rng.choice([None, True, False, 0, -1, 127, 128, -33, 2**40, -2**40, 1.5]))
    if choice in (1, 2):
        return msgpack.packb("".join(rng.choice("aé☃\u212a-_") for _ in range(rng.randrange(40))))
    if choice == 3:
        return msgpack.packb(bytes(rng.randrange(256) for _ in range(rng.randrange(5))), use_bin_type=True)
    if choice == 4:
        size, head = rng.choice([(1, 0xd4), (4, 0xd6), (8, 0xd7)])
        return bytes([head, rng.choice([0xff, 0x00, 0x05])]) + b"\x00" * size
    if choice == 5:
        return msgpack.packb(rng.choice(["x", "scheduler_id", "spec"]))
    if choice == 6:
        items = [_random_msgpack(rng, depth + 1) for _ in range(rng.randrange(4))]
        return bytes([0x90 + len(items)]) + b"".join(items)
    count = rng.randrange(4)
    body = b"".join((msgpack.packb(rng.choice(["a", "b", "é", "k-1"])) if rng.random() < 0.9
                     else _random_msgpack(rng, depth + 1)) + _random_msgpack(rng, depth + 1) for _ in range(count))
    return bytes([0x80 + count]) + body


def mutated_records(rng: random.Random, count: int) -> list[bytes]:
    """Random msgpack with up to two random byte changes or cuts each (also used by the Node test)."""
    records = []
    for _ in range(count):
        payload = bytearray(_random_msgpack(rng))
        for _ in range(rng.randrange(3)):
            if payload and rng.random() < 0.7:
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            else:
                del payload[rng.randrange(len(payload) + 1):]
        records.append(bytes(payload))
    return records


def raw_map(*pairs) -> bytes:
    """A msgpack map written pair by pair, so a key may repeat or be of any type; bytes items are
    written as they are (hand-made msgpack for the well-formedness tests)."""
    out = bytearray(b"\xde" + len(pairs).to_bytes(2, "big"))
    for key, value in pairs:
        out += key if isinstance(key, bytes) else msgpack.packb(key)
        out += value if isinstance(value, bytes) else msgpack.packb(value)
    return bytes(out)
