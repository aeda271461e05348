"""kubesim's event loop: uvloop's where installed, asyncio's own where not."""
import asyncio
import sys

import uvloop

from kubesim.eventloop import new_event_loop


def test_kubesim_serves_on_uvloop_when_it_is_installed():
    loop = new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
        assert loop.run_until_complete(asyncio.sleep(0, result="ran")) == "ran"
    finally:
        loop.close()


def test_without_uvloop_kubesim_falls_back_to_asyncios_loop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    loop = new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()
