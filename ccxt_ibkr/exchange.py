"""The ccxt surface of Interactive Brokers: ``describe()``, the unified methods, argument checks.

Read it like a ccxt exchange file: the declarative description first, then markets, market data,
orders and account, each method checking its arguments before anything reaches the broker. The
rest lives in rooms of its own, mixed into this class: ``orders.py`` the order lifecycle (building,
placing through the journal, IB's answer, cancel and modify), ``journaling.py`` the journal's side
(writes deferred past the send, hooks on IB's events, reconciliation), ``connection.py`` the shared
connection and the live gate, ``controls.py`` and ``operations.py`` the operator controls,
``markets.py`` / ``history.py`` contract resolution and bar paging, ``parsing.py`` IB objects -> ccxt
structures; ``transport.py`` is the only code that calls the client library. This class is the async
implementation; the sync ``ccxt_ibkr.IBTrader`` runs it on a private loop
(``normalization.runtime.facade``); streaming is ``pro.py`` (``ccxt.pro.ibkr``).

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
import logging
import time
from typing import Any

import ccxt
import ccxt.async_support
from ccxt.base.decimal_to_precision import TICK_SIZE

from normalization import client_ids
from normalization.arguments import (
    check_close_position,
    check_create_order,
    check_edit_order,
    check_edit_target,
    check_fetch,
    check_order_ref,
    check_symbols,
)
from normalization.balances import add_zero_rows
from normalization.errors import IB_BROAD, IB_EXACT
from normalization.runtime import latency
from normalization.runtime.controls import KillSwitch
from normalization.runtime.journal import (
    sync_option,
)
from normalization.runtime.safety import check_sandbox_switch, resolve_live
from normalization.runtime.supervisor import (
    ACCOUNT,
    CONNECTED,
    IDLE,
    MAINTENANCE,
    OUTAGE,
)
from normalization.timeframes import IB_BAR_SIZES

from ._ib import IB_LIBRARY_NAME, Contract
from .connection import IBConnection
from .controls import IBControls
from .history import IBHistory
from .markets import IBMarkets
from .operations import IBOperations
from .orders import IB_ORDER_RULES, IB_ORDER_TYPES, IBOrders
from .parsing import IBParsing, finite, is_acknowledged, is_done, to_ms
from .universe import default_markets

log = logging.getLogger("ccxt_ibkr")

PAPER_PORT = 7497
LIVE_PORT = 7496
LIVE_PORTS = frozenset({7496, 4001})


class IBTrader(IBConnection, IBParsing, IBOrders, IBControls, IBOperations, KillSwitch, IBMarkets, IBHistory,
               ccxt.async_support.Exchange):
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
            "trailing": True,
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
                "cancelAllOrders": True,
                "cancelOrder": True,
                "closePosition": True,
                "closeAllPositions": True,
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
                "createTrailingAmountOrder": True,
                "createTrailingPercentOrder": True,
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
                "fetchTradingFees": True,
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
            # rate, so this is a rough figure for planners: calculate_fee quotes IB's real schedule
            # (normalization.fees, options['commissions']) and each fill's fee is IB's own report.
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
                # IB's commission plan for calculate_fee / fetch_trading_fees / dry runs (normalization.fees):
                # {"plan": "fixed"|"tiered", "monthlyVolume": N or {"STK:USD": N}, "venues": {"STK:EUR": {...}}}
                "commissions": {"plan": "fixed"},
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
        self._init_connection()  # the live switch and gate, no connection yet (connection.py)
        sync_option(self.id, self.options)  # a bad option fails at construction, before anything is sent
        self._contracts: dict[str, Contract] = {}
        self._extra_symbols: list[str] = []
        self._init_orders()
        self._init_controls()  # pre-trade limits, dry run: a bad setting fails here
        self._heads: dict[tuple[int, str, bool], int] = {}  # (conId, whatToShow, useRTH) -> first bar, ms

    # ------------------------------------------------------------------ sandbox, close (the connection: connection.py)

    def set_sandbox_mode(self, enabled: bool) -> None:
        """True (the default) = paper port 7497; False = live, which also needs the two live switches."""
        check_sandbox_switch(self.id, enabled)
        if not enabled and not resolve_live(self.id, self.safe_value(self.options, "live")):
            raise ccxt.PermissionDenied(f"{self.id}: set_sandbox_mode(False) also needs options['live'] = True")
        self.isSandboxModeEnabled = bool(enabled)
        self.live = not enabled

    async def close(self) -> None:
        """Close this exchange object; the shared connection closes with its last user."""
        self._flush_deferred()
        await self._leave_connection()  # connection.py
        self._close_journal()  # journaling.py
        if self.session is None and self.tcp_connector is None:
            self.timeout_on_exit = 0  # ccxt's 250 ms grace is for aiohttp sockets, which we never open
        await super().close()

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
        return await self._download_ohlcv(symbol, timeframe, since, limit, params)

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
        intent = latency.now()
        symbol, type, side, amount, price, params = check_create_order(symbol, type, side, amount, price, params,
                                                                       IB_ORDER_RULES)
        market = await self._market(symbol)
        self._check_live()
        parent, children, meta = self._build_order(market, type, side, amount, price, params)
        meta["latency"] = latency.Stamps(intent)
        await self._pre_trade(market, side, meta)  # pre-trade limits (controls.py)
        if self._dry_run:
            return await self._dry_run_answer(market, type, side, params, parent, children, meta)
        return await self._place(market, type, side, params, parent, children, meta)

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
        self._follow_in_journal([trade])  # an order another process placed: journal its end too
        await self._cancel(trade)
        order = await self._parse_trade_order(trade)
        if order["status"] == "closed":
            raise ccxt.InvalidOrder(f"{self.id} order {id} filled before the cancel reached IB")
        return order

    async def cancel_all_orders(self, symbol: str | None = None, params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """Cancel this clientId's working orders (of ``symbol`` if given) and wait for IB's confirmations;
        ``params['allClients']`` sends IB's global cancel instead (every order of the account, any client,
        TWS included). Returns the orders as they ended (a fill that won the race shows as closed)."""
        symbol, _, _, params = check_fetch(self.id, "cancel_all_orders", symbol, params=params)
        return await self._cancel_all(symbol, params)

    def calculate_fee(self, symbol: str, type: str, side: str, amount: float, price: float,
                      takerOrMaker: str = "taker", params: dict[str, Any] = {}) -> dict[str, Any]:
        """IB's commission for one order from its published schedule (normalization.fees): per share with
        a minimum and a 1% cap for US stocks, by value elsewhere; ``options['commissions']`` picks the plan."""
        return self._quote_fee(symbol, type, side, amount, price, takerOrMaker, params)

    async def fetch_trading_fees(self, params: dict[str, Any] = {}) -> dict[str, Any]:
        """Per loaded market: the schedule that prices its orders (``info``). ``maker`` / ``taker`` are its
        base rate before the floor and caps (the first tier's when tiered): a fraction of value where IB
        charges by value (``percentage`` True), else the amount per share / contract in the market's
        currency (``percentage`` False, ccxt's absolute fee). Use calculate_fee for one order's cost."""
        await self.load_markets()
        fees = {}
        for symbol in self.markets or {}:
            try:
                quote = self._quote_fee(symbol, "limit", "buy", 100.0, 100.0, "taker", params)
            except ccxt.NotSupported:
                continue
            schedule = quote["info"]["schedule"]
            tiers = schedule.get("tiers") or []
            by_unit = bool(schedule.get("per_unit"))
            rate = tiers[0]["rate"] if tiers else (schedule.get("per_unit") or schedule.get("fraction") or 0.0)
            fees[symbol] = {"symbol": symbol, "maker": rate, "taker": rate, "percentage": not by_unit,
                            "tierBased": bool(tiers), "info": quote["info"]}
        return fees

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
        if is_done(trade):
            raise ccxt.InvalidOrder(f"{self.id} order {id} is {trade.orderStatus.status}; it cannot be edited")
        held = market if trade.contract.conId == int(market["id"]) else self._market_by_con_id(trade.contract.conId)
        check_edit_target(self.id, id, {"symbol": market["symbol"], "side": side, "type": type}, {
            "symbol": held["symbol"] if held else f"conId {trade.contract.conId}",
            "side": trade.order.action.lower(),
            "type": {v: k for k, v in IB_ORDER_TYPES.items()}.get(trade.order.orderType)})
        if params.get("stopLoss") is not None or params.get("takeProfit") is not None:
            raise ccxt.NotSupported(f"{self.id} edit_order cannot change a bracket through its parent: edit the "
                                    "stop-loss / take-profit child order by its own id")
        order = self._edited_order(trade, market, id, amount, price, params)
        await self._pre_edit(market, order)  # the new size / price against the pre-trade limits (controls.py)
        if self._is_staged(trade):
            return await self._edit_staged(trade, order, market, params)  # kept staged, or transmitted
        await self._modify(trade, order)
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

    async def _orders(self, symbol: str | None, since: int | None, limit: int | None,
                      params: dict[str, Any], open_only: bool = False) -> list[dict[str, Any]]:
        await self._ready()
        market = await self._market(symbol) if symbol is not None else None
        trades = self.transport.open_trades() if open_only else self.transport.trades()
        # An order this process sent that IB has not acknowledged is not shown: IB has not confirmed it.
        trades = [t for t in trades if is_acknowledged(t) or is_done(t) or t.order.permId or t.orderStatus.permId
                  or self._is_staged(t)]  # a staged order sits in TWS: IB never acknowledges it
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
        await self._ready()
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
        """This session's fills (and today's from before it, via the startup sync), each once by execId;
        with ``since``, older fills IB no longer reports come from the journal (``info['source'] == 'journal'``).

        IB reports commissions separately, shortly after a fill: fills younger than a few seconds
        without one are waited for (at most ``options['commissionWait']``); later calls fill it in.
        """
        symbol, since, limit, params = check_fetch(self.id, "fetch_my_trades", symbol, since, limit, params)
        await self._ready(ACCOUNT)
        market = await self._market(symbol) if symbol is not None else None

        def fills() -> list[Any]:
            return [f for f in self.transport.fills() if market is None or f.contract.conId == int(market["id"])]

        wait = float(self.options.get("commissionWait", 1.0))
        now = time.time()

        def missing() -> bool:
            return any(
                not f.commissionReport.currency and f.time is not None and now - f.time.timestamp() < 10
                for f in fills()
            )

        if wait > 0 and missing():
            await self.transport.wait_event("commissionReportEvent", lambda: not missing(), wait)
        result = []
        for fill in fills():
            fill_market = market or await self._market_for_contract(fill.contract)
            result.append(self.parse_ib_trade(fill, fill_market))
        result += self._journal_trades(market["symbol"] if market else None, since, {t["id"] for t in result})
        result = self.sort_by(result, "timestamp")
        return self.filter_by_since_limit(result, since, limit)

    async def _positions(self) -> list[Any]:
        await self._ready(ACCOUNT)
        return [p for p in await self.transport.request_positions() if p.position]

    async def fetch_positions(self, symbols: list[str] | None = None, params: dict[str, Any] = {}) -> list[dict]:
        """Every holding as a position (long/short), futures and stocks alike; leverage 1, cross margin."""
        symbols = check_symbols(symbols, self.id, "fetch_positions")
        await self._ready(ACCOUNT)
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
        await self._ready(ACCOUNT)
        positions = await self._positions()
        values = self.transport.account_values()
        if not any(v.tag == "CashBalance" for v in values):
            values = await self.transport.account_summary()
        balance = await self._build_balance(values, positions)
        balance["info"]["pnlToday"] = await self._pnl_today()
        return balance

    async def _build_balance(self, values: list[Any], positions: list[Any]) -> dict[str, Any]:
        """The ccxt balance from account values and position rows (no request: also the stream's view)."""
        reserved: dict[int, float] = {}
        for trade in self.transport.open_trades():
            if trade.order.action == "SELL" and not is_done(trade):
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
        await self._ready(ACCOUNT)
        for value in self.transport.account_values():
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

