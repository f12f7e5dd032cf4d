"""The connection to TWS / IB Gateway: connect, reconnect, events, bounded requests, pacing.

Everything that calls the ``IB`` object lives here -- requests, order placement and cancels,
account reads, subscriptions, event hooks (:meth:`IBTransport.listen`) -- so the ccxt surface
(``exchange.py``), the rooms around it (``connection.py``, ``orders.py``, ``journaling.py`` ...) and
the streams (``pro.py``) never see a socket, a request id or a library exception. Configured once
by a frozen :class:`IBSettings` read from the exchange's ``options``. Three rules:

* **Bounded.** Every request has a timeout (``requestTimeout`` seconds); ib_async's own blocking
  waits (a missing ``tickSnapshotEnd``, a connect to a clientId in use) would otherwise hang a
  bot for a minute or forever.
* **Typed failures.** Library errors become ccxt exceptions here (:func:`to_ccxt_error`), with
  IB's code and text kept in the message.
* **Paced.** Historical requests pass through the shared pacer (``ib_historical_pacer``), so a long
  ``fetch_ohlcv`` never trips IB's error 162 pacing violation.

The transport is created and used on the exchange's event loop only; it is not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt

from normalization.errors import ib_exception
from normalization.runtime.breaker import Breakers, CircuitBreaker
from normalization.runtime.pacing import Pacer, ib_historical_pacer, shared_pacer
from normalization.runtime.retry import RequestNotSent
from normalization.runtime.shared import process_wide
from normalization.runtime.singleflight import RecentAnswers
from normalization.runtime.supervisor import (
    EXECUTION,
    MARKET_DATA,
    Backoff,
    ConnectionSupervisor,
    ReconnectEvent,
    ib_maintenance_windows,
)

from ._ib import IB, IB_LIBRARY_NAME, BarData, Contract, ContractDetails, Order, RequestError, Ticker, Trade

log = logging.getLogger("ccxt_ibkr")

#: Codes that say "IB itself is unreachable right now" (1100) or back again (1101, 1102).
OUTAGE_START = 1100
OUTAGE_END = frozenset({1101, 1102})
CLIENT_ID_IN_USE = 326
#: IB's "no identical historical request within 15 s" (ib-protocol.md §4).
IDENTICAL_WINDOW = 15.0


class NotReachable(RequestNotSent, ccxt.ExchangeNotAvailable):
    """TWS / IB Gateway could not be reached: nothing was sent, so a retry cannot duplicate anything."""


def to_ccxt_error(exc: BaseException, exchange_id: str = "ibkr", what: str = "request") -> ccxt.BaseError:
    """Translate a client-library or socket failure into the ccxt exception a bot can act on."""
    if isinstance(exc, ccxt.BaseError):
        return exc
    if isinstance(exc, RequestError):
        return ib_exception(exc.code, exc.message, exchange_id=exchange_id)
    if isinstance(exc, ConnectionRefusedError):
        return ccxt.ExchangeNotAvailable(
            f"{exchange_id} {what}: connection refused ({exc}); is TWS / IB Gateway running?"
        )
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ccxt.RequestTimeout(f"{exchange_id} {what} timed out")
    if isinstance(exc, (ConnectionError, OSError)):
        return ccxt.NetworkError(f"{exchange_id} {what}: {type(exc).__name__}: {exc}")
    return ccxt.ExchangeError(f"{exchange_id} {what}: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class IBSettings:
    """How one connection to TWS / IB Gateway is made and bounded: the exchange's ``options`` (the
    user-facing surface, camelCase as in ccxt), read and typed once when the connection is created."""

    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 1
    account: str = ""  # empty: the first account TWS manages
    connect_timeout: float = 10.0
    request_timeout: float = 30.0
    readonly: bool = False
    exchange_id: str = "ibkr"
    backoff: Backoff = field(default_factory=Backoff)
    auto_reconnect: bool = True
    maintenance_windows: Any = None  # None: IB's nightly restart (ib_maintenance_windows)
    breaker_failures: int = 5
    breaker_reset: float = 30.0
    pacer: Pacer | None = None  # a caller's own pacer; None: the process-wide one of the gateway

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, default_port: int, exchange_id: str = "ibkr") -> IBSettings:
        """Read ``options`` (``host``, ``port``, ``clientId``, ``account``, ``connectTimeout``,
        ``requestTimeout``, ``readonly``, ``pacer``, ``reconnect``, ``autoReconnect``,
        ``maintenanceWindows``, ``breaker``); ``default_port`` when ``port`` is unset (paper or live)."""
        breaker = options.get("breaker") or {}
        return cls(
            host=options.get("host") or cls.host,
            port=int(options.get("port") or default_port),
            client_id=int(options.get("clientId", cls.client_id)),
            account=options.get("account") or "",
            connect_timeout=float(options.get("connectTimeout", cls.connect_timeout)),
            request_timeout=float(options.get("requestTimeout", cls.request_timeout)),
            readonly=bool(options.get("readonly", cls.readonly)),
            exchange_id=exchange_id,
            backoff=Backoff.from_options(options.get("reconnect")),
            auto_reconnect=bool(options.get("autoReconnect", cls.auto_reconnect)),
            maintenance_windows=options.get("maintenanceWindows"),
            breaker_failures=int(breaker.get("failureThreshold", cls.breaker_failures)),
            breaker_reset=float(breaker.get("resetTimeout", cls.breaker_reset)),
            pacer=options.get("pacer"),
        )


class IBTransport:
    """One ``IB`` connection with lazy (re)connect and the request helpers the adapter needs."""

    def __init__(self, settings: IBSettings) -> None:
        self.settings = settings
        self.host = settings.host
        self.port = settings.port
        self.client_id = settings.client_id
        self.account = settings.account  # the first managed account once connected, if none was set
        self.connect_timeout = settings.connect_timeout
        self.request_timeout = settings.request_timeout
        self.readonly = settings.readonly
        self.exchange_id = exchange_id = settings.exchange_id
        pacer = settings.pacer
        # IB paces historical requests per gateway, whichever connection sends them: one pacer and one
        # table of recent answers per host:port in the process, shared by every clientId.
        gateway = (self.host, self.port)
        self.pacer = pacer or shared_pacer(("ib-historical", gateway), ib_historical_pacer)
        self._recent_bars: RecentAnswers[list[BarData]] = (
            RecentAnswers(IDENTICAL_WINDOW) if pacer is not None
            else process_wide(("ib-recent-bars", gateway), lambda: RecentAnswers(IDENTICAL_WINDOW, size=64))
        )
        self.pacing_retries = 0  # historical requests sent again after a pacing violation (diagnostics)
        # ib_async keys some requests by name, not by request id (reqCurrentTime, reqPositions,
        # reqAllOpenOrders, reqCompletedOrders): a second one in flight takes the first one's reply and
        # the other caller waits out its timeout. Concurrent callers (several exchange objects on this
        # connection, or gather() in one bot) join the request under way instead (``once``).
        self._singletons: RecentAnswers[Any] = RecentAnswers(0.0)
        self.ib: IB = IB()
        # Request errors raise RequestError instead of silently returning empty results.
        self.ib.RaiseRequestErrors = True
        self.outage = False
        self.last_system_error: tuple[int, str] | None = None
        self._connect_lock = asyncio.Lock()
        self._clash: asyncio.Future[tuple[int, str]] | None = None
        self._listeners: list[Callable[[], Any]] = []
        self._expect_disconnect = False
        self._streams: dict[int, tuple[Contract, Ticker]] = {}
        self._depth: dict[int, tuple[Contract, int, Ticker]] = {}
        #: Exchange objects sharing this connection and one subscription: cancelled when the last one stops.
        self._users: dict[tuple[Any, ...], int] = {}
        self._ticks: dict[int, tuple[Contract, Ticker]] = {}
        self._bars: dict[tuple[Any, ...], tuple[Contract, Any, str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._epoch = 0  # bumped on every successful connect: which connection a request was sent on
        windows = settings.maintenance_windows
        self.supervisor = ConnectionSupervisor(
            exchange_id,
            self.connect,
            backoff=settings.backoff,
            auto_reconnect=settings.auto_reconnect,
            connect_timeout=settings.connect_timeout + 2,
            maintenance=ib_maintenance_windows() if windows is None else windows,
        )
        self.supervisor.on_reconnected(self._resubscribe)
        # Separate breakers: a failing data feed must never block a cancel, and vice versa.
        self.breakers = Breakers.create(
            exchange_id, failure_threshold=settings.breaker_failures, reset_timeout=settings.breaker_reset
        )
        # Requests in flight when the socket dies can open a breaker; a reconnect proves IB reachable again.
        self.supervisor.reset_on_connect(self.breakers.market_data, self.breakers.execution)
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    def on_connected(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` (sync or async) after every successful (re)connect: reconciliation."""
        self._listeners.append(callback)

    def forget(self, *callbacks: Callable[..., Any]) -> None:
        """Stop calling ``callbacks`` on (re)connect: an exchange object sharing this connection left."""
        self._listeners = [c for c in self._listeners if c not in callbacks]
        self.supervisor.forget(*callbacks)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_error(self, req_id: int, code: int, text: str, contract: Any = None) -> None:
        if code == CLIENT_ID_IN_USE and self._clash is not None and not self._clash.done():
            self._clash.set_result((code, text))
        if code == OUTAGE_START:
            self.outage = True
            self.last_system_error = (code, text)
            self.supervisor.outage(f"IB {code}: {text}")
        elif code in OUTAGE_END:
            self.outage = False
            self.last_system_error = None
            self._spawn(self.supervisor.restored(data_lost=code == 1101, reason=f"IB {code}: {text}"))

    def _on_disconnected(self) -> None:
        """The socket closed: if we did not ask for it, fail fast and reconnect in the background."""
        if self._expect_disconnect:
            return
        self.supervisor.lost("connection to TWS / IB Gateway lost")

    async def connect(self) -> IB:
        """Connect (or return at once if connected); raise a ccxt error saying what went wrong.

        A clientId already in use makes TWS send 326 and close the socket, after which both client
        libraries wait out their whole timeout; we watch for 326 and fail at once instead. After the
        library's startup sync the ``on_connected`` listeners (journal reconciliation) run, counted as
        healing so ``supervisor.wait_ready`` waits for them.
        """
        if self.connected:
            return self.ib
        async with self._connect_lock:
            if self.connected:
                return self.ib
            loop = asyncio.get_running_loop()
            self._clash = loop.create_future()
            kwargs: dict[str, Any] = {
                "host": self.host,
                "port": self.port,
                "clientId": self.client_id,
                "timeout": self.connect_timeout,
                "readonly": self.readonly,
                "account": self.account,
            }
            self._expect_disconnect = True  # failed attempts disconnect; they are not "lost" connections
            connecting = asyncio.ensure_future(self.ib.connectAsync(**kwargs))
            try:
                done, _ = await asyncio.wait(
                    {connecting, self._clash}, timeout=self.connect_timeout + 1, return_when=asyncio.FIRST_COMPLETED
                )
                if self._clash in done:
                    connecting.cancel()
                    await asyncio.gather(connecting, return_exceptions=True)
                    self.ib.disconnect()
                    code, text = self._clash.result()
                    raise ccxt.AuthenticationError(
                        f"{self.exchange_id} {code}: {text} (clientId {self.client_id} is taken by another "
                        "connection; set a different options['clientId'])"
                    )
                if connecting not in done:
                    connecting.cancel()
                    await asyncio.gather(connecting, return_exceptions=True)
                    self.ib.disconnect()
                    raise ccxt.ExchangeNotAvailable(
                        f"{self.exchange_id}: no API handshake from {self.host}:{self.port} within "
                        f"{self.connect_timeout:g} s (is the API enabled in TWS / IB Gateway?)"
                    )
                connecting.result()
            except ccxt.BaseError:
                raise
            except BaseException as exc:
                self.ib.disconnect()
                raise to_ccxt_error(exc, self.exchange_id, f"connect to {self.host}:{self.port}") from exc
            finally:
                self._clash = None
                self._expect_disconnect = False
            if not self.account:
                accounts = self.ib.managedAccounts()
                self.account = accounts[0] if accounts else ""
            log.info("connected to %s:%s as clientId %s (%s)", self.host, self.port, self.client_id, IB_LIBRARY_NAME)
            self._epoch += 1
            self.outage = False
            # supervisor.connected() closes both breakers (reset_on_connect): failures counted while
            # the old connection died don't count against the new one.
            with self.supervisor.healing_scope():
                self.supervisor.connected()
                for callback in list(self._listeners):
                    result = callback()
                    if asyncio.iscoroutine(result):
                        await result
        return self.ib

    async def ensure(self, kind: str = EXECUTION) -> IB:
        """The connected ``IB``; connects lazily. Fails fast, before any send, while the link is down
        (reconnecting, IB outage, maintenance window): the supervisor's gate."""
        self.supervisor.ensure_usable(kind)
        if self.connected:
            return self.ib
        try:
            return await self.connect()
        except ccxt.ExchangeNotAvailable as exc:
            raise NotReachable(str(exc)) from exc
        except ccxt.NetworkError as exc:
            raise RequestNotSent(str(exc)) from exc

    def disconnect(self) -> None:
        if self.ib.isConnected():
            self._expect_disconnect = True
            try:
                self.ib.disconnect()
            finally:
                self._expect_disconnect = False

    async def close(self) -> None:
        await self.supervisor.close()
        self.disconnect()
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------------ streaming market data

    def stream(self, contract: Contract) -> Ticker:
        """A live (non-snapshot) market-data line, kept across reconnects and IB's 1101 (resubscribed)."""
        self._users[("mkt", contract.conId)] = self._users.get(("mkt", contract.conId), 0) + 1
        known = self._streams.get(contract.conId)
        if known is not None:
            return known[1]
        ticker = self.ib.reqMktData(contract)
        self._streams[contract.conId] = (contract, ticker)
        return ticker

    def stop_stream(self, contract: Contract) -> None:
        """End the live market-data line of ``contract`` (if any)."""
        if self._release(("mkt", contract.conId)):
            return
        known = self._streams.pop(contract.conId, None)
        if known is not None and self.connected:
            self.ib.cancelMktData(known[0])

    def depth_stream(self, contract: Contract, rows: int) -> Ticker:
        """A live depth subscription (``reqMktDepth``), kept across reconnects like :meth:`stream`."""
        self._users[("depth", contract.conId)] = self._users.get(("depth", contract.conId), 0) + 1
        known = self._depth.get(contract.conId)
        if known is not None:
            return known[2]
        ticker = self.ib.reqMktDepth(contract, numRows=rows)
        self._depth[contract.conId] = (contract, rows, ticker)
        return ticker

    def stop_depth(self, contract: Contract) -> None:
        if self._release(("depth", contract.conId)):
            return
        known = self._depth.pop(contract.conId, None)
        if known is not None and self.connected:
            self.ib.cancelMktDepth(known[0])

    def trade_stream(self, contract: Contract) -> Ticker:
        """Tick-by-tick trades (``reqTickByTickData`` AllLast), kept across reconnects."""
        self._users[("ticks", contract.conId)] = self._users.get(("ticks", contract.conId), 0) + 1
        known = self._ticks.get(contract.conId)
        if known is not None:
            return known[1]
        ticker = self.ib.reqTickByTickData(contract, "AllLast")
        self._ticks[contract.conId] = (contract, ticker)
        return ticker

    def stop_trades(self, contract: Contract) -> None:
        if self._release(("ticks", contract.conId)):
            return
        known = self._ticks.pop(contract.conId, None)
        if known is not None and self.connected:
            self.ib.cancelTickByTickData(known[0], "AllLast")

    async def bar_stream(self, contract: Contract, *, duration: str, bar_size: str, what: str, use_rth: bool) -> Any:
        """Bars kept up to date (``reqHistoricalData`` with keepUpToDate): IB pushes the forming bar.

        The returned list is ib_async's ``BarDataList``; its updates arrive on ``barUpdateEvent``
        (:meth:`listen`). Requested again after a reconnect (IB forgets it with the session).
        """
        key = (contract.conId, bar_size, what, use_rth)
        self._users[("bars", key)] = self._users.get(("bars", key), 0) + 1
        known = self._bars.get(key)
        if known is not None:
            return known[1]
        ib = await self.ensure(MARKET_DATA)
        bars = await self._bounded(
            ib.reqHistoricalDataAsync(contract, "", duration, bar_size, what, use_rth, formatDate=2,
                                      keepUpToDate=True),
            "reqHistoricalData(keepUpToDate)", breaker=self.breakers.market_data,
        )
        self._bars[key] = (contract, bars, duration)
        return bars

    def stop_bars(self, contract: Contract, *, bar_size: str, what: str, use_rth: bool) -> None:
        if self._release(("bars", (contract.conId, bar_size, what, use_rth))):
            return
        known = self._bars.pop((contract.conId, bar_size, what, use_rth), None)
        if known is not None and self.connected:
            self.ib.cancelHistoricalData(known[1])

    def _release(self, key: tuple[Any, ...]) -> bool:
        """One user of a shared subscription is done; True while others still use it (keep it)."""
        left = self._users.get(key, 1) - 1
        if left > 0:
            self._users[key] = left
            return True
        self._users.pop(key, None)
        return False

    def listen(self, event: str, handler: Callable[..., Any]) -> None:
        """Attach ``handler`` to one of the ``IB`` object's events (``pendingTickersEvent``,
        ``orderStatusEvent``, ``execDetailsEvent``, ...). The object outlives reconnects, so does this."""
        getattr(self.ib, event).connect(handler)

    def unlisten(self, event: str, handler: Callable[..., Any]) -> None:
        getattr(self.ib, event).disconnect(handler)

    # The library's local view (kept current by the socket, no request sent); each call a new list.
    def fills(self) -> list[Any]:
        return self.ib.fills()

    def trades(self) -> list[Trade]:
        return self.ib.trades()

    def open_trades(self) -> list[Trade]:
        return self.ib.openTrades()

    def account_values(self) -> list[Any]:
        return self.ib.accountValues(self.account)

    def held_positions(self) -> list[Any]:
        return self.ib.positions(self.account)

    def portfolio(self) -> list[Any]:
        return self.ib.portfolio(self.account)

    def managed_accounts(self) -> list[str]:
        return list(self.ib.managedAccounts())

    async def _resubscribe(self, event: ReconnectEvent) -> None:
        """After a reconnect or 1101 every market-data line is gone at IB: request them again."""
        if not event.data_lost or not self.connected:
            return
        restored = event.reason == "restored"
        for con_id, (contract, _) in list(self._streams.items()):
            if restored:
                self.ib.cancelMktData(contract)
            self._streams[con_id] = (contract, self.ib.reqMktData(contract))
        for con_id, (contract, rows, _) in list(self._depth.items()):
            if restored:
                self.ib.cancelMktDepth(contract)
            self._depth[con_id] = (contract, rows, self.ib.reqMktDepth(contract, numRows=rows))
        for con_id, (contract, _) in list(self._ticks.items()):
            if restored:
                self.ib.cancelTickByTickData(contract, "AllLast")
            self._ticks[con_id] = (contract, self.ib.reqTickByTickData(contract, "AllLast"))
        for key, (contract, bars, duration) in list(self._bars.items()):
            if restored:
                self.ib.cancelHistoricalData(bars)
            del self._bars[key]
            try:
                await self.bar_stream(contract, duration=duration, bar_size=key[1], what=key[2], use_rth=key[3])
                self._users[("bars", key)] -= 1  # the same users as before the reconnect, not one more
            except ccxt.BaseError as exc:
                log.warning("%s: bars of %s not resubscribed: %s", self.exchange_id, contract.symbol, exc)

    # ------------------------------------------------------------------ waiting on events

    async def wait_trade(
        self, trade: Trade, done: Callable[[Trade], bool], timeout: float, extra_events: Iterable[str] = ()
    ) -> bool:
        """Wait until ``done(trade)`` holds or ``timeout`` passes; True if it holds.

        The predicate is checked inside the trade's own event handlers (status, fills, commissions,
        modifications), so the waiter resumes on the very message that satisfies it: no polling, no
        sleeps, no extra task. A dropped connection ends the wait early (the caller reports what it knows).
        ``extra_events`` names further ``IB`` events that may change the answer (``openOrderEvent``).
        """
        if done(trade):
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()

        def wake(*_: Any) -> None:
            if not future.done() and (done(trade) or not self.connected):
                future.set_result(done(trade))

        def expire() -> None:
            if not future.done():
                future.set_result(done(trade))

        events = [trade.statusEvent, trade.fillEvent, trade.commissionReportEvent, trade.modifyEvent,
                  trade.cancelledEvent, self.ib.disconnectedEvent, *(getattr(self.ib, e) for e in extra_events)]
        for event in events:
            event += wake
        timer = loop.call_later(timeout, expire)
        try:
            return await future
        finally:
            timer.cancel()
            for event in events:
                event -= wake

    async def wait_event(self, name: str, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait on the ``IB`` event ``name`` until ``predicate()`` holds, at most ``timeout`` seconds."""
        if predicate():
            return True
        event = getattr(self.ib, name)
        flag = asyncio.Event()

        def wake(*_: Any) -> None:
            flag.set()

        event += wake
        deadline = time.monotonic() + timeout
        try:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                flag.clear()
                try:
                    await asyncio.wait_for(flag.wait(), remaining)
                except asyncio.TimeoutError:
                    return predicate()
            return True
        finally:
            event -= wake

    # ------------------------------------------------------------------ requests

    async def _bounded(
        self, awaitable: Any, what: str, timeout: float | None = None, breaker: CircuitBreaker | None = None
    ) -> Any:
        """``await`` one request with a deadline, through a circuit breaker (execution by default)."""
        breaker = breaker or self.breakers.execution
        try:
            breaker.before_call()
        except BaseException:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise
        epoch = self._epoch

        def verdict(exc: BaseException) -> BaseException:
            # A request sent on a connection that has since been replaced says nothing about the new one
            # (ib_async never answers it; it only times out): no verdict for the breaker.
            return exc if self._epoch == epoch else asyncio.CancelledError()

        try:
            result = await asyncio.wait_for(awaitable, timeout or self.request_timeout)
        except ccxt.BaseError as exc:
            breaker.after_call(verdict(exc))
            raise
        except Exception as exc:
            error = to_ccxt_error(exc, self.exchange_id, what)
            breaker.after_call(verdict(error))
            raise error from exc
        except BaseException as exc:
            breaker.after_call(exc)
            raise
        breaker.after_call(None)
        return result

    # ------------------------------------------------------------------ orders and account

    def place(self, contract: Contract, order: Order) -> Trade:
        """Hand one order (new, or a modification of one IB has: same orderId) to IB. Not awaited: IB's
        answer arrives on the trade's events (:meth:`wait_trade`); a placement is never retried here."""
        return self.ib.placeOrder(contract, order)

    def place_bracket(self, contract: Contract, parent: Order, children: list[Order]) -> tuple[Trade, list[Trade]]:
        """A parent and its children (take-profit / stop-loss), all transmitted with the last child; a parent
        with ``transmit`` False (staged) keeps the whole bracket in TWS, unannounced."""
        staged = not parent.transmit
        parent.orderId = self.ib.client.getReqId()
        parent.transmit = False
        for child in children:
            child.parentId = parent.orderId
            child.transmit = False
        children[-1].transmit = not staged
        trade = self.ib.placeOrder(contract, parent)
        return trade, [self.ib.placeOrder(contract, child) for child in children]

    def cancel(self, order: Order) -> None:
        """Ask IB to cancel ``order``; its confirmation arrives on the trade's events."""
        self.ib.cancelOrder(order)

    async def sync_orders(self, *, executions: bool = False) -> list[Trade]:
        """Ask IB for every order it knows: all clients' open orders (they update the library's trades)
        and the completed ones, returned (ib_async keeps them only in the reply); with ``executions``,
        today's executions too. Concurrent callers share the requests under way (:meth:`once`)."""
        ib = self.ib
        await self.once("reqAllOpenOrders", ib.reqAllOpenOrdersAsync)
        completed = await self.once("reqCompletedOrders", lambda: ib.reqCompletedOrdersAsync(False))
        if executions:
            await self._bounded(ib.reqExecutionsAsync(), "reqExecutions")
        return list(completed)

    async def request_positions(self) -> list[Any]:
        """This account's positions as IB lists them now (``reqPositions``, shared by concurrent callers)."""
        await self.once("reqPositions", self.ib.reqPositionsAsync)
        return self.held_positions()

    async def account_summary(self) -> list[Any]:
        """Account values asked for (``reqAccountSummary``), when the subscription has not delivered them."""
        return list(await self._bounded(self.ib.accountSummaryAsync(self.account), "accountSummary"))

    async def contract_details(self, contract: Contract) -> list[ContractDetails]:
        """All contracts matching ``contract``; [] when IB has no security definition (error 200)."""
        ib = await self.ensure()
        try:
            return list(await self._bounded(ib.reqContractDetailsAsync(contract), "reqContractDetails"))
        except ccxt.BadSymbol:
            return []

    async def snapshot(self, contract: Contract) -> Ticker:
        """One market-data snapshot (``reqMktData`` with snapshot=True, ended by tickSnapshotEnd)."""
        ib = await self.ensure(MARKET_DATA)
        tickers = await self._bounded(ib.reqTickersAsync(contract), "reqTickers", breaker=self.breakers.market_data)
        return tickers[0]

    async def depth(self, contract: Contract, rows: int, timeout: float) -> tuple[list[Any], list[Any], Any]:
        """Subscribe to depth, wait for both sides (bounded), copy the book, cancel: a snapshot.

        The copy matters: cancelling the subscription clears the ticker's DOM lists.
        """
        ib = await self.ensure(MARKET_DATA)
        ticker = ib.reqMktDepth(contract, numRows=rows)
        try:
            await self.wait_event(
                "pendingTickersEvent", lambda: bool(ticker.domBids) and bool(ticker.domAsks), timeout
            )
            return list(ticker.domBids), list(ticker.domAsks), ticker.time
        finally:
            ib.cancelMktDepth(contract)

    def global_cancel(self) -> None:
        """``reqGlobalCancel``: IB cancels every open order of the account, whichever client (or TWS
        itself) placed it. Only for an explicit "all clients" kill switch; there is no answer to wait for
        other than each order's own cancellation."""
        self.ib.reqGlobalCancel()

    async def pnl(self, account: str, timeout: float | None = None) -> Any:
        """The account's ``reqPnL`` figures (daily, unrealized, realized: today's, in the base currency).

        One subscription per account, kept for the connection's life (IB pushes an update each second
        while it lives); the first call waits (bounded) for the first value. ``None`` when IB sends none."""
        ib = await self.ensure()
        live = [p for p in ib.pnl(account) if p.account == account]
        subscription = live[0] if live else ib.reqPnL(account)

        def arrived() -> bool:
            value = subscription.dailyPnL
            return value is not None and value == value  # NaN until IB's first pnl message

        await self.wait_event("pnlEvent", arrived, timeout or self.request_timeout)
        return subscription if arrived() else None

    async def current_time(self) -> Any:
        """TWS's clock. ib_async keeps one ``reqCurrentTime`` in flight (a second one's reply is lost and
        its caller times out), so concurrent callers share the request under way."""
        ib = await self.ensure()
        return await self.once("reqCurrentTime", ib.reqCurrentTimeAsync)

    async def once(self, what: str, make: Callable[[], Any], timeout: float | None = None) -> Any:
        """``_bounded(make(), what)``, joined by concurrent callers of the same ``what`` (see __init__)."""
        return await self._singletons.get(what, lambda: self._bounded(make(), what, timeout))

    async def head_timestamp(self, contract: Contract, what: str, use_rth: bool) -> Any:
        """When IB's data for the series begins (``reqHeadTimeStamp``), or None when IB does not say."""
        ib = await self.ensure(MARKET_DATA)
        try:
            return await self._bounded(ib.reqHeadTimeStampAsync(contract, what, use_rth, 2), "reqHeadTimeStamp",
                                       breaker=self.breakers.market_data)
        except ccxt.ExchangeError:
            return None

    async def historical(
        self,
        contract: Contract,
        *,
        end: str,
        duration: str,
        bar_size: str,
        what: str,
        use_rth: bool,
    ) -> list[BarData]:
        """One ``reqHistoricalData`` (formatDate=2: epoch seconds), scheduled by the pacer.

        IB's "no data" answer is an empty list; a pacing violation raises ``RateLimitExceeded``.
        """
        ib = await self.ensure(MARKET_DATA)
        identical = (contract.conId, end, duration, bar_size, what, use_rth)
        # IB refuses an identical request within 15 s (error 162): concurrent identical requests join the
        # one in flight, and a repeat within the window gets the answer IB gave moments ago.
        bars = await self._recent_bars.get(
            identical, lambda: self._historical(ib, contract, end, duration, bar_size, what, use_rth, identical)
        )
        return list(bars)

    async def _historical(self, ib: IB, contract: Contract, end: str, duration: str, bar_size: str, what: str,
                          use_rth: bool, identical: tuple[Any, ...]) -> list[BarData]:
        weight = 2 if what == "BID_ASK" else 1
        keys = {"contract": (contract.conId, contract.exchange, what), "identical": identical}
        # The pacer keeps every rule with a margin, but IB counts on its clock when the request arrives: on a
        # busy machine a request can still land inside a window. A pacing violation books nothing, so the
        # request is sent again in its next slot while that is within ``requestTimeout`` of the first try.
        # On the pacer's clock and on the monotonic one, whichever runs out first (tests drive a simulated one).
        deadline, real_deadline = self.pacer.now() + self.request_timeout, time.monotonic() + self.request_timeout
        while True:
            slot = await self.pacer.acquire_slot(weight, **keys)
            breaker = self.breakers.market_data
            breaker.before_call()
            started = time.monotonic()
            try:
                bars = await ib.reqHistoricalDataAsync(
                    contract, end, duration, bar_size, what, use_rth, formatDate=2, timeout=self.request_timeout
                )
            except RequestError as exc:
                breaker.after_call(None)  # IB answered
                pacing = "pacing" in exc.message.lower()
                if exc.code in (162, 165) and not pacing:
                    return []  # "HMDS query returned no data"
                if exc.code == 162:
                    # Refused, so not counted: its slot under the 10-minute and identical-request rules is
                    # given back (the per-contract one stays taken, which spaces the retry out).
                    self.pacer.release(slot, weight, identical=identical)
                retry_at = self.pacer.now() + self.pacer.plan_delay(weight, **keys)
                if exc.code == 162 and retry_at < deadline and time.monotonic() < real_deadline:
                    self.pacing_retries += 1
                    log.info("%s: IB pacing violation on %s; sending it again in its next slot", self.exchange_id,
                             contract.localSymbol or contract.symbol)
                    continue
                raise to_ccxt_error(exc, self.exchange_id, "reqHistoricalData") from exc
            except BaseException as exc:
                error = to_ccxt_error(exc, self.exchange_id, "reqHistoricalData") if isinstance(exc, Exception) else exc
                breaker.after_call(error)
                if error is exc:
                    raise
                raise error from exc
            break
        if not bars and time.monotonic() - started >= self.request_timeout * 0.98:
            timeout = ccxt.RequestTimeout(
                f"{self.exchange_id} reqHistoricalData timed out after {self.request_timeout:g} s"
            )
            breaker.after_call(timeout)
            raise timeout
        breaker.after_call(None)
        return list(bars)
