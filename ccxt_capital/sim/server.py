"""Running the simulator: on its own thread and loop (tests, notebooks) or on the caller's loop.

The REST API is served under ``/api/v1`` and the streaming API on the WebSocket ``/connect`` of
the same port (the session's ``streamingHost`` points there).

``CapitalSimulator`` is the object tests hold: ``base_url`` (without ``/api/v1``), the ``clock``
they drive, the ``faults`` they arm and read-only views of the books. The thread mode exists so a
synchronous test (or a sync ccxt client) can talk to the server while the test thread keeps
control of the clock; all control methods lock the broker and are safe from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Coroutine
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from normalization.runtime.simclock import SimClock

from .app import build_app
from .broker import Broker, BrokerConfig
from .faults import FaultPlan
from .models import Position, WorkingOrder
from .pricing import Quote
from .streaming import Streamer

DEFAULT_API_KEY = "demo-api-key"
DEFAULT_IDENTIFIER = "demo@example.com"
DEFAULT_PASSWORD = "demo-password"
#: A Tuesday, 10:00 in New York: US shares, FX, indices, metals and crypto are all open.
DEFAULT_START = datetime(2024, 3, 5, 15, 0, tzinfo=timezone.utc).timestamp()


class CapitalSimulator:
    """A running fake Capital.com REST API v1 on 127.0.0.1.

    ``rate_limits`` picks the clock of the request limits: ``"sim"`` (deterministic, default),
    ``"wall"`` (as at the broker; for real clients that throttle in real time) or ``"off"``.
    ``ssl_context`` (a server context with its certificate loaded) serves REST and the WebSocket over
    TLS, as the real hosts do (``https://`` / ``wss://``): for testing a client's TLS path on loopback.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, seed: int = 0, currency: str = "USD",
                 start: float | None = DEFAULT_START, clock: SimClock | None = None, real_time: bool = False,
                 rate_limits: str = "sim", balance: float = 10_000.0, rejects_on_confirm: bool = False,
                 tz_offset: float = 0.0, csv: dict[str, str | Path] | None = None,
                 api_key: str = DEFAULT_API_KEY, identifier: str = DEFAULT_IDENTIFIER,
                 password: str = DEFAULT_PASSWORD, ssl_context: ssl.SSLContext | None = None) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the simulator serves on loopback only")
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.clock = clock or SimClock(start, real_time=real_time)
        self.broker = Broker(
            BrokerConfig(seed=seed, currency=currency, balance=balance, rate_limits=rate_limits,
                         rejects_on_confirm=rejects_on_confirm, tz_offset=tz_offset, api_key=api_key,
                         identifier=identifier, password=password, csv=csv),
            self.clock,
        )
        self.streamer = Streamer(self.broker)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # -- addresses and credentials ----------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with TLS) -- clients append ``/api/v1`` themselves."""
        return f"{'https' if self.ssl_context is not None else 'http'}://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/v1"

    @property
    def credentials(self) -> dict[str, str]:
        cfg = self.broker.config
        return {"api_key": cfg.api_key, "identifier": cfg.identifier, "password": cfg.password}

    @property
    def api_key(self) -> str:
        return self.broker.config.api_key

    @property
    def identifier(self) -> str:
        return self.broker.config.identifier

    @property
    def password(self) -> str:
        return self.broker.config.password

    @property
    def faults(self) -> FaultPlan:
        return self.broker.faults

    # -- async mode: serve on the caller's loop ----------------------------------------------
    async def start_async(self) -> CapitalSimulator:
        self.streamer.loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(build_app(self.broker, self.streamer), access_log=None, handle_signals=False,
                                    shutdown_timeout=0.5)
        await self._runner.setup()
        self._site = self._new_site(self._runner)
        await self._site.start()
        self.port = self._runner.addresses[0][1]
        if self.clock.real_time:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    def _new_site(self, runner: web.AppRunner) -> web.TCPSite:
        return web.TCPSite(runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context)

    async def stop_async(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for conn in list(self.streamer.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.streamer.close()
        self.broker.close()

    async def go_down_async(self) -> None:
        """The broker's front door shuts: open connections are cut, new ones refused, until
        :meth:`come_back_async`. Its books stay as they are (an outage, not a restart)."""
        if self._site is None or self._runner is None:
            raise RuntimeError("the simulator is not serving")
        await self._site.stop()
        self._site = None
        server = self._runner.server
        for handler in list(server.connections) if server is not None else []:
            handler.force_close()
            if handler.transport is not None:
                handler.transport.close()

    async def come_back_async(self) -> None:
        """Accept connections again, on the same port."""
        if self._runner is None:
            raise RuntimeError("the simulator is not serving")
        if self._site is None:
            self._site = self._new_site(self._runner)
            await self._site.start()

    async def _tick(self) -> None:
        """With a real-time clock nobody calls ``advance``: run due stops/orders every second."""
        while True:
            await asyncio.sleep(1.0)
            with self.broker.lock:
                self.broker.sync()
            await self.streamer.publish()

    async def __aenter__(self) -> CapitalSimulator:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    # -- thread mode ---------------------------------------------------------------------------
    def start(self) -> CapitalSimulator:
        """Serve from a daemon thread with its own event loop; returns once connections are accepted."""
        self._thread = threading.Thread(target=self._serve, name="capital-sim", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._startup_error is not None:
            raise RuntimeError("capital simulator failed to start") from self._startup_error
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.start_async())
        except BaseException as error:  # reported to start()
            self._startup_error = error
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.stop_async())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._thread = None
            self._loop = None

    def __enter__(self) -> CapitalSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control and inspection (thread-safe) ------------------------------------------------
    def go_down(self) -> None:
        """Thread mode's :meth:`go_down_async`: returns once connections are refused."""
        self._on_loop(self.go_down_async())

    def come_back(self) -> None:
        """Thread mode's :meth:`come_back_async`: returns once connections are accepted again."""
        self._on_loop(self.come_back_async())

    def _on_loop(self, work: Coroutine[Any, Any, None]) -> None:
        if self._loop is None:
            work.close()
            raise RuntimeError("go_down / come_back need the simulator in thread mode (start()); use the *_async ones")
        asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    def advance(self, seconds: float) -> float:
        """Move the simulated clock; due orders, stops, expiries and swaps run before it returns."""
        return self.clock.advance(seconds)

    def set_time(self, when: float | datetime) -> None:
        self.clock.set(when.timestamp() if isinstance(when, datetime) else when)

    def quote(self, epic: str, at: float | None = None) -> Quote:
        return self.broker.quote(epic, at)

    def pin_price(self, epic: str, mid: float | None, at: float | None = None) -> None:
        self.broker.pin_price(epic, mid, at)

    def positions(self, account_id: str | None = None) -> list[Position]:
        return self.broker.positions(account_id)

    def working_orders(self, account_id: str | None = None) -> list[WorkingOrder]:
        return self.broker.working_orders(account_id)

    def balances(self, account_id: str | None = None) -> dict[str, float]:
        return self.broker.balances(account_id)

    def transactions(self, account_id: str | None = None) -> list[Any]:
        return self.broker.transactions(account_id)

    def check_books(self) -> None:
        self.broker.check_books()

    def expire_sessions(self) -> int:
        return self.broker.expire_sessions()

    @property
    def accounts(self) -> list[str]:
        return list(self.broker.accounts)
