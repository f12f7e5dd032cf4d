"""The fake TWS: shared simulator state, the asyncio server, and a thread-safe control API.

Tests drive the simulator from their own thread (or loop) while it serves on its own event
loop thread. Every state change therefore happens on the simulator loop: control methods
hop onto it with ``_call`` and wait for the result, so when ``sim.advance(60)`` returns,
the fills it caused have already been written to the clients' sockets. A test then waits
on the client's own events (with a timeout) and never sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from normalization.runtime.simclock import SimClock

from . import messages as M
from .account_views import account_values, portfolio_rows, summary_values
from .calendars import preload as preload_calendars
from .catalogue import Catalogue, Instrument, default_instruments
from .faults import FaultState, MessageDrop, OrderDrop
from .ledger import Ledger
from .marketdata import HistoricalPacer, MarketData
from .matching import Event, OrderEngine
from .pnl import PnLBook
from .session import Session

log = logging.getLogger("ccxt_ibkr.sim")
T = TypeVar("T")

#: Tuesday 2025-06-10 14:00 UTC = 10:00 New York: US, Xetra, FX, CME and crypto are open.
DEFAULT_START = 1_749_564_000.0
#: Longest run of one-minute matching steps per clock move; longer jumps use coarser steps.
MAX_STEPS = 2_000
#: Fastest real-time push loop (seconds): FX quotes change every 5 ms, Python need not wake that often.
MIN_TICK_PERIOD = 0.02
#: Seconds between unsolicited account/portfolio refreshes (TWS: about three minutes).
ACCOUNT_PUSH_INTERVAL = 180


class IBSimulator:
    """A TWS/IB Gateway on 127.0.0.1 speaking the socket protocol (server versions 157-178).

    Use ``with IBSimulator(port=0) as sim`` (own thread) or ``async with`` (current loop).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        clock: SimClock | None = None,
        start: float | None = None,
        real_time: bool = False,
        base_currency: str = "USD",
        cash: Mapping[str, float] | None = None,
        account: str = "DU1234567",
        csv_paths: Mapping[str, str | Path] | None = None,
        instruments: Iterable[Instrument] | None = None,
        tick_interval: float = 1.0,
        cadence: Mapping[str, float] | None = None,
    ) -> None:
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError("the simulator only listens on loopback")
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        if clock is None:
            clock = SimClock(start if start is not None else (None if real_time else DEFAULT_START),
                             real_time=real_time)
        self.clock = clock
        self.catalogue = Catalogue(instruments if instruments is not None else default_instruments(clock.now()))
        preload_calendars({inst.hours.calendar for inst in self.catalogue})
        self.market = MarketData(seed=seed, csv_paths=csv_paths, cadence=cadence)
        if cash is None:
            cash = {base_currency: 1_000_000.0}
        self.ledger = Ledger(account=account, base_currency=base_currency, cash=dict(cash), rate=self.fx_rate)
        self.engine = OrderEngine(self.market, self.ledger, self._on_event)
        self.pnl = PnLBook(self.ledger, self.mark, self.market.mid)
        self.pnl.roll(clock.now())
        self.pacer = HistoricalPacer()
        self.faults = FaultState()
        self.sessions: list[Session] = []
        self.tick_interval = tick_interval
        #: Wall-clock seconds a new connection has to greet and send startApi before it is dropped.
        self.handshake_timeout = 10.0
        #: Concurrent streaming reqMktData lines per client (TWS default 100; error 101 beyond).
        self.max_market_data_lines = 100
        self.stats_messages_in = 0
        self.stats_messages_out = 0
        self.stats_bars_served = 0
        self.stats_historical_requests = 0
        self._last_step = clock.now()
        self._dirty_con_ids: set[int] = set()
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._loop_thread_id: int | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._session_tasks: set[asyncio.Task[None]] = set()
        self._listener = self._on_clock
        clock.subscribe(self._listener)

    # -- lifecycle: async ---------------------------------------------------------------------
    async def start_async(self) -> IBSimulator:
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.clock.real_time:
            self._ticker = asyncio.create_task(self._tick_forever())
        log.info("listening on %s:%s", self.host, self.port)
        return self

    async def stop_async(self) -> None:
        self.clock.unsubscribe(self._listener)
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.abort()
        for task in list(self._session_tasks):
            task.cancel()
        if self._session_tasks:
            await asyncio.gather(*self._session_tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> IBSimulator:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    # -- lifecycle: own thread ----------------------------------------------------------------
    def start(self) -> IBSimulator:
        """Serve on a private loop in a daemon thread; returns once the port is bound."""
        started: Future[None] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                started.set_exception(exc)
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"ib-sim-{self.port}", daemon=True)
        self._thread.start()
        started.result(timeout=30)
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> IBSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- thread hopping ----------------------------------------------------------------------
    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the simulator loop and wait; direct when already there or not running."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._loop_thread_id:
            return fn(*args)
        result: Future[T] = Future()

        def run() -> None:
            try:
                result.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                result.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return result.result(timeout=60)

    def loop_call_soon(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        self._loop.call_soon(fn)

    # -- connections -------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.append(session)
        task = asyncio.current_task()
        if task is not None:
            self._session_tasks.add(task)
        try:
            await session.run()
        finally:
            if task is not None:
                self._session_tasks.discard(task)

    def client_in_use(self, client_id: int) -> bool:
        return any(s.ready and not s.closed and s.client_id == client_id for s in self.sessions)

    def session_ready(self, session: Session) -> None:
        log.info("client %s connected at server version %s", session.client_id, session.version)

    def session_closed(self, session: Session) -> None:
        if session in self.sessions:
            self.sessions.remove(session)

    def _sessions_for(self, client_id: int, include_bound: bool = False) -> list[Session]:
        return [
            s for s in self.sessions
            if s.ready and not s.closed
            and (s.client_id == client_id or (include_bound and s.client_id == 0 and s.auto_bind))
        ]

    # -- time ---------------------------------------------------------------------------------
    def _on_clock(self, when: float) -> None:
        self._call(self._advance_to, when)

    def _tick_period(self) -> float:
        """Real-time mode: push as often as the fastest subscribed quote changes (at least every
        ``tick_interval``); with nothing subscribed and no order working, idle at ``tick_interval``."""
        period = self.tick_interval
        for session in self.sessions:
            if not session.ready or session.closed:
                continue
            for inst in session.streamed_instruments():
                step = self.market.cadence.get(inst.sec_type, 0.0)
                if step > 0:
                    period = min(period, step)
        return max(period, MIN_TICK_PERIOD)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._tick_period())
            try:
                self._advance_to(self.clock.now())
            except Exception:  # noqa: BLE001 - the ticker must survive a bad step
                log.exception("real-time tick failed")

    def _advance_to(self, target: float) -> None:
        """Run matching at each minute boundary crossed, then at ``target``; push updates."""
        start = self._last_step
        if target < start:
            return
        if self.engine.open_orders(None):
            step = 60.0
            first = (start // 60 + 1) * 60
            count = int((target - first) // 60) + 1 if target >= first else 0
            if count > MAX_STEPS:
                step = 60.0 * (count // MAX_STEPS + 1)
            t = first
            while t < target:
                self.pnl.roll(t)
                self.engine.step(t)
                t += step
        self.pnl.roll(target)
        self.engine.step(target)
        self._last_step = target
        for session in list(self.sessions):
            if session.ready and not session.closed:
                session.on_clock()
                session.on_stream_clock()
        self.after_activity()
        if target // ACCOUNT_PUSH_INTERVAL != start // ACCOUNT_PUSH_INTERVAL:
            # Like TWS: portfolio values and account values refresh every few minutes.
            with self.ledger.lock:
                held = {c for c, p in self.ledger.positions.items() if p.qty}
            if held:
                for session in list(self.sessions):
                    if session.ready and not session.closed:
                        session.on_account_change(held, prices_only=True)

    def after_activity(self) -> None:
        """Push account/position changes collected while handling a request or a step."""
        if not self._dirty_con_ids:
            return
        con_ids, self._dirty_con_ids = self._dirty_con_ids, set()
        for session in list(self.sessions):
            if session.ready and not session.closed:
                session.on_account_change(con_ids)
                session.on_stream_positions(con_ids)

    # -- engine events -> messages ---------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if event.kind == "account":
            assert event.order is not None
            self._dirty_con_ids.add(event.order.inst.con_id)
            return
        for session in self._sessions_for(event.client_id, include_bound=event.kind != "error"):
            v = session.version
            order = event.order
            if event.kind == "open" and order is not None:
                session.send(M.open_order(order, v, self.ledger.account))
            elif event.kind == "status" and order is not None:
                session.send(M.order_status(order, v))
            elif event.kind == "exec" and order is not None and event.execution is not None:
                session.send(M.exec_details(-1, event.execution, v, self.ledger.account))
                session.send(M.order_status(order, v))
                if order.status == "Filled":
                    session.send(M.open_order(order, v, self.ledger.account))
                if not self.faults.take_commission_drop():
                    session.send(M.commission_report(event.execution))
            elif event.kind == "error":
                session.error(event.req_id, event.code, event.text)

    # -- account views -----------------------------------------------------------------------
    def fx_rate(self, ccy: str) -> float:
        """Base-currency units per unit of ``ccy`` from the FX mid prices now."""
        return self._usd_per(ccy) / self._usd_per(self.ledger.base_currency)

    def _usd_per(self, ccy: str) -> float:
        if ccy == "USD":
            return 1.0
        now = self.clock.now()
        for inst in self.catalogue:
            if inst.sec_type != "CASH":
                continue
            if inst.symbol == ccy and inst.currency == "USD":
                return self.market.mid(inst, now)
            if inst.symbol == "USD" and inst.currency == ccy:
                return 1.0 / self.market.mid(inst, now)
        return 1.0

    def mark(self, inst: Instrument) -> float:
        return self.market.mid(inst, self.clock.now())

    def account_values(self) -> list[tuple[str, str, str]]:
        """(key, value, currency) rows as updateAccountValue / accountUpdateMulti send them."""
        return account_values(self.ledger, self.mark)

    def summary_values(self, tags: list[str]) -> list[tuple[str, str, str]]:
        return summary_values(self.ledger, self.mark, tags)

    def portfolio_rows(self, version: int, con_ids: set[int] | None = None) -> list[list[object]]:
        return portfolio_rows(self.ledger, self.mark, version, con_ids)

    # -- control API (thread-safe) -----------------------------------------------------------
    def advance(self, seconds: float) -> float:
        """Move the simulated clock forward; returns once fills and ticks have been sent."""
        return self.clock.advance(seconds)

    def set_time(self, when: float) -> None:
        self.clock.set(when)

    def now(self) -> float:
        return self.clock.now()

    def instrument(self, symbol: str, sec_type: str = "", currency: str = "") -> Instrument:
        return self.catalogue.find(symbol, sec_type, currency)

    def quote(self, symbol: str, sec_type: str = "", currency: str = "") -> Any:
        inst = self.instrument(symbol, sec_type, currency)
        return self.market.quote(inst, self.clock.now())

    def set_liquidity(self, max_fill_per_match: float | None = None, symbol: str | None = None) -> None:
        """Cap each match (placement or clock step) to this quantity; None = unlimited."""

        def apply() -> None:
            if symbol is None:
                self.engine.liquidity.max_fill_per_match = max_fill_per_match
            elif max_fill_per_match is None:
                self.engine.liquidity.per_symbol.pop(symbol, None)
            else:
                self.engine.liquidity.per_symbol[symbol] = max_fill_per_match

        self._call(apply)

    def check_ledger(self) -> None:
        self._call(self.ledger.check_invariants)

    def orders(self) -> list[Any]:
        return self._call(lambda: list(self.engine.orders.values()))

    def executions(self) -> list[Any]:
        return self._call(lambda: list(self.engine.executions))

    def connected_client_ids(self) -> list[int]:
        return self._call(lambda: [s.client_id for s in self.sessions if s.ready and not s.closed])

    # faults
    def drop_after_messages(self, count: int, client_id: int | None = None, direction: str = "out") -> None:
        """Close the socket right after the ``count``-th further message in ``direction``."""
        with self.faults.lock:
            self.faults.message_drops.append(MessageDrop(count, client_id, direction))

    def drop_on_order(self, stage: str = "before", order_ref: str | None = None,
                      client_id: int | None = None) -> None:
        """Drop the connection when a matching order arrives: before/booked/acked (see faults.py)."""
        with self.faults.lock:
            self.faults.order_drops.append(OrderDrop(stage, order_ref, client_id))

    def delay_replies(self, seconds: float, client_id: int | None = None) -> None:
        with self.faults.lock:
            self.faults.reply_delay = seconds
            self.faults.reply_delay_client = client_id

    def reject_next_order(self, reason: str = "Simulated rejection") -> None:
        self._call(self.engine.reject_next.append, reason)

    def pacing_violation(self, count: int = 1) -> None:
        self.pacer.force_violation(count)

    def mark_client_id_in_use(self, client_id: int, in_use: bool = True) -> None:
        with self.faults.lock:
            if in_use:
                self.faults.busy_client_ids.add(client_id)
            else:
                self.faults.busy_client_ids.discard(client_id)

    def warn_next_order(
        self, code: int = 10349, text: str = "Order TIF was set to DAY based on order preset."
    ) -> None:
        """Send an informational error after the next order's ack; the order stays live.

        10349 is the classic case: ib_async 2.x marks such a trade Cancelled although it works on.
        """
        with self.faults.lock:
            self.faults.order_warnings.append((code, text))

    def drop_commission_reports(self, count: int = 1) -> None:
        with self.faults.lock:
            self.faults.dropped_commission_reports += count

    def start_outage(self) -> None:
        """IB-side connectivity lost: 1100 to every client; ticks and new orders stop."""

        def run() -> None:
            self.faults.outage = True
            for session in self._ready_sessions():
                session.error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")

        self._call(run)

    def end_outage(self, data_lost: bool = False) -> None:
        """1101 (market data subscriptions dropped, client must resubscribe) or 1102 (kept)."""

        def run() -> None:
            self.faults.outage = False
            for session in self._ready_sessions():
                if data_lost:
                    session.mkt.clear()
                    session.depth.clear()
                    session.hist.clear()
                    session.realtime.clear()
                    session.error(-1, 1101, "Connectivity between IB and Trader Workstation has been restored "
                                            "- data lost.")
                else:
                    session.error(-1, 1102, "Connectivity between IB and Trader Workstation has been restored "
                                            "- data maintained. All data farms are connected: usfarm; ushmds; "
                                            "secdefnj.")

        self._call(run)

    def hold_cancels(self, hold: bool = True) -> None:
        """Answer cancels with PendingCancel only; the order can still fill until released."""

        def run() -> None:
            self.engine.hold_cancels = hold

        self._call(run)

    def release_cancels(self) -> None:
        def run() -> None:
            self.engine.hold_cancels = False
            self.engine.release_cancels(self.clock.now())
            self.after_activity()

        self._call(run)

    def drop_client(self, client_id: int) -> None:
        self._call(lambda: [s.abort() for s in self._sessions_for(client_id)])

    def restart_gateway(self) -> None:
        """Nightly restart: every connection drops; orders, executions and the ledger survive."""
        self._call(lambda: [s.abort() for s in list(self.sessions)])

    def _ready_sessions(self) -> list[Session]:
        return [s for s in self.sessions if s.ready and not s.closed]

    def pacer_requests(self) -> int:
        """Historical-data requests received so far (answered or refused): pagination tests count them."""
        return self.stats_historical_requests

    def reset_pacing(self) -> None:
        self.pacer.reset()

    def describe(self) -> str:
        when = dt.datetime.fromtimestamp(self.clock.now(), dt.timezone.utc)
        return f"IBSimulator({self.host}:{self.port}, {when:%Y-%m-%d %H:%M:%S} UTC, {len(self.catalogue)} contracts)"
