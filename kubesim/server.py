"""The aiohttp application and the ways to run it: ``KubeSimServer`` on a running loop, ``KubeSim`` in a thread."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from . import errors
from .access import ssl_context
from .admin_routes import PREFIX as ADMIN_PREFIX
from .admin_routes import AdminRoutes
from .core import SimCore
from .discovery import DiscoveryRoutes
from .event_routes import EventRoutes
from .eventloop import new_event_loop
from .flowcontrol import MUTATING
from .http_util import check_accept, error_response
from .kubeconfig import write_kubeconfig
from .pod_routes import PodRoutes
from .runtime import check_bind
from .settings import SimSettings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_watch(request: web.Request) -> bool:
    return "/watch/" in request.path or request.query.get("watch", "").lower() in ("true", "1")


def _middleware(core: SimCore) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    limit = core.limit

    @web.middleware
    async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every failure leaves as a Kubernetes Status body; counts the API requests in flight (watches aside);
        mutating requests pass the API limit when its model is on (flowcontrol.py)."""
        if request.path.startswith(ADMIN_PREFIX):
            return await _answer(request, handler)
        counted = not _is_watch(request)
        if counted:
            core.in_flight += 1
        try:
            if core.requests.enabled:
                await core.requests.record(request)
            core.gate.check(request)
            check_accept(request)
            if limit.settings.enabled:
                if request.method in MUTATING:
                    return await limit.serve(request, lambda: _answer(request, handler))
                return limit.label(await _answer(request, handler))
            return await _answer(request, handler)
        except errors.ApiError as exc:
            return error_response(exc)
        finally:
            if counted:
                core.in_flight -= 1

    return status_errors


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ApiError as exc:
        return error_response(exc)
    except errors.Dropped:
        return web.Response(status=499)  # the socket is already gone; aiohttp drops this quietly
    except web.HTTPNotFound:
        return error_response(errors.ApiError(code=404, reason="NotFound", message="the server could not find the requested resource", details={}))
    except web.HTTPMethodNotAllowed:
        return error_response(errors.method_not_allowed(request.method))


def build_app(core: SimCore) -> web.Application:
    app = web.Application(middlewares=[_middleware(core)], client_max_size=16 * 1024 * 1024)
    PodRoutes(core).add_to(app)
    EventRoutes(core).add_to(app)
    DiscoveryRoutes(core).add_to(app)
    AdminRoutes(core).add_to(app)
    return app


class KubeSimServer:
    """A kubesim on the current event loop: ``await start()``, ``await stop()``."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.settings = settings or SimSettings()
        self.core: SimCore | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.kubeconfig: Path | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.tls_cert_file else "http"
        return f"{scheme}://{self.settings.host}:{self.port}"

    async def start(self) -> None:
        check_bind(self.settings)
        self.core = SimCore(self.settings)
        self._runner = web.AppRunner(build_app(self.core), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port, backlog=1024,
                           ssl_context=ssl_context(self.settings))
        try:
            await site.start()
        except BaseException:
            await self.core.kubelet.close()  # the container runtime's reaper process goes with it
            raise
        server = site._server  # noqa: SLF001 - the only way to learn the port picked for port 0
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.settings.kubeconfig:
            self.kubeconfig = write_kubeconfig(self.settings.kubeconfig, self.url, token=self.settings.token,
                                               ca_file=self.settings.tls_cert_file)
        log.info("kubesim listening on %s (resourceVersion starts at %s)", self.url, self.core.store.rv)

    async def stop(self) -> None:
        if self.core is not None:
            self.core.store.hub.close_all("server stopping")
            self.core.logs.close_all()
            self.core.faults.release_hung()
            await self.core.kubelet.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        log.info("kubesim on %s stopped", self.url)


class KubeSim:
    """A kubesim in a background thread, for tests and embedding.

    >>> sim = KubeSim.start(SimSettings(kubeconfig="/tmp/kc"))   # doctest: +SKIP
    >>> sim.url, sim.port, sim.kubeconfig; sim.admin().compact(); sim.stop()  # doctest: +SKIP
    """

    def __init__(self, settings: SimSettings) -> None:
        if not settings.kubeconfig:
            settings.kubeconfig = str(Path(tempfile.mkdtemp(prefix="kubesim-")) / "kubeconfig")
        self.settings = settings
        self.server = KubeSimServer(settings)
        self._loop = new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="kubesim", daemon=True)

    @classmethod
    def start(cls, settings: SimSettings | None = None) -> KubeSim:
        sim = cls(settings or SimSettings())
        sim._thread.start()
        if not sim._ready.wait(30):
            raise errors.KubeSimError("kubesim did not start within 30 s")
        if sim._error is not None:
            raise errors.KubeSimError(f"kubesim failed to start: {sim._error!r}") from sim._error
        return sim

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def kubeconfig(self) -> str:
        return str(self.server.kubeconfig)

    def admin(self):  # type: ignore[no-untyped-def]
        """An admin client (admin.Admin) for this server."""
        from .admin import Admin

        return Admin(self.url)

    def call(self, fn: Callable[[SimCore], object]) -> object:
        """Run ``fn(core)`` on the server's loop and return its result (direct access for tests)."""
        assert self.server.core is not None
        core = self.server.core

        async def run() -> object:
            return fn(core)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(30)

    def __enter__(self) -> KubeSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(settings: SimSettings | None = None, **overrides: object) -> KubeSim:
    """Start a kubesim in a background thread; keyword overrides set SimSettings fields."""
    settings = settings or SimSettings()
    for key, value in overrides.items():
        setattr(settings, key, value)
    return KubeSim.start(settings)
