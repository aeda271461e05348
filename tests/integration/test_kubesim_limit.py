"""kubesim's model of the API server's limit (API Priority and Fairness), seen from the official client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from podq.kubesim.access import identity
from podq.kubesim.admin import AdminError
from podq.kubesim.flowcontrol import FLOW_SCHEMA_UID, PRIORITY_LEVEL_UID
from podq.kubesim.server import KubeSim
from podq.kubesim.settings import LimitSettings
from podq.kubesim.testing import running_kubesim, wait_for
from tests.support.tls import CertificateAuthority

NS = "default"


def pod(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1"}]}}


@pytest.fixture
def limited() -> Iterator[KubeSim]:
    """A kubesim with its kubelet paused (creates are the only writes) and the limit model on at 50 creates/s."""
    with running_kubesim(kubelet_paused=True, limit=LimitSettings(enabled=True, rate=50)) as sim:
        yield sim


def api_as(sim: KubeSim, token: str) -> client.CoreV1Api:
    """The official client calling as the user that ``token`` stands for (one flow per token)."""
    configuration = client.Configuration(host=sim.url)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.CoreV1Api(client.ApiClient(configuration))


def hammer(sim: KubeSim, tokens: list[str], *, until: Callable[[], bool]) -> dict[str, int]:
    """One thread per entry of ``tokens``, each creating pods as that token until ``until()``; 429s counted."""
    counts = {token: 0 for token in tokens} | {"429": 0}
    lock = threading.Lock()

    def run(token: str, index: int) -> None:
        api = api_as(sim, token)
        n = 0
        try:
            while not until():
                try:
                    api.create_namespaced_pod(NS, pod(f"{token}-{index}-{n}"))
                    key = token
                except client.ApiException as exc:
                    assert exc.status == 429, exc
                    key = "429"
                with lock:
                    counts[key] += 1
                n += 1
        finally:
            api.api_client.close()

    threads = [threading.Thread(target=run, args=(token, i)) for i, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return counts


def test_a_full_queue_is_answered_429_with_retry_after_and_the_pf_headers(limited: KubeSim) -> None:
    admin = limited.admin()
    admin.set_limit(seats=1, queue_length=0)
    admin.set_latency("create", seconds=30)  # the first create holds the only seat
    holder = api_as(limited, "holder")
    threading.Thread(target=lambda: _ignore_errors(lambda: holder.create_namespaced_pod(NS, pod("held"))), daemon=True).start()
    wait_for(lambda: admin.limit()["executing"] == 1, timeout=10, what="the first create to hold the seat")
    v1 = api_as(limited, "caller")
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(NS, pod("refused"))
    error = info.value
    assert error.status == 429
    assert error.reason == "Too Many Requests"
    assert error.headers["Retry-After"] == "1"
    assert error.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert error.body == "Too many requests, please try again later.\n"
    assert error.headers["X-Kubernetes-PF-FlowSchema-UID"] == FLOW_SCHEMA_UID
    assert error.headers["X-Kubernetes-PF-PriorityLevel-UID"] == PRIORITY_LEVEL_UID
    state = admin.limit()
    assert state["rejected"] == 1
    assert [flow["rejected"] for flow in state["flows"].values()] == [0, 1]
    assert admin.create_count(name_prefix="refused") == 0  # a refused create stores nothing
    # reads are not limited: a list passes while the only seat is taken (labelled with the level all the same)
    items, _status, headers = v1.list_namespaced_pod_with_http_info(NS)
    assert items.items == []
    assert headers["X-Kubernetes-PF-PriorityLevel-UID"] == PRIORITY_LEVEL_UID
    stream = v1.list_namespaced_pod(NS, watch=True, timeout_seconds=1, _preload_content=False)
    assert stream.status == 200 and stream.headers["X-Kubernetes-PF-FlowSchema-UID"] == FLOW_SCHEMA_UID
    stream.release_conn()
    admin.clear_latency()
    admin.release_hung()
    holder.api_client.close()
    v1.api_client.close()


def _ignore_errors(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:  # noqa: BLE001 - the held request's end does not matter here
        pass


def test_a_request_that_waits_too_long_is_answered_429(limited: KubeSim) -> None:
    admin = limited.admin()
    admin.set_limit(seats=1, queue_wait=0.3, retry_after=3)
    admin.set_latency("create", seconds=30)
    holder = api_as(limited, "holder")
    threading.Thread(target=lambda: _ignore_errors(lambda: holder.create_namespaced_pod(NS, pod("held"))), daemon=True).start()
    wait_for(lambda: admin.limit()["executing"] == 1, timeout=10, what="the first create to hold the seat")
    v1 = api_as(limited, "caller")
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(NS, pod("waited"))
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "3"  # pinned by the setting
    state = admin.limit()
    assert (state["timedOut"], state["rejected"], state["waiting"]) == (1, 0, 0)
    v1.api_client.close()
    holder.api_client.close()


def test_a_waiting_request_runs_when_the_seat_frees(limited: KubeSim) -> None:
    admin = limited.admin()
    admin.set_limit(seats=1)
    admin.set_latency("create", seconds=0.5)
    results: list[str] = []
    threads = [threading.Thread(target=lambda n=n: results.append(api_as(limited, f"t{n}").create_namespaced_pod(NS, pod(f"p{n}")).metadata.name))
               for n in range(3)]
    for thread in threads:
        thread.start()
    wait_for(lambda: admin.limit()["waiting"] == 2, timeout=10, what="two creates waiting behind the first")
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["p0", "p1", "p2"]
    state = admin.limit()
    assert (state["dispatched"], state["rejected"], state["timedOut"], state["executing"]) == (3, 0, 0, 0)
    _pod, status, headers = api_as(limited, "t0").create_namespaced_pod_with_http_info(NS, pod("p3"))
    assert status == 201
    assert (headers["X-Kubernetes-PF-FlowSchema-UID"], headers["X-Kubernetes-PF-PriorityLevel-UID"]) == (FLOW_SCHEMA_UID, PRIORITY_LEVEL_UID)


def test_the_level_completes_creates_at_its_rate(limited: KubeSim) -> None:
    """16 clients against 50 creates/s: the stored creates follow the rate, and nobody is refused (the queues hold them)."""
    stop = time.monotonic() + 4
    counts = hammer(limited, ["a"] * 16, until=lambda: time.monotonic() > stop)
    times = [c["time"] for c in limited.admin().creates()]
    assert counts["429"] == 0
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate <= 50 * 1.1, f"{rate:.1f} creates/s against a limit of 50"  # 10 %: a stall of the test process at the first create
    assert rate >= 50 * 0.5, f"{rate:.1f} creates/s: the level should complete about 50/s under load"


def test_changing_the_rate_at_run_time_changes_what_completes(limited: KubeSim) -> None:
    admin = limited.admin()
    admin.set_limit(rate=10)
    stop = time.monotonic() + 3
    hammer(limited, ["a"] * 8, until=lambda: time.monotonic() > stop)
    times = [c["time"] for c in admin.creates()]
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 10 * 0.5 <= rate <= 10 * 1.25, f"{rate:.1f} creates/s against a limit of 10"
    admin.clear_limit()
    assert admin.limit()["settings"]["enabled"] is False
    stop = time.monotonic() + 1
    counts = hammer(limited, ["b"] * 8, until=lambda: time.monotonic() > stop)
    assert counts["b"] > 10 * 3, "with the model off nothing paces the creates"


def test_two_flows_get_a_fair_share_whatever_their_concurrency(limited: KubeSim) -> None:
    """A calls from 12 threads and B from 4: without fair queuing A would get 3/4 of the creates."""
    admin = limited.admin()
    state = admin.set_limit(seats=2, hand_size=1)
    stop = time.monotonic() + 5
    counts = hammer(limited, ["alice"] * 12 + ["bob"] * 4, until=lambda: time.monotonic() > stop)
    flows = admin.limit()["flows"]
    assert len(flows) == 2
    (queue_a,), (queue_b,) = (flow["queues"] for flow in flows.values())
    assert queue_a != queue_b, "the two test identities were dealt the same queue; pick other tokens"
    share = counts["bob"] / (counts["alice"] + counts["bob"])
    assert counts["429"] == 0
    assert 0.4 <= share <= 0.6, f"bob got {share:.0%} of {counts}"
    assert state["seats"] == 2


def test_bad_settings_are_refused_with_the_reason(limited: KubeSim) -> None:
    admin = limited.admin()
    with pytest.raises(AdminError) as info:
        admin.set_limit(hand_size=9, queues=8)
    assert info.value.status == 400
    assert "hand_size=9: must be at most queues (8)" in info.value.body
    with pytest.raises(AdminError) as info:
        admin.set_limit(rate=-1)
    assert "rate=-1.0: must be >= 0" in info.value.body
    assert admin.limit()["settings"]["rate"] == 50  # nothing changed


def test_reset_restores_the_limit_kubesim_started_with(limited: KubeSim) -> None:
    admin = limited.admin()
    admin.set_limit(rate=5, seats=3)
    admin.reset()
    settings = admin.limit()["settings"]
    assert (settings["enabled"], settings["rate"], settings["seats"]) == (True, 50, 0)


def test_the_model_is_off_by_default(sim: KubeSim, v1: client.CoreV1Api) -> None:
    response = v1.create_namespaced_pod_with_http_info(NS, pod("free"))
    headers = response[2]
    assert "X-Kubernetes-PF-FlowSchema-UID" not in headers
    assert sim.admin().limit()["settings"]["enabled"] is False
    assert sim.admin().limit()["dispatched"] == 0


def test_a_client_that_gives_up_while_queued_frees_its_place(limited: KubeSim) -> None:
    admin = limited.admin()
    admin.set_limit(seats=1, queue_length=1, hand_size=1)
    admin.set_latency("create", seconds=30)
    holder = api_as(limited, "holder")
    threading.Thread(target=lambda: _ignore_errors(lambda: holder.create_namespaced_pod(NS, pod("held"))), daemon=True).start()
    wait_for(lambda: admin.limit()["executing"] == 1, timeout=10, what="the first create to hold the seat")
    v1 = api_as(limited, "caller")
    with pytest.raises(Exception, match="timed out|Read timed out"):
        v1.create_namespaced_pod(NS, pod("impatient"), _request_timeout=0.5)
    wait_for(lambda: admin.limit()["waiting"] == 0, timeout=10, what="the abandoned request to leave its queue")
    assert admin.limit()["flows"][identity("Bearer caller", None)]["waiting"] == 0
    admin.set_latency("create", seconds=0.5)
    # its place is free again: the next request waits in it rather than being refused
    threading.Thread(target=lambda: _ignore_errors(lambda: v1.create_namespaced_pod(NS, pod("patient"))), daemon=True).start()
    wait_for(lambda: admin.limit()["waiting"] == 1, timeout=10, what="a new request to take the queue's place")
    assert admin.limit()["rejected"] == 0
    admin.release_hung()


def test_turning_the_model_off_lets_every_waiting_request_go(limited: KubeSim) -> None:
    admin = limited.admin()
    admin.set_limit(seats=1, rate=0.5)  # one create every two seconds
    done: list[str] = []
    threads = [threading.Thread(target=lambda n=n: done.append(api_as(limited, "t").create_namespaced_pod(NS, pod(f"p{n}")).metadata.name))
               for n in range(5)]
    for thread in threads:
        thread.start()
    wait_for(lambda: admin.limit()["waiting"] >= 3, timeout=10, what="creates queued behind the slow level")
    admin.clear_limit()
    for thread in threads:
        thread.join(10)
    assert sorted(done) == [f"p{n}" for n in range(5)]
    assert admin.limit()["waiting"] == 0


def test_a_client_certificate_is_a_flow_named_by_its_common_name(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "pki")
    server = ca.issue("server", common_name="kubesim", hosts=("127.0.0.1",))
    settings = {"tls_cert_file": str(server.cert), "tls_key_file": str(server.key), "client_ca_file": str(ca.cert),
                "kubelet_paused": True, "limit": LimitSettings(enabled=True, rate=100)}
    with running_kubesim(**settings) as sim:
        for name in ("scheduler-a", "scheduler-b"):
            pair = ca.issue(name, common_name=name, client=True)
            configuration = client.Configuration(host=sim.url)
            configuration.ssl_ca_cert, configuration.cert_file, configuration.key_file = str(ca.cert), str(pair.cert), str(pair.key)
            with client.ApiClient(configuration) as api_client:
                client.CoreV1Api(api_client).create_namespaced_pod(NS, pod(f"from-{name}"))
        flows = sim.call(lambda core: core.limit.describe()["flows"])  # the admin client does not trust the test CA
    assert {name: flow["dispatched"] for name, flow in flows.items()} == {"scheduler-a": 1, "scheduler-b": 1}


def test_a_higher_rate_takes_effect_at_once(limited: KubeSim) -> None:
    admin = limited.admin()
    admin.set_limit(rate=0.1)  # one create every ten seconds
    v1 = api_as(limited, "t")
    v1.create_namespaced_pod(NS, pod("first"))  # goes at once; the next one would wait ten seconds
    admin.set_limit(rate=50)
    started = time.monotonic()
    v1.create_namespaced_pod(NS, pod("second"))
    assert time.monotonic() - started < 5, "the next create waited for the old rate's interval"
    v1.api_client.close()
