"""Settings come from PODQ_ variables, once, with errors naming the variable."""
from __future__ import annotations

import pytest

from podq.shared.errors import SettingsError
from podq.shared.settings import load_settings


def test_defaults_without_environment():
    settings = load_settings({})
    assert settings.redis.url is None and settings.kube.namespace == "default"


def test_variables_by_section_and_type():
    settings = load_settings({"PODQ_REDIS_URL": "redis://h:1/0", "PODQ_KUBE_IN_CLUSTER": "yes",
                              "PODQ_WORKER_CONCURRENCY": "8", "PODQ_WATCHER_NAMESPACES": "a, b,,c",
                              "PODQ_WORKER_VISIBILITY_TIMEOUT": "12.5", "UNRELATED": "x"})
    assert settings.redis.url == "redis://h:1/0"
    assert settings.kube.in_cluster is True
    assert settings.worker.concurrency == 8 and settings.worker.visibility_timeout == 12.5
    assert settings.watcher.namespaces == ("a", "b", "c")


@pytest.mark.parametrize("name, value", [("PODQ_WORKER_CONCURRENCY", "many"), ("PODQ_KUBE_IN_CLUSTER", "maybe")])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})
