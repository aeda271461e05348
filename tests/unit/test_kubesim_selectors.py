"""kubesim label and field selectors: apimachinery grammar and semantics."""

import pytest

from podq.kubesim.errors import ApiError
from podq.kubesim.selectors import parse_field_selector, parse_label_selector

LABELS = {"airflow-worker": "1", "env": "prod", "tier": "7"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("env=prod", True),
        ("env==prod", True),
        ("env=dev", False),
        ("env!=dev", True),
        ("missing!=x", True),  # != matches objects without the label
        ("airflow-worker=1,airflow_executor_done!=True", True),
        ("env in (prod, dev)", True),
        ("env in (dev)", False),
        ("missing in (a)", False),
        ("env notin (dev)", True),
        ("missing notin (a)", True),
        ("env", True),
        ("!env", False),
        ("!missing", True),
        ("tier>5", True),
        ("tier<5", False),
        ("missing>1", False),
        (" env = prod , tier ", True),
        ("env=", False),
    ],
)
def test_label_selector_semantics(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is expected


@pytest.mark.parametrize("bad", ["env in prod", "=x", "env=a b", "tier>x", "bad key!/x=1", "env in (a", "a,,b"])
def test_label_selector_rejects_bad_syntax(bad: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_label_selector(bad)
    assert info.value.code == 400


def test_url_decoded_airflow_selector() -> None:
    from urllib.parse import unquote

    sel = parse_label_selector(unquote("airflow-worker%3D1%2Cairflow_executor_done%21%3DTrue"))
    assert sel.matches({"airflow-worker": "1"})
    assert not sel.matches({"airflow-worker": "1", "airflow_executor_done": "True"})


POD = {
    "metadata": {"name": "p,1", "namespace": "ns"},
    "spec": {"nodeName": "n1", "restartPolicy": "Never"},
    "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("status.phase!=Succeeded", True),
        ("status.phase=Running,spec.nodeName==n1", True),
        ("spec.host=n1", True),
        ("metadata.name=p\\,1", True),
        ("status.nominatedNodeName=", True),  # a missing field compares as ""
        ("spec.hostNetwork=false", True),
        ("status.podIPs=10.0.0.1", True),
        ("metadata.namespace!=ns", False),
    ],
)
def test_field_selector(selector: str, expected: bool) -> None:
    assert parse_field_selector(selector).matches(POD) is expected


def test_unknown_field_is_400() -> None:
    with pytest.raises(ApiError) as info:
        parse_field_selector("spec.foo=1")
    assert info.value.code == 400
    assert info.value.message == "field label not supported: spec.foo"
