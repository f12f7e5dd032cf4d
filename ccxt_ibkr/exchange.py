"""The ccxt surface of Interactive Brokers: ``describe()``, the unified methods, argument checks.

Read it like a ccxt exchange file: the declarative description first, then markets, market data,
orders and account, each method checking its arguments before anything reaches the broker. The
IB specifics live one layer down: ``parsing.py`` turns ib_async objects into ccxt structures and
``transport.py`` owns the socket. This class is the async implementation; the sync
``ccxt_ibkr.IBTrader`` runs it on a private loop (``normalization.runtime.facade``).

Choices a ccxt user should know (also in the README):

* ``timeInForce`` defaults to **GTC for limit and stop-limit orders** (the ccxt norm) and **DAY for
  market and stop orders** (IB's own default for them); ``options['defaultTimeInForce']`` changes
  the limit default. DAY is accepted as a param.
* Cancelling an order that already **filled raises InvalidOrder** ("already filled"), as ccxt
  exchanges do for a done order; cancelling one already cancelled returns it (idempotent).
* ``stopLoss`` / ``takeProfit`` dicts attach a native IB bracket to the entry order. A lone
  ``stopLossPrice`` or ``takeProfitPrice`` is a standalone closing order, as in ccxt's
  ``create_stop_loss_order`` / ``create_take_profit_order`` (a stop, resp. a limit at that price).
* ``reduceOnly`` is enforced here (IB has no such flag): an order that would open, increase or
  flip the position raises InvalidOrder.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from typing import Any

import ccxt
import ccxt.async_support
from ccxt.base.decimal_to_precision import TICK_SIZE

from normalization import client_ids
from normalization.arguments import (
    OHLCV_MAX_LIMIT,
    OrderRules,
    check_close_position,
    check_create_order,
    check_edit_order,
    check_edit_target,
    check_fetch,
    check_order_ref,
    check_repeat,
    check_symbol,
    check_symbols,
)
from normalization.balances import add_zero_rows
from normalization.errors import IB_BROAD, IB_EXACT, ib_exception
from normalization.orders import amount_on_grid, positive_number, price_on_grid, require_within
from normalization.runtime.home import SharedConnection, after_last_close, leave_connection, shared_connection
from normalization.runtime.journal import (
    SENT_UNKNOWN,
    USE_DEFAULT,
    JournalOrder,
    OrderJournal,
    open_journal,
    sync_option,
)
from normalization.runtime.reconcile import BrokerFill, BrokerOrder, BrokerSnapshot, reconcile
from normalization.runtime.safety import check_sandbox_switch, require_live_opt_in, resolve_live
from normalization.runtime.settle import Placements, ReconciliationPending, settle
from normalization.runtime.supervisor import (
    ACCOUNT,
    CONNECTED,
    EXECUTION,
    IDLE,
    MAINTENANCE,
    OUTAGE,
    ConnectionSupervisor,
    ReconnectEvent,
)
from normalization.statuses import ib_order_status
from normalization.symbols import ib_contract_to_symbol, symbol_to_ib_contract
from normalization.timeframes import IB_BAR_SIZES, ib_bar_size, ib_duration_for, ib_max_duration_seconds

from ._ib import IB_LIBRARY_NAME, Contract, Order, OrderStatus, Trade
from .parsing import IBParsing, effective_status, finite, parse_ib_bars, to_ms
from .transport import IBTransport
from .universe import default_markets

log = logging.getLogger("ccxt_ibkr")

PAPER_PORT = 7497
LIVE_PORT = 7496
LIVE_PORTS = frozenset({7496, 4001})
ACK_STATES = frozenset({"PreSubmitted", "Submitted", "Filled"})
DONE_STATES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})  # Inactive done in both libraries
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "DAY")
WHAT_TO_SHOW = {"bid": "BID", "ask": "ASK", "mid": "MIDPOINT", "midpoint": "MIDPOINT", "trades": "TRADES"}
MARKET_ATTRIBUTES = ("markets", "markets_by_id", "symbols", "ids", "currencies", "currencies_by_id", "codes")
JSON_SCALARS = (str, int, float, bool, type(None))
IB_ORDER_TYPES = {"market": "MKT", "limit": "LMT", "stop": "STP", "stop_limit": "STP LMT"}
MAX_OHLCV_REQUESTS = 60  # one full IB pacing window; longer downloads belong to the OHLCV cache
#: ``Order`` attributes create_order's own arguments set: a param may not override them.
RESERVED_ORDER_FIELDS = frozenset({
    "orderId", "clientId", "permId", "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif",
    "orderRef", "transmit", "parentId", "parentPermId", "ocaGroup", "ocaType", "account", "whatIf",
    "filledQuantity", "outsideRth", "triggerPrice",
})


def _order_fields() -> dict[str, tuple[type, ...]]:
    """IB ``Order`` attributes with a scalar value, by type: params of these names are set on the order."""
    sample = Order()
    fields: dict[str, tuple[type, ...]] = {}
    for name, value in vars(sample).items():
        if isinstance(value, bool):
            fields[name] = (bool,)
        elif isinstance(value, (int, float, str)):
            fields[name] = (type(value),)
    return fields


IB_ORDER_RULES = OrderRules(
    exchange_id="ibkr",
    extra_params={"goodTillDate": (str,), "outsideRth": (bool,)},
    broker_fields=_order_fields(),
    reserved=RESERVED_ORDER_FIELDS,
    broker_name="IB Order",
)
IB_PASSTHROUGH = frozenset(IB_ORDER_RULES.broker_fields) - RESERVED_ORDER_FIELDS


def _done(trade: Trade) -> bool:
    return effective_status(trade) in DONE_STATES


def _commissions_in(trade: Trade) -> bool:
    return all(f.commissionReport is not None and f.commissionReport.currency for f in trade.fills)


def _acknowledged(trade: Trade) -> bool:
    return effective_status(trade) in ACK_STATES or _done(trade)


class IBTrader(IBParsing, ccxt.async_support.Exchange):
    """Interactive Brokers as a ccxt async exchange (ccxt id ``ibkr``), over ib_async / ib_insync."""

    @classmethod
    def description(cls) -> dict[str, Any]:
        """The ``describe()`` overrides, shared with the sync face."""
        order_features = {
            "marginMode": False,
            "triggerPrice": True,
            "triggerPriceType": None,
            "triggerDirection": False,
            "stopLossPrice": True,
            "takeProfitPrice": True,
            "attachedStopLossTakeProfit": {"triggerPriceType": None, "price": True},
            "timeInForce": {"IOC": True, "FOK": True, "PO": False, "GTD": False},
            "hedged": False,
            "trailing": False,
            "leverage": False,
            "marketBuyRequiresPrice": False,
            "marketBuyByCost": False,
            "selfTradePrevention": False,
            "iceberg": False,
        }
        order_queries = {
            "marginMode": False, "limit": None, "trigger": False, "trailing": False, "symbolRequired": False
        }
        spot_features = {
            "sandbox": True,
            "createOrder": order_features,
            "createOrders": None,
            "fetchMyTrades": {
                "marginMode": False, "limit": None, "daysBack": 1, "untilDays": None, "symbolRequired": False
            },
            "fetchOrder": {"marginMode": False, "trigger": False, "trailing": False, "symbolRequired": False},
            "fetchOpenOrders": order_queries,
            "fetchOrders": {**order_queries, "daysBack": 1, "untilDays": None},
            "fetchClosedOrders": {**order_queries, "daysBack": 1, "daysBackCanceled": 1, "untilDays": None},
            "fetchOHLCV": {"limit": 1000},
        }
        return {
            "id": "ibkr",
            "name": "Interactive Brokers",
            "countries": ["US"],
            "version": IB_LIBRARY_NAME,
            "rateLimit": 50,  # IB allows 50 messages/s; the client libraries throttle at 45/s themselves
            "certified": False,
            "pro": False,
            "has": {
                "CORS": None,
                "spot": True,
                "margin": False,
                "swap": False,
                "future": True,
                "option": False,
                "publicAPI": False,
                "privateAPI": True,
                "cancelAllOrders": False,
                "cancelOrder": True,
                "closePosition": True,
                "closeAllPositions": False,
                "createLimitOrder": True,
                "createMarketOrder": True,
                "createOrder": True,
                "createOrders": False,
                "createOrderWithTakeProfitAndStopLoss": True,
                "createReduceOnlyOrder": True,
                "createStopLimitOrder": True,
                "createStopLossOrder": True,
                "createStopMarketOrder": True,
                "createStopOrder": True,
                "createTakeProfitOrder": True,
                "createTriggerOrder": True,
                "editOrder": True,
                "fetchBalance": True,
                "fetchClosedOrders": True,
                "fetchCurrencies": False,
                "fetchDeposits": False,
                "fetchFundingRate": False,
                "fetchL2OrderBook": True,
                "fetchLedger": False,
                "fetchLeverage": False,
                "fetchMarkets": True,
                "fetchMyTrades": True,
                "fetchOHLCV": True,
                "fetchOpenOrders": True,
                "fetchOrder": True,
                "fetchOrderBook": True,
                "fetchOrders": True,
                "fetchPosition": False,
                "fetchPositions": True,
                "fetchStatus": True,
                "fetchTicker": True,
                "fetchTickers": True,
                "fetchTime": True,
                "fetchTrades": False,
                "fetchTradingFee": False,
                "fetchTradingFees": False,
                "fetchTransactions": False,
                "fetchWithdrawals": False,
                "setLeverage": False,
                "setMarginMode": False,
                "transfer": False,
                "withdraw": False,
                "watchOHLCV": False,
                "watchOrderBook": False,
                "watchOrders": False,
                "watchTicker": False,
                "watchTrades": False,
            },
            "timeframes": dict(IB_BAR_SIZES),
            "precisionMode": TICK_SIZE,
            "requiredCredentials": {"apiKey": False, "secret": False, "uid": False, "login": False, "password": False},
            "urls": {
                "logo": None,
                "api": {"tws": f"tcp://127.0.0.1:{PAPER_PORT} (TWS paper; IB Gateway paper is 4002)"},
                "test": {"tws": f"tcp://127.0.0.1:{PAPER_PORT} (TWS paper; IB Gateway paper is 4002)"},
                "www": "https://www.interactivebrokers.com",
                "doc": ["https://interactivebrokers.github.io/tws-api/", "https://ib-api-reloaded.github.io/ib_async/"],
                "fees": "https://www.interactivebrokers.com/en/pricing/commissions-home.php",
            },
            # IB charges per share with a minimum (fixed: USD 0.005/share, min 1.00); ccxt can only hold a
            # rate, so this is a rough estimate for planners. Real commissions come in each fill's fee.
            "fees": {"trading": {"tierBased": True, "percentage": True, "taker": 0.0005, "maker": 0.0005}},
            "commonCurrencies": {},
            "features": {
                "spot": spot_features,
                "swap": {"linear": None, "inverse": None},
                "future": {"linear": {**spot_features, "sandbox": True}, "inverse": None},
            },
            "exceptions": {
                "exact": {str(code): cls for code, cls in IB_EXACT.items()},
                "broad": {needle: cls for needle, cls in IB_BROAD},
            },
            "options": {
                "host": "127.0.0.1",
                "port": None,  # None: 7497 (paper), or 7496 when live trading is enabled
                "clientId": 1,
                "account": None,
                "symbols": [],  # empty: the default universe (ccxt_ibkr/universe.py) + positions + open orders
                "defaultUniverse": True,
                "defaultExchange": None,
                "contracts": {},
                "clientOrderPrefix": client_ids.DEFAULT_PREFIX,
                # "normal": the journal survives the bot process dying, without an fsync before every send.
                # A power cut may lose its last seconds but not the orders: IB keeps our clientOrderId in
                # orderRef, and reconciliation on connect adopts this bot's orders back before anything new
                # is placed. "full" fsyncs every intent (for own clientOrderIds without the prefix).
                "journalSync": "normal",
                "defaultTimeInForce": "GTC",
                "ownOrdersOnly": False,
                "connectTimeout": 10.0,
                "requestTimeout": 30.0,
                "orderTimeout": 10.0,  # seconds to wait for IB to acknowledge (or reject) an order
                "marketOrderWait": 2.0,  # after the ack, wait this long for a market order to fill
                "commissionWait": 1.0,  # fetch_my_trades waits this long for fresh fills' commissions
                "orderBookTimeout": 5.0,
                "useRTH": False,
                "outsideRth": False,
                "readonly": False,
                # Connection supervision (normalization.runtime.supervisor): reconnect with backoff,
                # fail fast while down; None maintenanceWindows = IB's nightly restart (New York time).
                "autoReconnect": True,
                "reconnect": {"initialDelay": 0.5, "factor": 2.0, "maxDelay": 30.0, "jitter": 0.2},
                "maintenanceWindows": None,
                "reconcileGraceMs": 2000,
                # Circuit breakers (normalization.runtime.breaker), one for market data, one for orders.
                "breaker": {"failureThreshold": 5, "resetTimeout": 30.0},
                "ohlcvCache": None,  # True / a directory / an OhlcvCache: bars kept on disk (backtests)
            },
        }

    def describe(self) -> Any:
        return self.deep_extend(super().describe(), self.description())

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config or {})
        self.live = resolve_live(self.id, self.options.get("live"))
        self._transport: IBTransport | None = None
        self._shared: SharedConnection | None = None  # the process-wide connection record (normalization.runtime.home)
        self._attached = False  # this object's on-connect work (journal, events, order sync) has run
        self._check_live()
        sync_option(self.id, self.options)  # a bad option fails at construction, before anything is sent
        self._journal: OrderJournal | None = None
        self._contracts: dict[str, Contract] = {}
        self._extra_symbols: list[str] = []
        self._cancel_requested: set[int] = set()
        self._reduce_only: set[str] = set()
        self._live_refs: dict[str, str] = {}  # clientOrderId -> last ccxt status journaled
        self._placing = Placements()  # clientOrderIds between journal intent and IB's answer
        self._bracket_legs: dict[int, list[Trade]] = {}  # parent orderId -> its children, until acknowledged
        # journal, cid, trade, market, the intent if not journaled yet: see _journal_sent
        self._deferred: list[tuple[OrderJournal, str, Trade, dict[str, Any], dict[str, Any] | None]] = []
        self._spare_order: Order | None = None  # built off the send path: see _fresh_order
        self._completed: dict[int, Trade] = {}  # permId -> completed trade reported by reqCompletedOrders
        self._heads: dict[tuple[int, str, bool], int] = {}  # (conId, whatToShow, useRTH) -> first bar, ms

    # ------------------------------------------------------------------ connection, sandbox

    def set_sandbox_mode(self, enabled: bool) -> None:
        """True (the default) = paper port 7497; False = live, which also needs the two live switches."""
        check_sandbox_switch(self.id, enabled)
        if not enabled and not resolve_live(self.id, self.safe_value(self.options, "live")):
            raise ccxt.PermissionDenied(f"{self.id}: set_sandbox_mode(False) also needs options['live'] = True")
        self.isSandboxModeEnabled = bool(enabled)
        self.live = not enabled

    def _home_key(self) -> tuple[Any, ...]:
        """What IB knows a client by: one connection per (host, port, clientId) per process."""
        options = self.options
        port = options.get("port") or (LIVE_PORT if self.live else PAPER_PORT)
        return ("ibkr", options.get("host") or "127.0.0.1", int(port), int(options.get("clientId", 1)))

    def _home_loop(self, create: bool = True) -> asyncio.AbstractEventLoop | None:
        """The loop the shared connection lives on (every public coroutine runs there: ``hop_to_home``)."""
        shared = self._shared
        if shared is None:
            if not create:
                return None
            shared = self._shared = shared_connection(self._home_key(), self)
        return shared.loop

    def _check_live(self, accounts: list[str] | None = None) -> None:
        """The live gate (normalization.runtime.safety) with IB's facts: a live port -- the one in the
        options now, or the transport's -- and a live account (``U...``; paper accounts are ``D...``)
        among those TWS manages. Run at construction, on every connect and before every order."""
        facts = []
        ports = {self.options.get("port"), self._transport.port if self._transport is not None else None}
        for port in sorted(int(p) for p in ports if p is not None):
            if port in LIVE_PORTS:
                facts.append(f"port {port} is a live-trading port")
        if accounts is None and self._transport is not None and self._transport.connected:
            accounts = list(self._transport.ib.managedAccounts())
        live_accounts = [a for a in accounts or [] if a and not a.upper().startswith("D")]
        if live_accounts:
            facts.append(f"TWS manages the live account(s) {', '.join(live_accounts)} (paper accounts are DU...)")
        require_live_opt_in(self.id, self.options.get("live"), facts)

    @property
    def transport(self) -> IBTransport:
        if self._transport is None:
            self._check_live()
            self._home_loop()
            self._transport = self._shared.get(self._new_transport)  # type: ignore[union-attr]
            self._transport.on_connected(self._after_connect)
            self._transport.supervisor.on_reconnected(self._heal)
        return self._transport

    def _new_transport(self) -> IBTransport:
        """The connection the first user opens; later users of the same clientId share it."""
        options = self.options
        port = options.get("port") or (LIVE_PORT if self.live else PAPER_PORT)
        return IBTransport(
                host=options.get("host") or "127.0.0.1",
                port=int(port),
                client_id=int(options.get("clientId", 1)),
                account=options.get("account") or None,
                connect_timeout=float(options.get("connectTimeout", 10.0)),
                request_timeout=float(options.get("requestTimeout", 30.0)),
                readonly=bool(options.get("readonly", False)),
                pacer=options.get("pacer"),
                exchange_id=self.id,
                reconnect=options.get("reconnect"),
                auto_reconnect=bool(options.get("autoReconnect", True)),
                maintenance_windows=options.get("maintenanceWindows"),
                breaker=options.get("breaker"),
            )

    def ib_client_id(self) -> int | None:
        return self._transport.client_id if self._transport is not None else None

    async def connect(self) -> None:
        """Connect now instead of on first use (inside the exchange's event loop)."""
        self._check_live()
        await self.transport.connect()
        if not self._attached:
            await self._after_connect()

    async def _ib(self, kind: str = EXECUTION) -> Any:
        """The connected IB, after the live gate and the supervisor's fail-fast gate for ``kind`` traffic."""
        self._check_live()
        ib = await self.transport.ensure(kind)
        if not self._attached:
            # Another exchange object opened the shared connection: this one's on-connect work is still due.
            await self._after_connect()
        return ib

    @property
    def supervisor(self) -> ConnectionSupervisor:
        """The connection state machine (fail fast while down, reconnect, heal): see normalization.runtime."""
        return self.transport.supervisor

    async def _after_connect(self) -> None:
        transport = self.transport
        ib = transport.ib
        try:
            self._check_live(list(ib.managedAccounts()))  # a paper port may still lead to a live account
        except ccxt.PermissionDenied:
            transport.disconnect()
            raise
        self._attached = True
        if self._journal is None:
            self._journal = open_journal(
                self.options.get("journal", USE_DEFAULT), exchange=self.id, account=transport.account or None,
                sync=sync_option(self.id, self.options),
            )
        if not getattr(self, "_events_wired", False):
            ib.orderStatusEvent += self._on_order_status
            ib.execDetailsEvent += self._on_exec
            ib.commissionReportEvent += self._on_commission
            self._events_wired = True
        await self._sync_orders(executions=False)

    async def _sync_orders(self, *, executions: bool) -> None:
        """Ask IB for every order it knows (all clients' open ones, completed ones, optionally today's
        executions), then reconcile the journal. ib_async keeps completed orders only in the reply,
        so they are kept here (``_completed``, by permId) for fetch_order / fetch_orders."""
        transport = self.transport
        ib = transport.ib
        if not transport.readonly:
            try:
                # The startup sync lists only this clientId's open orders; orders a bot placed under another
                # clientId before a restart must not look "absent at the broker" to reconciliation.
                await transport.once("reqAllOpenOrders", ib.reqAllOpenOrdersAsync)
                completed = await transport.once("reqCompletedOrders", lambda: ib.reqCompletedOrdersAsync(False))
                if executions:
                    await transport._bounded(ib.reqExecutionsAsync(), "reqExecutions")
            except ccxt.BaseError as exc:
                log.warning("%s: order sync failed, journal not reconciled: %s", self.id, exc)
                return
            for trade in completed:
                perm = trade.order.permId or trade.orderStatus.permId
                if perm:
                    self._completed[perm] = trade
        self._reconcile_journal()

    async def _heal(self, event: ReconnectEvent) -> None:
        """IB said connectivity is back (1101/1102) with our socket up all along: orders may have filled
        meanwhile, so re-read orders and executions and reconcile. (After a reconnect the on-connect
        listener already did this as part of connecting.)"""
        if event.reason == "restored" and self.transport.connected:
            await self._sync_orders(executions=True)

    @property
    def journal(self) -> OrderJournal:
        if self._journal is None:
            self._journal = open_journal(self.options.get("journal", USE_DEFAULT), exchange=self.id,
                                         sync=sync_option(self.id, self.options))
        return self._journal

    async def close(self) -> None:
        """Close this exchange object; the shared connection closes with its last user."""
        self._flush_deferred()
        transport, shared = self._transport, self._shared
        self._transport, self._shared, self._attached = None, None, False
        if transport is not None:
            transport.forget(self._after_connect, self._heal)
            if getattr(self, "_events_wired", False):
                ib = transport.ib
                ib.orderStatusEvent -= self._on_order_status
                ib.execDetailsEvent -= self._on_exec
                ib.commissionReportEvent -= self._on_commission
                self._events_wired = False
        if shared is not None and leave_connection(shared, self):
            if transport is not None:
                await transport.close()
            after_last_close(shared)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self.session is None and self.tcp_connector is None:
            self.timeout_on_exit = 0  # ccxt's 250 ms grace is for aiohttp sockets, which we never open
        await super().close()

    # ------------------------------------------------------------------ journal wiring

    def _on_order_status(self, trade: Trade) -> None:
        """Keep the journal's state of this process's orders current as IB reports changes.

        Only orders this process placed are tracked (``_live_refs``), and only a change of ccxt status
        is written, so the hot path costs a dict lookup.
        """
        ref = trade.order.orderRef
        last = self._live_refs.get(ref) if ref else None
        if last is None or self._journal is None:
            return
        status = trade.orderStatus.status
        if status == OrderStatus.PendingSubmit:
            return
        try:
            market = self._market_by_con_id(trade.contract.conId)
            if market is None:
                return
            ccxt_status = self.parse_ib_order(trade, market)["status"]
            if ccxt_status == last:
                return
            self._live_refs[ref] = ccxt_status
            rejected = ccxt_status == "rejected"
            self._journal.update_status(
                ref, ccxt_status, self._trade_payload(trade) if rejected else None,
                reason=self._reject_reason(trade) if rejected else None,
                filled=trade.orderStatus.filled, remaining=trade.orderStatus.remaining,
            )
            if ccxt_status != "open":
                self._live_refs.pop(ref, None)
        except Exception:  # noqa: BLE001 - bookkeeping must never break the event loop
            pass

    def _on_exec(self, trade: Trade, fill: Any) -> None:
        if self._journal is None:
            return
        execution = fill.execution
        try:
            market = self._market_by_con_id(fill.contract.conId)
            ref = execution.orderRef or None
            self._journal.record_fill(
                execution.execId,
                amount=execution.shares,
                price=execution.price,
                client_order_id=ref,
                order_id=execution.orderId,
                symbol=market["symbol"] if market is not None else None,
                side="buy" if execution.side == "BOT" else "sell",
                timestamp=to_ms(execution.time),
                info=self._execution_payload(fill),
            )
        except Exception:  # noqa: BLE001
            pass

    @staticmethod
    def _execution_payload(fill: Any) -> dict[str, Any]:
        """IB's execution, JSON-ready, kept as the journaled fill's raw payload."""
        execution, contract = fill.execution, fill.contract
        return {
            "execId": execution.execId, "orderId": execution.orderId, "permId": execution.permId,
            "clientId": execution.clientId, "orderRef": execution.orderRef, "time": str(execution.time),
            "acctNumber": execution.acctNumber, "exchange": execution.exchange, "side": execution.side,
            "shares": execution.shares, "price": execution.price, "cumQty": execution.cumQty,
            "avgPrice": execution.avgPrice, "conId": contract.conId, "secType": contract.secType,
            "symbol": contract.symbol, "currency": contract.currency,
        }

    def _on_commission(self, trade: Trade, fill: Any, report: Any) -> None:
        if self._journal is None:
            return
        try:
            self._journal.record_fee(report.execId, report.commission, report.currency)
        except Exception:  # noqa: BLE001
            pass

    def _reconcile_journal(self) -> None:
        """After each (re)connect, bring the journal in line with what IB reports (never sending).

        Runs once ib_async's startup sync (open orders, completed orders, executions) is in, which is
        when ``connectAsync`` returns. Orders are matched by orderRef (= clientOrderId), then permId;
        IB order ids repeat across sessions and are not used for matching.
        """
        journal = self._journal
        if journal is None:
            return
        ib = self.transport.ib
        client_id = self.transport.client_id
        fills_by_perm: dict[int, float] = {}
        for fill in ib.fills():
            fills_by_perm[fill.execution.permId] = fills_by_perm.get(fill.execution.permId, 0.0) + fill.execution.shares
        orders = []
        in_flight = set(self._placing)
        for trade in self._all_trades():
            order, status = trade.order, trade.orderStatus
            if not (order.permId or status.permId) and not _acknowledged(trade) and not _done(trade):
                # Sent by this process, not acknowledged yet: a local echo, not IB's word. Its row stays
                # unresolved until IB answers (never called open, never called absent).
                if order.orderRef:
                    in_flight.add(order.orderRef)
                continue
            perm = order.permId or status.permId
            # Completed orders arrive without fill quantities; executions and "Filled" tell them.
            filled = max(finite(status.filled) or 0.0, fills_by_perm.get(perm, 0.0))
            if effective_status(trade) == "Filled":
                filled = max(filled, finite(order.totalQuantity) or 0.0)
            amount = finite(order.totalQuantity)
            codes = [e.errorCode for e in trade.log if getattr(e, "errorCode", 0)]
            market = self._market_by_con_id(trade.contract.conId)
            orders.append(BrokerOrder(
                status=ib_order_status(effective_status(trade), filled=filled, remaining=status.remaining,
                                       error_codes=codes, why_held=status.whyHeld or "", tif=order.tif or ""),
                client_order_id=order.orderRef or None,
                order_id=order.orderId if order.orderId > 0 and order.clientId == client_id else None,
                perm_id=perm or None,
                symbol=market["symbol"] if market else None,
                side=order.action.lower() if order.action else None,
                amount=amount,
                filled=filled,
                remaining=max((amount or 0.0) - filled, 0.0) if amount is not None else None,
            ))
        fills = [
            BrokerFill(
                exec_id=f.execution.execId, amount=f.execution.shares, price=f.execution.price,
                client_order_id=f.execution.orderRef or None, perm_id=f.execution.permId or None,
                side="buy" if f.execution.side == "BOT" else "sell", timestamp=to_ms(f.execution.time),
                fee_cost=f.commissionReport.commission if f.commissionReport.currency else None,
                fee_currency=f.commissionReport.currency or None,
            )
            for f in ib.fills()
        ]
        prefix = str(self.options.get("clientOrderPrefix", client_ids.DEFAULT_PREFIX))
        try:
            report = reconcile(
                journal,
                BrokerSnapshot(orders=orders, fills=fills, complete=ib.isConnected()),
                in_flight=in_flight,
                grace_ms=int(self.options.get("reconcileGraceMs", 2000)),
                adopt_unknown=lambda o: client_ids.is_own(o.client_order_id, prefix),
                match_on=("perm_id",),
            )
        except ccxt.BaseError as exc:  # an incomplete snapshot: try again on the next connect
            log.warning("%s: journal not reconciled: %s", self.id, exc)
            return
        for discrepancy in report.discrepancies:
            # Orders of other clients / TWS users are normal at IB: only our own disagreements warn.
            level = logging.DEBUG if discrepancy.kind == "unknown_at_journal" else logging.WARNING
            log.log(level, "%s journal: %s %s: %s", self.id, discrepancy.kind, discrepancy.client_order_id,
                    discrepancy.detail)

    # ------------------------------------------------------------------ markets

    async def fetch_markets(self, params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """The configured universe (``options['symbols']``) resolved through reqContractDetails; without
        one, the default universe plus the account's positions and open orders (``universe.py``)."""
        configured = list(self.options.get("symbols") or [])
        symbols = list(dict.fromkeys(configured + self._extra_symbols))
        markets = list(await asyncio.gather(*(self._resolve_symbol(symbol) for symbol in symbols)))
        if not configured and self.options.get("defaultUniverse", True):
            markets += await default_markets(self, {m["symbol"] for m in markets})
        return markets

    async def _resolve_symbol(self, symbol: str) -> dict[str, Any]:
        spec = symbol_to_ib_contract(
            symbol,
            default_exchange=self.options.get("defaultExchange"),
            overrides=self.options.get("contracts") or {},
        )
        contract = Contract(
            secType=spec.sec_type,
            symbol=spec.symbol,
            currency=spec.currency,
            exchange=spec.exchange,
            primaryExchange=spec.primary_exchange,
            lastTradeDateOrContractMonth=spec.last_trade_date,
            strike=spec.strike,
            right=spec.right,
            multiplier=spec.multiplier,
        )
        found = await self.transport.contract_details(contract)
        if not found:
            raise ccxt.BadSymbol(f"{self.id} {symbol}: IB has no contract {spec.sec_type} {spec.symbol} "
                                 f"{spec.currency} on {spec.exchange}")
        if len(found) > 1:
            candidates = ", ".join(
                f"{d.contract.exchange}/{d.contract.currency}/{d.contract.primaryExchange or '-'} (conId "
                f"{d.contract.conId})" for d in found
            )
            raise ccxt.BadSymbol(
                f"{self.id} {symbol} is ambiguous at IB: {candidates}; set options['defaultExchange'] or "
                f"options['contracts'][{symbol!r}] = {{'exchange': ..., 'primaryExchange': ...}}"
            )
        details = found[0]
        market = self.parse_ib_market(details, symbol)
        self._contracts[market["id"]] = details.contract
        return market

    async def _market(self, symbol: str) -> dict[str, Any]:
        """The market for a unified symbol, resolving one not in the configured universe on demand."""
        check_symbol(symbol, self.id, "market")
        await self.load_markets()
        if symbol in self.markets:
            return self.markets[symbol]
        if isinstance(symbol, str) and self.markets_by_id and symbol in self.markets_by_id:
            return self.markets_by_id[symbol][0]
        market = await self._resolve_symbol(symbol)
        self._extra_symbols.append(symbol)
        self._add_markets([market])
        return self.markets[symbol]

    def _market_by_con_id(self, con_id: int) -> dict[str, Any] | None:
        found = (self.markets_by_id or {}).get(str(con_id))
        return found[0] if found else None

    async def _market_for_contract(self, contract: Contract) -> dict[str, Any]:
        """The market of a contract IB reports (a position, a fill), resolving it by conId if new."""
        market = self._market_by_con_id(contract.conId)
        if market is not None:
            return market
        symbol = ib_contract_to_symbol(
            contract.secType, contract.symbol, contract.currency,
            last_trade_date=contract.lastTradeDateOrContractMonth, strike=contract.strike, right=contract.right,
        )
        if symbol in (self.markets or {}):
            return self.markets[symbol]
        details = await self.transport.contract_details(Contract(conId=contract.conId))
        if not details:
            raise ccxt.BadSymbol(f"{self.id}: IB has no contract details for conId {contract.conId}")
        market = self.parse_ib_market(details[0], symbol)
        self._contracts[market["id"]] = details[0].contract
        self._extra_symbols.append(symbol)
        self._add_markets([market])
        return market

    def _add_markets(self, new: list[dict[str, Any]]) -> None:
        """Add markets keeping the market tables' identity, so the sync face (which shares them) sees them."""
        old = {name: getattr(self, name, None) for name in MARKET_ATTRIBUTES}
        self.set_markets(list((self.markets or {}).values()) + new)
        for name, previous in old.items():
            current = getattr(self, name)
            if isinstance(previous, dict) and isinstance(current, dict):
                previous.clear()
                previous.update(current)
                setattr(self, name, previous)
            elif isinstance(previous, list) and isinstance(current, list):
                previous[:] = current
                setattr(self, name, previous)

    def _contract(self, market: dict[str, Any]) -> Contract:
        contract = self._contracts.get(market["id"])
        if contract is None:
            info = market["info"]
            contract = Contract(conId=int(market["id"]), exchange=info.get("exchange") or "SMART")
        return contract

    # ------------------------------------------------------------------ market data

    async def fetch_time(self, params: dict[str, Any] = {}) -> int:
        """TWS's clock (reqCurrentTime), in ms."""
        when = await self.transport.current_time()
        return to_ms(when) or self.milliseconds()

    async def fetch_status(self, params: dict[str, Any] = {}) -> dict[str, Any]:
        """``ok`` when connected; ``maintenance`` during an IB outage (1100) or a maintenance window;
        ``error`` while our connection is down (reconnecting) or TWS cannot be reached."""
        supervisor = self.transport.supervisor
        info: Any = supervisor.reason
        if supervisor.state == IDLE:
            try:
                await self.transport.ensure()
            except ccxt.BaseError as exc:
                info = str(exc)
        state = supervisor.state
        if state == CONNECTED and self.transport.connected:
            status = "ok"
        elif state in (OUTAGE, MAINTENANCE):
            status = "maintenance"
        else:
            status = "error"
        if status == "ok":
            info = None
        return {"status": status, "updated": self.milliseconds(), "eta": None, "url": None, "info": info}

    async def fetch_ticker(self, symbol: str, params: dict[str, Any] = {}) -> dict[str, Any]:
        market = await self._market(symbol)
        ticker = await self.transport.snapshot(self._contract(market))
        return self.parse_ib_ticker(ticker, market)

    async def fetch_tickers(self, symbols: list[str] | None = None, params: dict[str, Any] = {}) -> dict[str, Any]:
        symbols = check_symbols(symbols, self.id, "fetch_tickers")
        await self.load_markets()
        symbols = list(symbols) if symbols else list(self.symbols or [])
        tickers = await asyncio.gather(*(self.fetch_ticker(symbol) for symbol in symbols))
        return {ticker["symbol"]: ticker for ticker in tickers}

    async def fetch_order_book(
        self, symbol: str, limit: int | None = None, params: dict[str, Any] = {}
    ) -> dict[str, Any]:
        """A depth snapshot: subscribe (reqMktDepth, at most 5 rows unless params['rows']), wait, cancel."""
        market = await self._market(symbol)
        rows = int(self.safe_integer(params, "rows", min(limit or 5, 10)))
        bids, asks, when = await self.transport.depth(
            self._contract(market), rows, float(self.options.get("orderBookTimeout", 5.0))
        )
        return self.parse_ib_order_book(bids, asks, when, market, limit)

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] = {},
    ) -> list[list[Any]]:
        """Bars from reqHistoricalData, paginated into the fewest requests IB's duration table allows.

        ``since`` given: windows of IB's maximum duration from ``since`` forward, each request ending at
        its window's end. ``since`` omitted: the latest ``limit`` bars, walking back from now. FX uses
        MIDPOINT, everything else TRADES; ``params['price']`` = bid / ask / mid picks BID / ASK /
        MIDPOINT. Requests are paced (shared pacer) so IB never answers 162. ``params['until']`` is
        inclusive, as in ccxt. The on-disk cache (``options['ohlcvCache']``) and resampled timeframes
        are layered on top by ``normalization.runtime.ohlcv_service`` (see ``async_support.py``).
        """
        symbol, since, limit, params = check_fetch(self.id, "fetch_ohlcv", symbol, since, limit, params,
                                                   symbol_required=True, timeframe=timeframe,
                                                   timeframes=self.timeframes)
        limit = min(limit, OHLCV_MAX_LIMIT) if limit is not None else None
        market = await self._market(symbol)
        bar_size = ib_bar_size(timeframe)
        step_ms = self.parse_timeframe(timeframe) * 1000
        contract = self._contract(market)
        what = self._what_to_show(market, params)
        use_rth = bool(self.safe_value(params, "useRTH", self.options.get("useRTH", False)))
        until = self.safe_integer(params, "until")
        max_ms = ib_max_duration_seconds(bar_size) * 1000
        bars: dict[int, list[Any]] = {}

        async def request(end_ms: int | None, span_ms: int) -> list[list[Any]]:
            end = "" if end_ms is None else self._ib_time(end_ms)
            duration = ib_duration_for(max(1, math.ceil(span_ms / 1000)), bar_size)
            rows = await self.transport.historical(
                contract, end=end, duration=duration, bar_size=bar_size, what=what, use_rth=use_rth
            )
            parsed = parse_ib_bars(rows)
            for row in parsed:
                bars[row[0]] = row
            return parsed

        if since is None:
            # Walk back from now (or ``until``); closed markets (nights, weekends) mean a span of N bar
            # lengths holds fewer than N bars, so ask for twice that and keep walking while short.
            wanted = limit or 100
            end_ms: int | None = until
            span = min(2 * wanted * step_ms, max_ms)
            empty = 0
            for _ in range(MAX_OHLCV_REQUESTS):
                before = len(bars)
                got = await request(end_ms, span)
                if len(bars) >= wanted:
                    break
                if len(bars) == before:
                    empty += 1
                    if empty >= 3:
                        break  # nothing further back: the contract's history ends here
                    if end_ms is None:
                        end_ms = min(bars) if bars else await self.fetch_time()
                    end_ms -= span
                    span = min(span * 2, max_ms)
                    continue
                empty = 0
                end_ms = min(row[0] for row in got)
                span = min(max(span, 2 * (wanted - len(bars)) * step_ms), max_ms)  # never shrink: gaps
            result = sorted(bars.values(), key=lambda row: row[0])
            if until is not None:
                result = [row for row in result if row[0] <= until]  # ccxt's until is inclusive
            return result[-wanted:]

        # Forward from ``since`` to ``until`` (or now): windows of at most IB's maximum duration; with a
        # limit, start with a window twice the limit's span and widen it while closed markets leave
        # the window short of bars.
        now_ms = await self.fetch_time()
        if since < now_ms - max_ms:
            # Before IB's first bar every window would come back empty: start at that bar instead.
            since = max(since, await self._head_ms(contract, what, use_rth))
        stop = now_ms if until is None else min(until + 1, now_ms)  # ccxt's until is inclusive
        open_ended = until is None or until >= now_ms

        async def forward(start: int, end: int, wanted: int | None) -> list[list[Any]]:
            span = max_ms if wanted is None else min(max_ms, max(2 * wanted * step_ms, step_ms))
            window_start = start
            for _ in range(MAX_OHLCV_REQUESTS):
                if window_start >= end:
                    break
                window_end = min(window_start + span, end)
                last = window_end >= stop and open_ended
                await request(None if last else window_end, window_end - window_start)
                window_start = window_end
                if wanted is not None:
                    if sum(1 for t in bars if t >= start) >= wanted:
                        break
                    span = min(span * 2, max_ms)
            return [row for row in sorted(bars.values(), key=lambda row: row[0]) if start <= row[0] < end]

        result = await forward(since, stop if until is not None else stop + step_ms, limit)
        return result[:limit] if limit else result

    async def _head_ms(self, contract: Contract, what: str, use_rth: bool) -> int:
        """IB's first bar of a series (reqHeadTimeStamp, asked once per series and connection), in ms; 0 if
        IB does not say."""
        key = (contract.conId, what, use_rth)
        if key not in self._heads:
            when = await self.transport.head_timestamp(contract, what, use_rth)
            self._heads[key] = (to_ms(when) or 0) if when is not None else 0
        return self._heads[key]

    def _what_to_show(self, market: dict[str, Any], params: dict[str, Any]) -> str:
        price = self.safe_string_lower(params, "price")
        if price is not None:
            if price not in WHAT_TO_SHOW:
                raise ccxt.BadRequest(f"{self.id} fetch_ohlcv params['price'] must be bid, ask or mid, not {price!r}")
            return WHAT_TO_SHOW[price]
        return "MIDPOINT" if market["info"].get("secType") == "CASH" else "TRADES"

    @staticmethod
    def _ib_time(ms: int) -> str:
        return time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(ms / 1000))

    # ------------------------------------------------------------------ orders: argument checks

    def _check_amount(self, market: dict[str, Any], amount: Any, what: str = "amount") -> float:
        """Truncated to the size increment (IB's rule, ccxt's amount_to_precision), then held to the minimum
        size; ``options['strictPrecision']`` refuses an amount off the increment instead."""
        number = positive_number(amount, what, self.id)
        quantity = amount_on_grid(number, market["precision"]["amount"], market["symbol"], self.id,
                                  bool(self.options.get("strictPrecision")), what)
        require_within(quantity, market["limits"]["amount"]["min"], None, what, market["symbol"], self.id)
        return quantity

    def _check_price(self, market: dict[str, Any], price: Any, what: str = "price") -> float:
        """Rounded to the tick as ccxt's price_to_precision does (TWS would reject an off-tick price with
        error 110); ``options['strictPrecision']`` refuses an off-tick price instead."""
        number = positive_number(price, what, self.id)
        return price_on_grid(number, market["precision"]["price"], market["symbol"], self.id,
                             bool(self.options.get("strictPrecision")), what)

    def _time_in_force(self, params: dict[str, Any], ib_type: str) -> str:
        tif = params.get("timeInForce") if params else None
        if params and (tif == "PO" or params.get("postOnly")):
            raise ccxt.InvalidOrder(f"{self.id} post-only orders are not supported at IB")
        if tif is None:
            return str(self.options.get("defaultTimeInForce", "GTC")).upper() if "LMT" in ib_type else "DAY"
        if tif not in TIME_IN_FORCE:
            raise ccxt.InvalidOrder(f"{self.id} timeInForce {tif!r} is not supported; use GTC, IOC, FOK or DAY")
        return tif

    def _build_order(
        self, market: dict[str, Any], type: Any, side: Any, amount: Any, price: Any, params: dict[str, Any]
    ) -> tuple[Order, list[Order], dict[str, Any]]:
        """Validate everything and build the IB order(s); nothing is sent here.

        This runs before every send, on the latency a bot measures, so a plain order (no params, the
        common case) skips every optional look-up instead of asking an empty dict for each.
        """
        quantity = self._check_amount(market, amount)
        trigger = stop_loss = take_profit = None
        if params:  # checked and given one meaning by check_create_order
            trigger = params.get("triggerPrice")
            stop_loss, take_profit = params.get("stopLoss"), params.get("takeProfit")
        ib_type = IB_ORDER_TYPES[type]
        lmt_price = self._check_price(market, price) if price is not None else None
        aux = self._check_price(market, trigger, "triggerPrice") if trigger is not None else None
        tif = self._time_in_force(params, ib_type)
        prefix = str(self.options.get("clientOrderPrefix", client_ids.DEFAULT_PREFIX))
        own = client_ids.supplied(params) if params else None
        cid = own or client_ids.generate(prefix)
        action = "BUY" if side == "buy" else "SELL"
        parent = self._fresh_order()
        parent.action, parent.totalQuantity, parent.orderType, parent.tif = action, quantity, ib_type, tif
        parent.orderRef = cid
        if lmt_price is not None:
            parent.lmtPrice = lmt_price
        if aux is not None:
            parent.auxPrice = aux
        account = self.transport.account
        if account:
            parent.account = account
        outside_rth = params.get("outsideRth") if params else None
        if outside_rth or (outside_rth is None and self.options.get("outsideRth")):
            parent.outsideRth = True
        if params:
            for name in IB_PASSTHROUGH & params.keys():  # IB's own Order fields (README)
                if params[name] is not None:
                    setattr(parent, name, params[name])
        children: list[Order] = []
        if take_profit is not None or stop_loss is not None:
            children = self._bracket(market, cid, action, quantity, parent.account, take_profit, stop_loss)
        meta = {
            "clientOrderId": cid,
            "generatedId": own is None,
            "reduceOnly": bool(params.get("reduceOnly")) if params else False,
            "price": lmt_price,
            "triggerPrice": aux,
            "amount": quantity,
        }
        return parent, children, meta

    def _fresh_order(self) -> Order:
        """An ``Order()`` for the next send. ib_async's Order fills in ~150 defaults (10-15 us on the send
        path), so one is built ahead, after the previous order's answer (see _flush_deferred)."""
        spare, self._spare_order = self._spare_order, None
        return spare if spare is not None else Order()

    def _bracket(self, market: dict[str, Any], cid: str, action: str, quantity: float, account: str,
                 take_profit: dict[str, Any] | None, stop_loss: dict[str, Any] | None) -> list[Order]:
        """The take-profit and stop-loss children of a native bracket: one OCA group, GTC."""
        children: list[Order] = []
        closing = "SELL" if action == "BUY" else "BUY"
        oca = f"{cid}-oca"
        if take_profit is not None:
            tp = self._check_price(market, self.safe_value_2(take_profit, "price", "triggerPrice"), "takeProfit price")
            size = self._check_amount(market, take_profit.get("amount", quantity), "takeProfit amount")
            children.append(Order(action=closing, totalQuantity=size, orderType="LMT", lmtPrice=tp, tif="GTC",
                                  orderRef=f"{cid}-tp", ocaGroup=oca, ocaType=1, account=account))
        if stop_loss is not None:
            sl_trigger = self._check_price(market, self.safe_value(stop_loss, "triggerPrice"), "stopLoss triggerPrice")
            size = self._check_amount(market, stop_loss.get("amount", quantity), "stopLoss amount")
            child = Order(action=closing, totalQuantity=size, orderType="STP", auxPrice=sl_trigger, tif="GTC",
                          orderRef=f"{cid}-sl", ocaGroup=oca, ocaType=1, account=account)
            if stop_loss.get("price") is not None:
                child.orderType = "STP LMT"
                child.lmtPrice = self._check_price(market, stop_loss["price"], "stopLoss price")
            children.append(child)
        return children

    async def _check_reduce_only(self, market: dict[str, Any], side: str, quantity: float) -> None:
        """IB has no reduceOnly flag: refuse an order that would open, increase or flip the position."""
        ib = await self._ib()
        await self.transport.once("reqPositions", ib.reqPositionsAsync)
        con_id = int(market["id"])
        held = sum(p.position for p in ib.positions(self.transport.account) if p.contract.conId == con_id)
        reduces = (held > 0 and side == "sell") or (held < 0 and side == "buy")
        if not reduces:
            raise ccxt.InvalidOrder(
                f"{self.id} reduceOnly {side} {quantity} {market['symbol']} would open or increase a position "
                f"(position {held:g})"
            )
        if quantity > abs(held) + 1e-12:
            raise ccxt.InvalidOrder(
                f"{self.id} reduceOnly {side} {quantity} {market['symbol']} exceeds the position {held:g} "
                "and would flip it"
            )

    # ------------------------------------------------------------------ orders

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] = {},
    ) -> dict[str, Any]:
        """Place an order and return once IB acknowledged or rejected it (bounded by ``orderTimeout``).

        The intent is journaled in the same transaction as the send, so the same clientOrderId never
        reaches IB twice (a repeat returns the first order, also after a restart), and a timeout after
        the send returns the order as ``open`` instead of sending it again.
        """
        symbol, type, side, amount, price, params = check_create_order(symbol, type, side, amount, price, params,
                                                                       IB_ORDER_RULES)
        market = await self._market(symbol)
        self._check_live()
        parent, children, meta = self._build_order(market, type, side, amount, price, params)
        cid = meta["clientOrderId"]
        # While connected, journal.sending below answers "seen before?"; while disconnected, ask here so a
        # repeated clientOrderId still returns the first order instead of failing on the gate.
        journaled = self._journal is not None and not self.transport.connected
        known = self._journal.get(cid) if journaled else None  # type: ignore[union-attr]
        if known is not None:
            # The same clientOrderId again: the first order, never a second one (even while disconnected:
            # an unsettled one waits, bounded, for the reconnect's reconciliation).
            check_repeat(known, self._intent(market, type, side, meta), cid, self.id)
            if not known.unresolved and not known.never_received:
                return await self._journaled_order(known, market)
            return await self._placed_before(known, market, parent, children, meta, self.journal)
        if meta["reduceOnly"]:
            await self._check_reduce_only(market, side, meta["amount"])
        ib = await self._ib()
        if not parent.account and self.transport.account:
            parent.account = self.transport.account
            for child in children:
                child.account = self.transport.account
        journal = self.journal
        params_kept = {k: v for k, v in params.items() if isinstance(v, JSON_SCALARS)} if params else None
        intent = self._intent(market, type, side, meta)
        intent["params"] = params_kept
        if meta["generatedId"] and journal.defers_new_intents:
            # An id generated just now: nobody can repeat it before this call returns, and IB keeps it as
            # orderRef. The order is journaled once, with IB's answer, after the call returns (see
            # OrderJournal.defers_new_intents for why a crash in between loses nothing).
            intent["sent"] = journal.now_ms()
            try:
                trade = self._send(ib, market, parent, children)
            except BaseException:
                journal.record_after_send(cid, **intent, state=SENT_UNKNOWN)  # it may have left: ask IB later
                raise
            deferred_intent: dict[str, Any] | None = intent
        else:
            if self._deferred:
                self._flush_deferred()  # a generated id journaled after its call could be the one repeated here
            # With journalSync="normal" the intent's write runs while the order travels (OrderJournal.sending)
            # when the id carries our prefix: reconciliation adopts such an order back from IB's orderRef. Any
            # other id is committed before it is sent: a bot that dies and comes back places every id it
            # attempted again, and an order at IB that neither the journal nor the adoption knows would be
            # sent twice. After a crash reconciliation asks IB, which lists the order by orderRef if it arrived.
            prefix = str(self.options.get("clientOrderPrefix", client_ids.DEFAULT_PREFIX))
            with journal.sending(cid, **intent, broker_keeps_id=client_ids.is_own(cid, prefix)) as (row, created):
                trade = self._send(ib, market, parent, children) if created else None
            if trade is None:
                check_repeat(row, intent, cid, self.id)
                return await self._placed_before(row, market, parent, children, meta, journal)
            deferred_intent = None
        if meta["reduceOnly"]:
            self._reduce_only.add(cid)
        return await self._answer(trade, market, meta, journal, deferred_intent)

    @staticmethod
    def _intent(market: dict[str, Any], kind: str, side: str, meta: dict[str, Any]) -> dict[str, Any]:
        """The order as the journal keeps it (and a repeated clientOrderId is compared with)."""
        return {"symbol": market["symbol"], "side": side, "type": kind, "amount": meta["amount"],
                "price": meta["price"], "trigger_price": meta["triggerPrice"]}

    async def _placed_before(self, row: JournalOrder, market: dict[str, Any], parent: Order, children: list[Order],
                             meta: dict[str, Any], journal: OrderJournal) -> dict[str, Any]:
        """A clientOrderId journaled before: settle what became of it (normalization.runtime.settle), then
        return that order -- or, if IB provably never received it, place it now, exactly once."""
        cid = row.client_order_id
        for _ in range(3):
            await self._settle_journal([cid])
            row = journal.get(cid) or row
            if not row.never_received:
                return await self._journaled_order(row, market)
            if journal.claim_retry(cid) is None:
                continue  # another thread or process claimed it first: its placement settles it
            ib = await self._ib()
            trade = self._send(ib, market, parent, children)
            return await self._answer(trade, market, meta, journal, None)
        raise ReconciliationPending(f"{self.id}: clientOrderId {cid} is being placed elsewhere; ask again shortly")

    async def _settle_journal(self, cids: list[str] | None) -> None:
        """Every unresolved order among ``cids`` (None: all) settled by reconciliation, or
        ReconciliationPending after ``options['reconcileWait']`` seconds."""
        await settle(
            self.journal, cids, placements=self._placing, reconcile=self._resync,
            timeout=float(self.options.get("reconcileWait", 10.0)), exchange_id=self.id,
            grace_ms=int(self.options.get("reconcileGraceMs", 2000)), flush=self._flush_deferred,
        )

    async def _resync(self) -> None:
        await self._ib()
        await self._sync_orders(executions=False)

    def _send(self, ib: Any, market: dict[str, Any], parent: Order, children: list[Order]) -> Trade:
        """Hand the order (and its bracket children, transmitted with the last one) to IB."""
        contract = self._contract(market)
        if children:
            parent.orderId = ib.client.getReqId()
            parent.transmit = False
            for child in children:
                child.parentId = parent.orderId
                child.transmit = False
            children[-1].transmit = True
        trade = ib.placeOrder(contract, parent)
        if children:
            self._bracket_legs[parent.orderId] = [ib.placeOrder(contract, child) for child in children]
        return trade

    async def _answer(self, trade: Trade, market: dict[str, Any], meta: dict[str, Any], journal: OrderJournal,
                      intent: dict[str, Any] | None) -> dict[str, Any]:
        """IB's answer to an order just sent, with the order counted as in flight until it comes."""
        cid = meta["clientOrderId"]
        self._placing.add(cid)
        try:
            order = await self._settle(trade, market, meta, journal, intent)
        finally:
            self._placing.discard(cid)
        await self._await_bracket_legs(trade)
        return order

    async def _await_bracket_legs(self, trade: Trade) -> None:
        """A bracket is answered once its take-profit / stop-loss legs are acknowledged too.

        fetch_open_orders shows only what IB has confirmed, and the legs' confirmations trail the parent's:
        a bot that lists its orders right after create_order must find the legs it just placed.
        """
        legs = self._bracket_legs.pop(trade.order.orderId, [])
        timeout = float(self.options.get("orderTimeout", 10.0))
        for leg in legs:
            await self.transport.wait_trade(leg, _acknowledged, timeout)

    async def _settle(self, trade: Trade, market: dict[str, Any], meta: dict[str, Any], journal: OrderJournal,
                      intent: dict[str, Any] | None) -> dict[str, Any]:
        """Wait for IB's answer to a sent order and return it as a ccxt order (or raise the rejection)."""
        cid = meta["clientOrderId"]
        # Parsed while IB works on it; the acknowledgement then only refreshes what it changed.
        early = self.parse_ib_order(trade, market, reduce_only=meta["reduceOnly"])
        timeout = float(self.options.get("orderTimeout", 10.0))
        await self.transport.wait_trade(trade, _acknowledged, timeout)
        if trade.order.orderType == "MKT" and _acknowledged(trade) and not _done(trade):
            await self.transport.wait_trade(trade, _done, float(self.options.get("marketOrderWait", 2.0)))
        if trade.fills and not _commissions_in(trade):
            # IB sends each fill's commission report right after it: fold it into the returned order.
            await self.transport.wait_trade(trade, _commissions_in, float(self.options.get("commissionWait", 1.0)))
        order = self.refresh_ib_order(early, trade, market, reduce_only=meta["reduceOnly"])
        # After the send the journal only learns ids and status (reconciliation can also match the
        # order by its orderRef), so these writes run right after this call returns, off its latency.
        self._deferred.append((journal, cid, trade, market, intent))
        asyncio.get_running_loop().call_soon(self._flush_deferred)
        if not _acknowledged(trade) and not _done(trade):
            # Sent, and IB has not said whether it has it: no status to show (issue #15), and never a
            # second send. The same clientOrderId later returns the order once IB answers.
            raise ccxt.RequestTimeout(
                f"{self.id} order {cid} was sent but IB did not answer within orderTimeout ({timeout:g} s); its "
                "outcome is unknown. It is never sent twice: create_order / fetch_order with the same "
                "clientOrderId return it once IB (or the reconciliation after a reconnect) settles it"
            )
        if order["status"] == "rejected" or (_done(trade) and not order["filled"]
                                             and order["status"] != "canceled" and order["status"] != "expired"):
            raise self._rejection(trade)
        return order

    def _flush_deferred(self) -> None:
        """Run the post-send journal writes still pending (also on close, before the journal closes),
        and build the next order's ``Order()`` while nothing waits for it."""
        while self._deferred:
            self._journal_sent(*self._deferred.pop(0))
        if self._spare_order is None:
            self._spare_order = Order()

    def _journal_sent(self, journal: OrderJournal, cid: str, trade: Trade, market: dict[str, Any],
                      intent: dict[str, Any] | None) -> None:
        """The journal learns a placed order's ids and state (and, for an ``intent`` not journaled yet, the
        order itself). Read from the trade as it is now, not as it was returned: it may have filled since,
        and the returned order belongs to the caller."""
        try:
            ids = {"order_id": trade.order.orderId, "perm_id": trade.order.permId or trade.orderStatus.permId or None}
            if _acknowledged(trade):
                order = self.parse_ib_order(trade, market)
                if intent is not None:
                    journal.record_after_send(cid, **intent, state=order["status"], filled=order["filled"],
                                              remaining=order["remaining"], ids=ids)
                    if order["status"] == "rejected":
                        journal.update_status(cid, "rejected", self._trade_payload(trade),
                                              reason=self._reject_reason(trade))
                elif order["status"] == "rejected":
                    journal.update_status(cid, "rejected", self._trade_payload(trade),
                                          reason=self._reject_reason(trade), filled=order["filled"],
                                          remaining=order["remaining"], ids=ids)
                else:
                    journal.update_status(cid, order["status"], filled=order["filled"],
                                          remaining=order["remaining"], ids=ids)
                if order["status"] == "open":
                    self._live_refs[cid] = "open"
            else:
                if intent is not None:
                    journal.record_after_send(cid, **intent, state=SENT_UNKNOWN, ids=ids)
                else:
                    journal.attach_ids(cid, **ids)
                self._live_refs[cid] = "sent_unknown"  # IB's late answer lands in the journal when it comes
        except Exception:  # noqa: BLE001 - a closed journal (exchange closed meanwhile) is not an error here
            pass

    def _reject_reason(self, trade: Trade) -> str:
        """A rejection as the journal keeps it: ``<ccxt class>: <IB's message>``."""
        error = self._rejection(trade)
        return f"{type(error).__name__}: {error}"

    @staticmethod
    def _trade_payload(trade: Trade) -> dict[str, Any]:
        """IB's own words about an order, JSON-ready, for the journal's ``info``."""
        status = trade.orderStatus
        return {
            "orderId": trade.order.orderId, "permId": trade.order.permId or status.permId,
            "orderRef": trade.order.orderRef, "status": status.status, "filled": status.filled,
            "remaining": status.remaining, "whyHeld": status.whyHeld,
            "log": [{"time": str(e.time), "status": e.status, "message": e.message,
                     "errorCode": getattr(e, "errorCode", 0)} for e in trade.log],
        }

    def _rejection(self, trade: Trade) -> ccxt.BaseError:
        entry = next((e for e in reversed(trade.log) if getattr(e, "errorCode", 0)), None)
        if entry is None:
            return ccxt.InvalidOrder(f"{self.id} order rejected: IB status {trade.orderStatus.status}")
        text = entry.message
        prefix = f"Error {entry.errorCode}, reqId {trade.order.orderId}: "
        if text.startswith(prefix):
            text = text[len(prefix):]
        return ib_exception(entry.errorCode, text, exchange_id=self.id)

    async def _journaled_order(self, row: JournalOrder, market: dict[str, Any]) -> dict[str, Any]:
        """The order a journal row stands for: IB's live view if IB knows it, else what the journal knows."""
        trade = self._find_trade_local(row.client_order_id) or (
            self._find_trade_local(row.perm_id) if row.perm_id else None
        )
        if trade is not None and (_acknowledged(trade) or _done(trade)):
            return self.parse_ib_order(trade, market)
        if row.unresolved:
            raise ReconciliationPending(
                f"{self.id} order {row.client_order_id}: IB has not confirmed whether it received it; ask again shortly"
            )
        if row.never_received:
            raise ccxt.OrderNotFound(
                f"{self.id} order {row.client_order_id} never reached IB ({row.reason}); placing the same "
                "clientOrderId again sends it once"
            )
        timestamp = row.created
        return self.safe_order(
            {
                "id": row.order_id or row.perm_id or row.client_order_id,
                "clientOrderId": row.client_order_id,
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "symbol": row.symbol,
                "type": row.type if row.type in ("market", "limit") else None,
                "side": row.side,
                "price": row.price,
                "triggerPrice": row.trigger_price,
                "amount": row.amount,
                "filled": row.filled,
                "remaining": row.remaining,
                "status": row.ccxt_status,
                "timeInForce": None,
                "postOnly": False,
                "fee": None,
                "trades": [],
                "info": {"journal": {"state": row.state, "orderId": row.order_id, "permId": row.perm_id}},
            },
            market,
        )

    def _all_trades(self) -> list[Trade]:
        """This connection's trades plus completed ones IB listed that the library did not keep."""
        if self._transport is None:
            return []
        trades = list(self._transport.ib.trades())
        live = {t.order.permId or t.orderStatus.permId for t in trades}
        trades.extend(t for perm, t in self._completed.items() if perm not in live)
        return trades

    def _find_trade_local(self, key: Any) -> Trade | None:
        """A trade by orderId, permId or clientOrderId (orderRef) among what this connection knows.

        Order ids are unique only per clientId (other clients' completed orders reuse them), so an
        orderId matches only this client's orders; a clientOrderId reused over time matches the
        newest order carrying it.
        """
        if key is None or self._transport is None:
            return None
        text = str(key)
        trades = self._all_trades()
        client_id = self._transport.client_id
        for trade in trades:
            if trade.order.orderId > 0 and trade.order.clientId == client_id and str(trade.order.orderId) == text:
                return trade
        for trade in trades:
            perm = trade.order.permId or trade.orderStatus.permId
            if perm and str(perm) == text:
                return trade
        named = [t for t in trades if t.order.orderRef and t.order.orderRef == text]
        if named:
            return max(named, key=lambda t: (t.order.clientId == client_id, t.order.permId or t.orderStatus.permId))
        return None

    async def _find_trade(self, id: Any, params: dict[str, Any]) -> Trade:
        ib = await self._ib()
        cid = self.safe_string_2(params, "clientOrderId", "clientOid")
        key = cid if cid is not None and id is None else id
        trade = None
        if self._journal is not None and key is not None:
            # Our own clientOrderIds: the journal knows the stable permId they were given.
            row = self._journal.get(str(key))
            if row is not None and row.perm_id:
                trade = self._find_trade_local(row.perm_id)
        trade = trade or self._find_trade_local(key)
        if trade is None:
            # Orders of earlier sessions or other clients: ask IB once, then give up.
            await self.transport.once("reqAllOpenOrders", ib.reqAllOpenOrdersAsync)
            completed = await self.transport.once("reqCompletedOrders", lambda: ib.reqCompletedOrdersAsync(False))
            for done in completed:
                perm = done.order.permId or done.orderStatus.permId
                if perm:
                    self._completed[perm] = done
            trade = self._find_trade_local(key)
        if trade is None:
            raise ccxt.OrderNotFound(f"{self.id} order {key} not found")
        return trade

    async def _parse_trade_order(self, trade: Trade) -> dict[str, Any]:
        market = await self._market_for_contract(trade.contract)
        perm = trade.order.permId or trade.orderStatus.permId
        if not trade.fills and perm and self._transport is not None:
            # Orders rebuilt after a reconnect (or completed ones) come without their fills; IB's
            # executions carry the permId, so attach them for filled / average / fees.
            fills = [f for f in self._transport.ib.fills() if f.execution.permId == perm]
            if fills:
                trade = copy.copy(trade)
                trade.fills = fills
        return self.parse_ib_order(
            trade,
            market,
            cancel_requested=trade.order.orderId in self._cancel_requested,
            reduce_only=(trade.order.orderRef in self._reduce_only) or None,
        )

    async def cancel_order(self, id: str, symbol: str | None = None, params: dict[str, Any] = {}) -> dict[str, Any]:
        """Cancel and wait (bounded) for IB's confirmation. A filled order raises InvalidOrder; an already
        cancelled one is returned as is; an unknown id raises OrderNotFound."""
        id, symbol, params = check_order_ref(self.id, "cancel_order", id, symbol, params)  # type: ignore[assignment]
        if symbol is not None:
            await self._market(symbol)
        trade = await self._find_trade(id, params)
        current = await self._parse_trade_order(trade)
        if current["status"] == "closed":
            raise ccxt.InvalidOrder(f"{self.id} order {id} is already filled; there is nothing to cancel")
        if current["status"] != "open":
            return current
        ib = await self._ib()
        self._cancel_requested.add(trade.order.orderId)
        ib.cancelOrder(trade.order)
        await self.transport.wait_trade(trade, _done, float(self.options.get("orderTimeout", 10.0)))
        order = await self._parse_trade_order(trade)
        if order["status"] == "closed":
            raise ccxt.InvalidOrder(f"{self.id} order {id} filled before the cancel reached IB")
        return order

    async def edit_order(
        self,
        id: str,
        symbol: str,
        type: str,
        side: str,
        amount: float | None = None,
        price: float | None = None,
        params: dict[str, Any] = {},
    ) -> dict[str, Any]:
        """Modify in place: the same orderId re-placed with the new amount / price / triggerPrice."""
        id, symbol, type, side, amount, price, params = check_edit_order(  # type: ignore[assignment]
            id, symbol, type, side, amount, price, params, IB_ORDER_RULES)
        market = await self._market(symbol)
        trade = await self._find_trade(id, params)
        if _done(trade):
            raise ccxt.InvalidOrder(f"{self.id} order {id} is {trade.orderStatus.status}; it cannot be edited")
        held = market if trade.contract.conId == int(market["id"]) else self._market_by_con_id(trade.contract.conId)
        check_edit_target(self.id, id, {"symbol": market["symbol"], "side": side, "type": type}, {
            "symbol": held["symbol"] if held else f"conId {trade.contract.conId}",
            "side": trade.order.action.lower(),
            "type": {v: k for k, v in IB_ORDER_TYPES.items()}.get(trade.order.orderType)})
        if params.get("stopLoss") is not None or params.get("takeProfit") is not None:
            raise ccxt.NotSupported(f"{self.id} edit_order cannot change a bracket through its parent: edit the "
                                    "stop-loss / take-profit child order by its own id")
        order = copy.copy(trade.order)
        for name in IB_PASSTHROUGH & params.keys():  # IB's own Order fields (README)
            setattr(order, name, params[name])
        if amount is not None:
            order.totalQuantity = self._check_amount(market, amount)
        trigger = self.safe_value_2(params, "triggerPrice", "stopPrice")
        if price is not None:
            if order.orderType not in ("LMT", "STP LMT"):
                raise ccxt.InvalidOrder(f"{self.id} order {id} is {order.orderType}; it has no limit price")
            order.lmtPrice = self._check_price(market, price)
        if trigger is not None:
            if order.orderType not in ("STP", "STP LMT"):
                raise ccxt.InvalidOrder(f"{self.id} order {id} is {order.orderType}; it has no trigger price")
            order.auxPrice = self._check_price(market, trigger, "triggerPrice")
        order.transmit = True
        ib = await self._ib()
        before = len(trade.log)
        ib.placeOrder(trade.contract, order)
        wanted = (order.totalQuantity, order.lmtPrice, order.auxPrice)

        def applied(t: Trade) -> bool:
            # ib_async logs "Modified" when a Submitted order's modify is acknowledged; a held order
            # (PreSubmitted) only gets its openOrder echo, which updates the trade's own Order.
            echoed = (t.order.totalQuantity, t.order.lmtPrice, t.order.auxPrice) == wanted
            return _done(t) or len(t.log) > before + 1 or (echoed and t.order is not order)

        await self.transport.wait_trade(
            trade, applied, float(self.options.get("orderTimeout", 10.0)), extra_events=[ib.openOrderEvent]
        )
        errors = [e for e in trade.log[before:] if getattr(e, "errorCode", 0)]
        if errors:
            entry = errors[-1]
            raise ib_exception(entry.errorCode, entry.message, exchange_id=self.id)
        trade.order.totalQuantity, trade.order.lmtPrice, trade.order.auxPrice = wanted
        return await self._parse_trade_order(trade)

    async def fetch_order(self, id: str, symbol: str | None = None, params: dict[str, Any] = {}) -> dict[str, Any]:
        """By orderId (what create_order returned), permId (stable across sessions) or clientOrderId.

        An order IB does not know but the journal does (say, lost before it reached IB and resolved
        as rejected by reconciliation) is reported from the journal.
        """
        id, symbol, params = check_order_ref(self.id, "fetch_order", id, symbol, params)  # type: ignore[assignment]
        if symbol is not None:
            await self._market(symbol)
        row = self._journal_row(id, params)
        if row is not None and row.unresolved:
            await self._settle_journal([row.client_order_id])  # never a status IB has not confirmed
            row = self._journal_row(id, params)
        if row is not None and row.never_received:
            return await self._journaled_order(row, await self._market(row.symbol))  # raises OrderNotFound
        try:
            trade = await self._find_trade(id, params)
        except ccxt.OrderNotFound:
            row = self._journal_row(id, params)
            if row is None:
                raise
            return await self._journaled_order(row, await self._market(row.symbol))
        return await self._parse_trade_order(trade)

    def _journal_row(self, id: Any, params: dict[str, Any]) -> JournalOrder | None:
        if self._journal is None:
            return None
        cid = self.safe_string_2(params, "clientOrderId", "clientOid")
        for key in (cid, id):
            if key is None:
                continue
            row = self._journal.get(str(key)) or self._journal.find_by(order_id=str(key)) or \
                self._journal.find_by(perm_id=str(key))
            if row is not None:
                return row
        return None

    async def _orders(self, symbol: str | None, since: int | None, limit: int | None,
                      params: dict[str, Any], open_only: bool = False) -> list[dict[str, Any]]:
        ib = await self._ib()
        market = await self._market(symbol) if symbol is not None else None
        trades = ib.openTrades() if open_only else ib.trades()
        # An order this process sent that IB has not acknowledged is not shown: IB has not confirmed it.
        trades = [t for t in trades if _acknowledged(t) or _done(t) or t.order.permId or t.orderStatus.permId]
        own_only = self.safe_bool(params, "ownOrdersOnly", bool(self.options.get("ownOrdersOnly", False)))
        prefix = str(self.options.get("clientOrderPrefix", client_ids.DEFAULT_PREFIX))
        result = []
        for trade in trades:
            if market is not None and trade.contract.conId != int(market["id"]):
                continue
            if own_only and not client_ids.is_own(trade.order.orderRef, prefix):
                continue
            result.append(await self._parse_trade_order(trade))
        result = self.sort_by(result, "timestamp")
        return self.filter_by_since_limit(result, since, limit)

    async def fetch_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                           params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        symbol, since, limit, params = check_fetch(self.id, "fetch_orders", symbol, since, limit, params)
        return await self._orders(symbol, since, limit, params)

    async def fetch_open_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                                params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """Open orders; ``options['ownOrdersOnly']`` (or the param) keeps only this bot's prefix."""
        symbol, since, limit, params = check_fetch(self.id, "fetch_open_orders", symbol, since, limit, params)
        await self._ib()
        if self._journal is not None and self._journal.unresolved():
            await self._settle_journal(None)  # an order IB never confirmed is not open
        orders = await self._orders(symbol, since, None, params, open_only=True)
        return self.filter_by_since_limit([o for o in orders if o["status"] == "open"], since, limit)

    async def fetch_closed_orders(self, symbol: str | None = None, since: int | None = None,
                                  limit: int | None = None, params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """Filled orders (status ``closed``), like ccxt's emulation over fetch_orders."""
        symbol, since, limit, params = check_fetch(self.id, "fetch_closed_orders", symbol, since, limit, params)
        orders = await self._orders(symbol, since, None, params)
        return self.filter_by_since_limit([o for o in orders if o["status"] == "closed"], since, limit)

    # ------------------------------------------------------------------ account

    async def fetch_my_trades(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                              params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """This session's fills (and today's from before it, via the startup sync), each once by execId.

        IB reports commissions separately, shortly after a fill: fills younger than a few seconds
        without one are waited for (at most ``options['commissionWait']``); later calls fill it in.
        """
        symbol, since, limit, params = check_fetch(self.id, "fetch_my_trades", symbol, since, limit, params)
        ib = await self._ib(ACCOUNT)
        market = await self._market(symbol) if symbol is not None else None

        def fills() -> list[Any]:
            return [f for f in ib.fills() if market is None or f.contract.conId == int(market["id"])]

        wait = float(self.options.get("commissionWait", 1.0))
        now = time.time()

        def missing() -> bool:
            return any(
                not f.commissionReport.currency and f.time is not None and now - f.time.timestamp() < 10
                for f in fills()
            )

        if wait > 0 and missing():
            await self.transport.wait_event(ib.commissionReportEvent, lambda: not missing(), wait)
        result = []
        for fill in fills():
            fill_market = market or await self._market_for_contract(fill.contract)
            result.append(self.parse_ib_trade(fill, fill_market))
        result = self.sort_by(result, "timestamp")
        return self.filter_by_since_limit(result, since, limit)

    async def _positions(self) -> list[Any]:
        ib = await self._ib(ACCOUNT)
        await self.transport.once("reqPositions", ib.reqPositionsAsync)
        return [p for p in ib.positions(self.transport.account) if p.position]

    async def fetch_positions(self, symbols: list[str] | None = None, params: dict[str, Any] = {}) -> list[dict]:
        """Every holding as a position (long/short), futures and stocks alike; leverage 1, cross margin."""
        symbols = check_symbols(symbols, self.id, "fetch_positions")
        await self._ib(ACCOUNT)
        return await self._build_positions(await self._positions(), symbols)

    async def _build_positions(self, positions: list[Any], symbols: list[str] | None = None) -> list[dict]:
        """ccxt positions from IB's position rows and the portfolio the socket keeps current (no request)."""
        portfolio = {item.contract.conId: item for item in self.transport.portfolio()}
        now = self.milliseconds()
        result = []
        for position in positions:
            market = await self._market_for_contract(position.contract)
            if symbols and market["symbol"] not in symbols:
                continue
            item = portfolio.get(position.contract.conId)
            mark = finite(item.marketPrice) if item is not None and item.position == position.position else None
            unrealized = finite(item.unrealizedPNL) if mark is not None and item is not None else None
            info = {"account": position.account, "conId": position.contract.conId, "position": position.position,
                    "avgCost": position.avgCost}
            if item is not None:
                info.update({"marketPrice": item.marketPrice, "marketValue": item.marketValue,
                             "unrealizedPNL": item.unrealizedPNL, "realizedPNL": item.realizedPNL})
            result.append(self.parse_ib_position(position.position, position.avgCost, market, mark=mark,
                                                 unrealized=unrealized, info=info, timestamp=now))
        return result

    async def fetch_balance(self, params: dict[str, Any] = {}) -> dict[str, Any]:
        """Cash per currency (CashBalance; the base currency's free part from AvailableFunds) plus
        holdings of spot instruments as base currencies, so ``balance['AAPL']['total']`` is the shares held."""
        check_fetch(self.id, "fetch_balance", params=params)
        ib = await self._ib(ACCOUNT)
        positions = await self._positions()
        values = ib.accountValues(self.transport.account)
        if not any(v.tag == "CashBalance" for v in values):
            values = await self.transport._bounded(ib.accountSummaryAsync(self.transport.account), "accountSummary")
        return await self._build_balance(values, positions)

    async def _build_balance(self, values: list[Any], positions: list[Any]) -> dict[str, Any]:
        """The ccxt balance from account values and position rows (no request: also the stream's view)."""
        ib = self.transport.ib
        reserved: dict[int, float] = {}
        for trade in ib.openTrades():
            if trade.order.action == "SELL" and not _done(trade):
                remaining = max((trade.order.totalQuantity or 0) - (trade.orderStatus.filled or 0), 0.0)
                reserved[trade.contract.conId] = reserved.get(trade.contract.conId, 0.0) + remaining
        holdings: dict[str, tuple[float, float]] = {}
        for position in positions:
            if position.contract.secType not in ("STK", "CRYPTO"):
                continue
            market = await self._market_for_contract(position.contract)
            total, used = holdings.get(market["base"], (0.0, 0.0))
            holdings[market["base"]] = (
                total + position.position,
                used + reserved.get(position.contract.conId, 0.0),
            )
        balance = self.parse_ib_balance(values, holdings, self.milliseconds())
        return add_zero_rows(balance, (self.markets or {}).values())

    async def account_base_currency(self) -> str | None:
        """The account's base currency as TWS reports it (account value ``Currency``), for equity figures."""
        ib = await self._ib(ACCOUNT)
        for value in ib.accountValues(self.transport.account):
            if value.tag == "Currency" and value.currency not in ("", "BASE"):
                return str(value.value)
        return None

    async def close_position(self, symbol: str, side: str | None = None, params: dict[str, Any] = {}) -> dict:
        """A reduceOnly market order for the whole position, in the opposite direction."""
        symbol, side, params = check_close_position(self.id, symbol, side, params)
        market = await self._market(symbol)
        positions = [p for p in await self._positions() if p.contract.conId == int(market["id"])]
        held = sum(p.position for p in positions)
        if not held:
            raise ccxt.InvalidOrder(f"{self.id} there is no {symbol} position to close")
        closing = "sell" if held > 0 else "buy"
        held_side = "long" if held > 0 else "short"
        if side is not None and side != held_side:
            raise ccxt.InvalidOrder(f"{self.id} the {symbol} position is {held_side}, not {side}; nothing was sent")
        extra = dict(params)
        extra["reduceOnly"] = True
        extra.setdefault("clientOrderId", client_ids.generate(str(self.options.get("clientOrderPrefix", "ccxt-"))))
        # The position's bracket take-profit / stop-loss would stay working on a flat position, and one
        # trigger would open it again: they are cancelled (and confirmed) before the closing order goes.
        await self._cancel_bracket_children(int(market["id"]), "SELL" if closing == "sell" else "BUY")
        return await self.create_order(symbol, "market", closing, abs(held), None, extra)

    async def _cancel_bracket_children(self, con_id: int, closing_action: str) -> None:
        """Cancel the working bracket children (orders with a parent, closing side) of one contract."""
        ib = await self._ib()
        children = [
            t for t in ib.openTrades()
            if t.contract.conId == con_id and t.order.action == closing_action and not _done(t)
            and (t.order.parentId or str(t.order.ocaGroup or "").endswith("-oca"))
        ]
        for trade in children:
            self._cancel_requested.add(trade.order.orderId)
            ib.cancelOrder(trade.order)
        timeout = float(self.options.get("orderTimeout", 10.0))
        for trade in children:
            await self.transport.wait_trade(trade, _done, timeout)
            if not _done(trade):
                raise ccxt.RequestTimeout(f"{self.id} the bracket order {trade.order.orderRef or trade.order.orderId} "
                                          "was not confirmed cancelled; the position was not closed")
