"""Loading broker/'s Lua scripts (the .lua files beside this module)."""
from __future__ import annotations

from functools import cache
from importlib import resources

import redis


@cache
def script_source(name: str) -> str:
    """The text of ``lua/<name>.lua``."""
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def register(client: redis.Redis, name: str):
    """A callable Script for ``name``; redis-py sends EVALSHA and reloads it after a restart."""
    return client.register_script(script_source(name))
