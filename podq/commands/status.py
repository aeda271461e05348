"""`podq status`: a live view of the whole system, read from Redis alone.

Queue depth and in-flight, delayed jobs, dispatch and create rates, each cluster's create budget
(its rate, why, the rate the API server last accepted, a shared pause), each scheduler's results
stream (length, lag, pending, oldest pending age, dead letters), the workers that answer
Celery's ping, each watcher scope's leader and lease, and the latest dead letters with their
reasons. ``--once`` prints one reading and exits; ``--json`` prints it for machines.
"""
from __future__ import annotations

import json
import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from podq.broker.queue.app import make_celery
from podq.broker.store import counters
from podq.broker.store.ratelimit import PUSH_BACKS
from podq.shared.states import PROCESS_ROLES
from podq.status import Rates, Snapshot, as_json, celery_ping, rates, read

from ._common import Interrupt, redis_from


def register(subparsers) -> None:
    parser = subparsers.add_parser("status", help="a live view of queues, schedulers, workers and watchers")
    parser.add_argument("--once", action="store_true", help="print one reading and exit")
    parser.add_argument("--json", action="store_true", help="print one reading as JSON and exit")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between readings (rates are measured over it; default 2)")
    parser.set_defaults(run=run)


def run(args, settings) -> int:
    client = redis_from(settings)
    app = make_celery(broker_url=settings.redis.url, worker=settings.worker, redis=settings.redis)
    ping = celery_ping(app, timeout=1.0)
    interval = max(0.2, args.interval)
    try:
        if args.once or args.json:
            first = read(client, ping=ping)
            time.sleep(interval)  # a second reading: the rates are the totals' growth between the two
            second = read(client, ping=ping)
            if args.json:
                print(json.dumps(as_json(second, rates(first, second)), indent=2))
            else:
                Console().print(render(second, rates(first, second)))
            return 0
        return live(client, ping=ping, interval=interval)
    finally:
        app.close()
        client.close()


def live(client, *, ping, interval: float) -> int:
    stop = Interrupt()
    previous = read(client, ping=ping)
    with Live(render(previous, None), refresh_per_second=4, screen=False) as view:
        while not stop.wait(interval):
            current = read(client, ping=ping)
            view.update(render(current, rates(previous, current)))
            previous = current
    return stop.exit_code()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def render(snapshot: Snapshot, rate: Rates | None) -> Group:
    """The status screen: one summary line, then a table per part of the system."""
    figures = snapshot.overview
    rate_text = f"{rate.dispatched:.1f}/s dispatched  {rate.created:.1f}/s created" if rate else "rates: measuring"
    totals = snapshot.totals
    ended = "  ".join(f"{count} {state}" for state, count in counters.ended_totals(totals).items())
    totals_text = (f"totals: {totals.get(counters.ACCEPTED, 0)} accepted  {totals.get(counters.DISPATCHED, 0)} "
                   f"dispatched  {totals.get(counters.CREATED, 0)} pods created  ended: {ended}")
    summary = Text.assemble(
        ("podq status", "bold"), f"  {time.strftime('%H:%M:%S', time.localtime(figures.at))}\n",
        f"queue {figures.queue_messages} messages   in flight {figures.in_flight}   delayed {figures.delayed}   "
        f"jobs stream {figures.jobs.length} (unread {figures.jobs_lag}, unacked {figures.jobs_pending})\n",
        rate_text, "\n", totals_text)

    schedulers = Table(title="schedulers (results streams)", title_justify="left", expand=False)
    for column in ("scheduler", "waiting", "length", "lag", "pending", "oldest pending", "dead"):
        schedulers.add_column(column, justify="left" if column == "scheduler" else "right")
    waiting = {scheduler: count for lines in figures.waiting.values() for scheduler, count in lines.items()}
    for item in figures.schedulers:
        schedulers.add_row(item.scheduler, str(waiting.get(item.scheduler, 0)), str(item.length), str(item.lag),
                           str(item.pending), _age(item.oldest_pending_age),
                           Text(str(item.dead), style="red" if item.dead else ""))
    if not figures.schedulers:
        schedulers.add_row("(none yet)", "", "", "", "", "", "")

    watchers = Table(title="watchers", title_justify="left")
    watchers.add_column("scope")
    watchers.add_column("leader")
    watchers.add_column("lease left", justify="right")
    for scope in figures.scopes:
        if scope.leader:
            leader = Text(scope.leader, style="green")
        elif scope.lease_holder:
            leader = Text(f"NO LEADER ({scope.lease_holder} stopped renewing)", style="bold red")
        else:
            leader = Text("NO LEADER", style="bold red")
        watchers.add_row(scope.scope, leader, _age(scope.lease_ttl))
    if not figures.scopes:
        watchers.add_row("(no watcher has run)", "", "")

    budgets = Table(title="create budgets (per cluster)", title_justify="left")
    for column in ("cluster", "creates/s", "why", "accepted at last push-back", "pause left"):
        budgets.add_column(column, justify="left" if column in ("cluster", "why") else "right")
    for cluster, budget in figures.budgets.items():
        pause = budget.pause_until - figures.at
        budgets.add_row(cluster, f"{budget.rate:.1f}",
                        Text(budget.reason, style="yellow" if budget.reason in PUSH_BACKS else ""),
                        f"{budget.peak:.1f}/s" if budget.peak else "-",
                        Text(f"{pause:.1f}s", style="red") if pause > 0 else "-")
    if not figures.budgets:
        budgets.add_row("(no worker has created yet)", "", "", "", "")

    workers = Text.assemble(("workers ", "bold"), f"{len(snapshot.workers)} answered the ping: ",
                            ", ".join(snapshot.workers) or Text("none", style="bold red"))
    live = Text.assemble(("alive ", "bold"), "(own liveness records)  ", *(
        part for role in PROCESS_ROLES for part in (
            f"{role}: ", Text(str(len(figures.live.get(role, ()))), style="" if figures.live.get(role) else "bold red"),
            "  ")))

    if not figures.recent_dead:
        return Group(summary, schedulers, budgets, watchers, workers, live, Text(f"dead letters: {figures.dead}"))
    dead = Table(title=f"dead letters: {figures.dead}, the latest {len(figures.recent_dead)}", title_justify="left")
    dead.add_column("when")
    dead.add_column("stream")
    dead.add_column("reason")
    for letter in figures.recent_dead:
        dead.add_row(time.strftime("%H:%M:%S", time.localtime(letter.at)), letter.stream, letter.reason)
    return Group(summary, schedulers, budgets, watchers, workers, live, dead)
