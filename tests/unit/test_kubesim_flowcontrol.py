"""kubesim's API limit model, pure parts: the shuffle-sharding dealer, Retry-After, settings, identities, flags."""

from __future__ import annotations

import base64
import itertools
import json

import pytest

from podq.kubesim.access import ANONYMOUS, identity
from podq.kubesim.cli import build_parser, settings_from_args
from podq.kubesim.flowcontrol import MAX_RETRY_AFTER, RetryAfter, deal
from podq.kubesim.settings import LimitSettings


def test_a_hand_is_distinct_queues_of_the_deck_and_always_the_same() -> None:
    for value in (0, 1, 12345, 2**63 + 7, 2**127 - 1):
        hand = deal(value, deck=64, hand=8)
        assert len(set(hand)) == 8 and all(0 <= card < 64 for card in hand)
        assert deal(value, deck=64, hand=8) == hand
    assert sorted(deal(987654321, deck=6, hand=6)) == list(range(6))  # a full hand is the whole deck


def test_hands_spread_over_the_queues() -> None:
    firsts = {deal(value * 7919, deck=64, hand=1)[0] for value in range(2000)}
    assert len(firsts) == 64


def feed(tracker: RetryAfter, drops_per_second: dict[int, int]) -> list[int]:
    """Record the drops second by second; the Retry-After after each second."""
    values = []
    for second, count in sorted(drops_per_second.items()):
        for _ in range(count):
            tracker.record(second)
        values.append(tracker.value)
    return values


def test_retry_after_doubles_while_drops_go_on_up_to_32() -> None:
    tracker = RetryAfter()
    assert tracker.value == 1
    values = feed(tracker, {second: 10 for second in range(100, 140)})
    assert values[0] == 1  # the first second's drops are not yet counted
    assert values[1] == 2  # 10 drops in the last second >= 3 x 1
    assert max(values) == MAX_RETRY_AFTER
    assert values == sorted(values)


def test_retry_after_comes_down_by_one_when_drops_are_rare() -> None:
    tracker = RetryAfter()
    feed(tracker, {second: 50 for second in range(100, 110)})
    high = tracker.value
    assert high > 2
    later = feed(tracker, {second: 1 for second in range(200, 200 + high)})
    assert later[-1] < high
    assert all(b in (a, a - 1) for a, b in itertools.pairwise([high, *later]))


def test_seats_default_to_a_tenth_of_the_rate() -> None:
    assert LimitSettings(rate=400).effective_seats() == 40
    assert LimitSettings(rate=5).effective_seats() == 1
    assert LimitSettings(rate=400, seats=3).effective_seats() == 3
    assert LimitSettings().effective_seats() == 1


def test_settings_change_all_at_once_or_not_at_all() -> None:
    limit = LimitSettings()
    limit.update({"rate": "100", "seats": 4.0, "enabled": "true", "queue_wait": 2})
    assert (limit.rate, limit.seats, limit.enabled, limit.queue_wait) == (100.0, 4, True, 2.0)
    for bad, message in [
        ({"rate": 10, "seats": 1.5}, "seats: 1.5 is not a whole number"),
        ({"rate": 10, "queues": 0}, "queues=0: must be >= 1"),
        ({"rate": 10, "hand_size": 65}, "hand_size=65: must be at most queues (64)"),
        ({"rate": "fast"}, "rate: 'fast' is not a float"),
        ({"rate": float("inf")}, "rate: inf is not a float"),
        ({"enabled": "yes"}, "enabled: 'yes' is not a bool"),
        ({"burst": 3}, "unknown limit setting 'burst'"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            limit.update(bad)
        assert (limit.rate, limit.seats, limit.queues, limit.hand_size) == (100.0, 4, 64, 8)


def jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_identity_is_the_callers_user() -> None:
    account = "system:serviceaccount:podq:podq-worker"
    assert identity(f"Bearer {jwt({'sub': account, 'iss': 'x'})}", None) == account
    plain = identity("Bearer secret-one", None)
    assert plain.startswith("token:") and "secret" not in plain
    assert plain == identity("bearer secret-one", None) != identity("Bearer secret-two", None)
    assert identity("Bearer a.b.c", None).startswith("token:")  # three parts but not a JWT
    cert = {"subject": ((("organizationName", "system:masters"),), (("commonName", "scheduler-a"),))}
    assert identity(None, cert) == "scheduler-a"
    assert identity(None, None) == ANONYMOUS
    assert identity("Basic dXNlcjpwdw==", None) == ANONYMOUS


def test_limit_flags() -> None:
    args = build_parser().parse_args(["--limit-rate", "400", "--limit-queue-length", "10", "--limit-queue-wait", "2"])
    limit = settings_from_args(args).limit
    assert (limit.enabled, limit.rate, limit.queue_length, limit.queue_wait, limit.effective_seats()) == (True, 400.0, 10, 2.0, 40)
    assert settings_from_args(build_parser().parse_args([])).limit.enabled is False
    assert settings_from_args(build_parser().parse_args(["--limit-seats", "5"])).limit.rate == 0
    with pytest.raises(SystemExit, match="need --limit-rate or --limit-seats"):
        settings_from_args(build_parser().parse_args(["--limit-queue-wait", "4"]))
    with pytest.raises(SystemExit, match="hand_size=8: must be at most queues"):
        settings_from_args(build_parser().parse_args(["--limit-rate", "1", "--limit-queues", "4"]))


def test_podq_up_passes_the_limit_to_kubesim() -> None:
    from podq.cli import build_parser as podq_parser
    from podq.commands.up import kubesim_args
    from podq.shared.errors import PodqError

    def passed(*argv: str) -> tuple[str, ...]:
        return kubesim_args(podq_parser().parse_args(["up", *argv]))

    assert passed() == ()
    assert passed("--api-limit", "400") == ("--limit-rate=400",)
    assert passed("--api-limit", "100", "--api-limit-seats", "5") == ("--limit-rate=100", "--limit-seats=5")
    assert settings_from_args(build_parser().parse_args(list(passed("--api-limit", "100", "--api-limit-seats", "5")))).limit.seats == 5
    with pytest.raises(PodqError, match="--api-limit-seats needs --api-limit"):
        passed("--api-limit-seats", "5")
    with pytest.raises(PodqError, match="--api-limit must be > 0"):
        passed("--api-limit", "0")
