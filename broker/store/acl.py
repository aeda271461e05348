"""Redis ACL users, one per role, in the server's ACL file format (``podq redis-acl``).

Each role gets the commands and key patterns its code issues, nothing else:

* ``producer`` — adds records to ``podq:jobs`` and ``podq:control`` (XADD), and WAITs for replicas;
* ``scheduler:<S>`` — reads, acknowledges, claims and dead-letters on ``podq:results:<S>`` and
  ``podq:results:<S>:dead``; creating its group (a script) also records ``S`` in
  ``podq:schedulers``, so that key is in its patterns (a script's declared keys need read and
  write access), with SADD and EXISTS its only commands there (no SMEMBERS: it cannot list others);
* ``intake``, ``worker``, ``watcher`` — podq's keys (``podq:*``), and for intake and workers the
  Celery queue and kombu's own keys; the commands of their Redis calls, their scripts and (workers)
  kombu's transport. None of them gets an administrative command (``-@dangerous``), except that
  the kombu transport is granted exactly the pub/sub and list commands it issues.

Every script key arrives through ``KEYS[]`` (broker/store/lua), which is what lets a key pattern
bind a script at all. Connection commands every client sends (PING, CLIENT SETNAME/SETINFO, HELLO,
READONLY-free) are granted to all.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from podq.shared.errors import SettingsError

from . import keys

# What every podq client sends on connecting and for health checks.
_CONNECTION = ("+ping", "+hello", "+client|setname", "+client|setinfo", "+echo", "+wait")
_SCRIPTS = ("+evalsha", "+eval", "+script|load", "+script|exists")
_STREAM_CONSUMER = ("+xreadgroup", "+xack", "+xautoclaim", "+xclaim", "+xpending", "+xgroup|create",
                    "+xadd", "+xrange", "+xinfo|groups", "+xinfo|stream", "+multi", "+exec", "+discard")
# The commands podq's scripts and direct calls use on its own keys (broker/store).
_STORE = ("+get", "+set", "+del", "+exists", "+expire", "+pexpire", "+ttl", "+pttl", "+incr", "+incrby",
          "+hget", "+hset", "+hdel", "+hgetall", "+hmget", "+hincrby", "+hexists", "+hlen", "+hkeys", "+hsetnx",
          "+hincrbyfloat", "+hscan", "+sadd", "+srem", "+smembers", "+sismember", "+scard", "+sscan",
          "+zadd", "+zrem", "+zscore", "+zrange", "+zrangebyscore", "+zcard", "+zremrangebyscore", "+zcount",
          "+lpush", "+rpush", "+llen", "+lrange",
          "+xtrim", "+xlen", "+xdel", "+xinfo|consumers", "+xrevrange", "+scan", "+type", "+time")
# kombu's Redis transport, as podq's workers use it (BRPOP consumer, unacked hash and index,
# restore mutex, fanout bindings, pidbox over pub/sub).
_KOMBU = ("+brpop", "+rpop", "+rpush", "+lpush", "+lrem", "+ltrim", "+setnx", "+info", "+psubscribe", "+subscribe",
          "+punsubscribe", "+unsubscribe", "+publish", "+smembers", "+sadd", "+watch", "+unwatch", "+zrevrangebyscore")
# kombu keeps a list per priority step: the queue's name, then "\x06\x16" and the step.
_KOMBU_KEYS = (f"~{keys.CELERY_QUEUE}*", f"~{keys.KOMBU_UNACKED}",
               f"~{keys.KOMBU_UNACKED_INDEX}", "~unacked_mutex", "~_kombu.*",
               # Celery's remote control: each worker's pidbox queue and the replies to it.
               "~*.celery.pidbox*")

ROLES = ("producer", "intake", "worker", "watcher")

# The server's own `default` user is on with no password unless its configuration says otherwise: an
# open superuser beside podq's least-privilege users. `podq redis-acl` puts this line first.
DEFAULT_OFF = "user default off resetpass resetkeys resetchannels -@all"


@dataclass(frozen=True)
class AclUser:
    name: str
    password: str
    rules: tuple[str, ...]

    def line(self) -> str:
        return " ".join(("user", self.name, "on", f">{self.password}", "resetkeys", "resetchannels", "-@all",
                         *self.rules))


def url_for(url: str, user: AclUser) -> str:
    """``url`` (any PODQ_REDIS_URL scheme, without credentials) with ``user``'s name and password in it."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise SettingsError(f"--url: {url!r} is not a Redis URL (redis://host:6379/0, rediss+sentinel://…)")
    if "@" in parts.netloc:
        raise SettingsError("--url: give the URL without a user or password; each role's are put in")
    netloc = f"{quote(user.name, safe='')}:{quote(user.password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def role_rules(role: str) -> tuple[str, ...]:
    """The ACL rules (after ``-@all``, keys and channels reset) of one role."""
    if role == "producer":
        return (*_CONNECTION, "+xadd", f"~{keys.JOBS_STREAM}", f"~{keys.CONTROL_STREAM}")
    own = (f"~{keys.PREFIX}:*",)
    if role == "intake":
        return (*_CONNECTION, *_SCRIPTS, *_STREAM_CONSUMER, *_STORE, *own, f"~{keys.CELERY_QUEUE}*")
    if role == "worker":
        return (*_CONNECTION, *_SCRIPTS, *_STORE, *_STREAM_CONSUMER, *_KOMBU, *own, *_KOMBU_KEYS, "&*")
    if role == "watcher":
        return (*_CONNECTION, *_SCRIPTS, *_STORE, *_STREAM_CONSUMER, *own, f"~{keys.CELERY_QUEUE}*")
    raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}, scheduler:<id>")


def scheduler_rules(scheduler_id: str) -> tuple[str, ...]:
    stream, dead = keys.results_stream(scheduler_id), keys.results_dead_stream(scheduler_id)
    return (*_CONNECTION, *_SCRIPTS, *_STREAM_CONSUMER, "+exists", "+sadd",
            f"~{stream}", f"~{dead}", f"~{keys.SCHEDULERS_SET}")


def users(*, schedulers: tuple[str, ...] = (), passwords: dict[str, str] | None = None,
          prefix: str = "podq-") -> list[AclUser]:
    """One user per role and per scheduler; passwords from ``passwords`` (by role) or generated."""
    passwords = passwords or {}
    chosen = []
    for role in ROLES:
        chosen.append(AclUser(f"{prefix}{role}", passwords.get(role) or secrets.token_urlsafe(24), role_rules(role)))
    for scheduler_id in schedulers:
        role = f"scheduler:{scheduler_id}"
        chosen.append(AclUser(f"{prefix}scheduler-{scheduler_id}", passwords.get(role) or secrets.token_urlsafe(24),
                              scheduler_rules(scheduler_id)))
    return chosen
