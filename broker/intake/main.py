"""``podq intake``: run one intake consumer and its housekeeping until stopped, or ``--check``.

Importing this module has no side effects; :func:`main` is the entry point
(``podq.cli`` passes the arguments after ``intake`` and the loaded settings).
Three named loops: ``intake`` (read, admit, dispatch), ``intake-dispatch``
(release waiting jobs as the create budget makes room, :mod:`.dispatcher`) and
``intake-housekeeping`` (:mod:`.housekeeping`). Any one crashing for good stops
them all, and the process exits non-zero.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading

from podq.broker.store.connection import connect, ping
from podq.shared import metrics
from podq.shared.errors import PodqError, SettingsError
from podq.shared import loops
from podq.shared.loops import LoopCrashed, run_loop, stop_on_signals
from podq.shared.settings import Settings
from podq.shared.secrets import scrub

from . import dispatcher
from .housekeeping import IDLE_WAIT, Housekeeping
from .service import Intake

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podq intake", description="Run intake: admission and dispatch to workers.")
    parser.add_argument("--consumer", help="consumer name in intake's group (default from host)")
    parser.add_argument("--check", action="store_true", help="exit 0 if Redis answers and the groups exist")
    return parser


class IntakeService:
    """The intake consumer and its housekeeping, as one stoppable service."""

    def __init__(self, settings: Settings, *, consumer: str | None = None) -> None:
        if not settings.redis.url:
            raise SettingsError("PODQ_REDIS_URL is not set (start the stack with `podq up`, which prints it)")
        self.client = connect(settings.redis.url, settings=settings.redis, block_ms=settings.intake.block_ms)
        self.intake = Intake(client=self.client, settings=settings, consumer=consumer)
        self.housekeeping = Housekeeping(client=self.client, settings=settings, instance=self.intake.consumer)
        self.settings = settings
        self.stopping = threading.Event()
        self.failed: BaseException | None = None

    def check(self) -> bool:
        """Redis answers and intake's groups exist."""
        self.intake.prepare()
        return ping(self.client)

    def run(self) -> int:
        """Serve until :attr:`stopping` is set; 0, or 1 when a loop crashed for good."""
        self.intake.prepare()
        chores = threading.Thread(target=self._guard, name="intake-housekeeping", daemon=True,
                                  args=("intake-housekeeping", self.housekeeping.step, IDLE_WAIT))
        chores.start()
        self.intake.initialise_metrics()
        releases = threading.Thread(target=self._guard, name="intake-dispatch", daemon=True,
                                    args=("intake-dispatch", self.intake.dispatch_waiting, dispatcher.IDLE_WAIT))
        if any(item.enabled for item in self.intake.dispatchers.values()):
            releases.start()
        metrics.start(self.settings.metrics, service=f"intake {self.intake.consumer}",
                      ping=lambda: ping(self.client), stop=self.stopping,
                      health=lambda: loops.health(["intake", "intake-housekeeping"]))
        self._guard("intake", self.intake.step, 0.0)
        self.stopping.set()
        chores.join(timeout=30)
        self.housekeeping.gauges.leave()
        if releases.is_alive():
            releases.join(timeout=30)
        self.client.close()
        return 1 if self.failed else 0

    def _guard(self, name: str, step, idle_wait: float) -> None:
        try:
            run_loop(name, step, stop=self.stopping, idle_wait=idle_wait)
        except LoopCrashed as exc:
            self.failed = exc
            self.stopping.set()


def main(argv: list[str] | None, settings: Settings) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        service = IntakeService(settings, consumer=args.consumer)
        if args.check:
            return 0 if service.check() else 1
    except PodqError as exc:
        print(f"podq intake: {scrub(str(exc))}", file=sys.stderr)
        return 2
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(service.stopping)
    code = service.run()
    if code:
        print(f"podq intake: {service.failed}", file=sys.stderr)
    return code
