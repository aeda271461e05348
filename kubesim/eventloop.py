"""The event loop kubesim serves on: uvloop's where it is installed, else asyncio's own.

kubesim shares the machine with what it serves during development and benchmarks; on uvloop
its CPU per create is about a fifth lower (bench.kubesim_load --only cpu; docs/performance.md).
The API it serves is the same on either loop.
"""
from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # not installed (it has no Windows build): asyncio's loop serves the same API
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
