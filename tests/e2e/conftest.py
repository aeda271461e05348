"""The whole stack as separate processes, the way `podq up` runs it."""
from __future__ import annotations

import pytest

from podq.broker.store.connection import connect
from podq.kubesim.admin import Admin
from podq.shared.settings import load_settings
from podq.stack import Stack, StackOptions
from tests.support import wait_for


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Embedded Valkey, kubesim, intake, two workers and a watcher, each its own process."""
    options = StackOptions(workers=2, worker_concurrency=8, data_dir=str(tmp_path_factory.mktemp("stack")),
                           extra_env={"PODQ_WORKER_VISIBILITY_TIMEOUT": "10"})
    with Stack(load_settings({}), options) as running:
        # Jobs submitted before the watcher watches are first seen already finished on a loaded
        # machine (a 50 ms pod), and then only their terminal result is published.
        wait_for(lambda: Admin(running.kubesim_url).stats()["watches"] >= 1, timeout=60,
                 message="the watcher watching kubesim")
        yield running


@pytest.fixture(scope="module")
def stack_redis(stack):
    client = connect(stack.redis_url, block_ms=500)
    yield client
    client.close()


@pytest.fixture(scope="module")
def stack_admin(stack):
    return Admin(stack.kubesim_url)
