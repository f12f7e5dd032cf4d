"""``ccxt.pro.ibkr``: IB's pushes as ccxt.pro streams (a ``watch_x`` / ``handle_x`` pair per stream).

IB pushes everything on the socket the adapter already holds, so no stream here polls:

==================  ===================================================  ==========================
stream              IB subscription (made in ``transport.py``)           handler
==================  ===================================================  ==========================
watch_ticker(s)     reqMktData (live line)                               ``pendingTickersEvent``
watch_order_book    reqMktDepth                                          ``pendingTickersEvent``
watch_trades        reqTickByTickData AllLast                            ``pendingTickersEvent``
watch_ohlcv         reqHistoricalData keepUpToDate                       ``barUpdateEvent``
watch_orders        (always on: orderStatus / openOrder)                 ``orderStatusEvent`` ...
watch_my_trades     (always on: execDetails + commissionReport)          ``execDetailsEvent`` ...
watch_balance       (always on: reqAccountUpdates at connect)            ``accountValueEvent``
watch_positions     (always on: reqPositions at connect)                 ``positionEvent``
==================  ===================================================  ==========================

Reconnects: the transport requests every market-data line again (``IBTransport._resubscribe``). The
order and fill streams catch up after each (re)connect from what IB's startup sync reports (today's
executions, open and completed orders): a fill IB executed while the socket was down is delivered
then, and a fill is delivered once (by execId, :class:`~normalization.runtime.streams.SeenIds`) however
often IB repeats it. A fill is delivered with its commission folded in: IB sends the commission report
right after the execution; a fill whose report has not come within ``options['commissionWait']`` is
delivered without a fee (the report, if it comes later, updates that trade dict in place).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from normalization.runtime.streams import (
    ArrayCache,
    ArrayCacheBySymbolById,
    ArrayCacheBySymbolBySide,
    ArrayCacheByTimestamp,
    SeenIds,
    StreamingExchange,
)
from normalization.runtime.supervisor import ACCOUNT, MARKET_DATA, ReconnectEvent
from normalization.timeframes import ib_bar_size, ib_duration_for

from .async_support import IBTrader as AsyncIBTrader
from .parsing import finite, to_ms

log = logging.getLogger("ccxt_ibkr")

WATCH_HAS = {
    "ws": True,
    "watchBalance": True,
    "watchMyTrades": True,
    "watchOHLCV": True,
    "watchOrderBook": True,
    "watchOrders": True,
    "watchPositions": True,
    "watchTicker": True,
    "watchTickers": True,
    "watchTrades": True,
    "unWatchMyTrades": True,
    "unWatchOHLCV": True,
    "unWatchOrderBook": True,
    "unWatchOrders": True,
    "unWatchPositions": True,
    "unWatchTicker": True,
    "unWatchTickers": True,
    "unWatchTrades": True,
    "watchBidsAsks": False,
    "watchLiquidations": False,
    "watchMyLiquidations": False,
    "watchOHLCVForSymbols": False,
    "watchOrderBookForSymbols": False,
    "watchTradesForSymbols": False,
    "createOrderWs": False,
    "cancelOrderWs": False,
}


class IBTraderPro(StreamingExchange, AsyncIBTrader):
    """The async ``ibkr`` exchange with ccxt.pro's ``watch_*`` methods."""

    def describe(self) -> Any:
        return self.deep_extend(super().describe(), {
            "pro": True,
            "has": WATCH_HAS,
            "options": {"tradesLimit": 1000, "ordersLimit": 1000, "OHLCVLimit": 1000},
        })

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._wired = False
        self._ticker_markets: dict[int, dict[str, Any]] = {}  # conId -> market, for watched tickers
        self._book_markets: dict[int, tuple[dict[str, Any], int | None]] = {}
        self._trade_markets: dict[int, dict[str, Any]] = {}
        self._bar_keys: dict[tuple[Any, ...], tuple[str, str]] = {}  # (conId, barSize, what, rth) -> symbol, tf
        self._order_seen: dict[str, tuple[Any, ...]] = {}
        self._fills_seen = SeenIds()
        self._fills_pending: dict[str, asyncio.TimerHandle] = {}
        self._fill_trades: dict[str, dict[str, Any]] = {}  # execId -> the trade dict delivered (late fees)
        self._account_dirty = False
        self._trade_seq = 0
        self._last_prints: dict[str, tuple[float, str]] = {}

    # ------------------------------------------------------------------ wiring

    async def _wire(self) -> None:
        """Connect and attach the handlers once; the IB object (and so the handlers) outlives reconnects."""
        await self._ready(MARKET_DATA)
        if self._wired:
            return
        self._wired = True
        transport = self.transport
        transport.listen("pendingTickersEvent", self.handle_tickers)
        transport.listen("barUpdateEvent", self.handle_bars)
        transport.listen("orderStatusEvent", self.handle_order)
        transport.listen("openOrderEvent", self.handle_order)
        transport.listen("execDetailsEvent", self.handle_execution)
        transport.listen("commissionReportEvent", self.handle_commission)
        transport.listen("accountValueEvent", self.handle_account_value)
        transport.listen("positionEvent", self.handle_position)
        for fill in transport.fills():  # what IB reported before the streams began is history, not news
            self._fills_seen.add(fill.execution.execId)
        self._remember_orders()
        transport.on_connected(self._catch_up)
        self.supervisor.on_reconnected(self._on_reconnected)

    def _remember_orders(self) -> None:
        for trade in self._all_trades():
            market = self._market_by_con_id(trade.contract.conId)
            if market is not None:
                order = self.parse_ib_order(trade, market)
                self._order_seen[order["id"]] = _order_fingerprint(order)

    async def _catch_up(self) -> None:
        """After a (re)connect: deliver the orders that changed and the fills that happened meanwhile."""
        if not self._wired:
            return
        for trade in self._all_trades():
            self.handle_order(trade, catch_up=True)
        for fill in self.transport.fills():
            exec_id = fill.execution.execId
            if exec_id not in self._fills_seen and exec_id not in self._fills_pending:
                self._deliver_fill(fill)

    async def _on_reconnected(self, event: ReconnectEvent) -> None:
        if event.reason == "restored":  # 1101/1102: the socket stayed up; IB re-listed executions (heal)
            await self._catch_up()

    # ------------------------------------------------------------------ tickers

    async def watch_ticker(self, symbol: str, params: dict[str, Any] = {}) -> dict[str, Any]:
        """The next quote change of ``symbol`` (a live reqMktData line, shared with fetch_ticker's cache)."""
        market = await self._market(symbol)
        return await self._watch("ticker:" + market["symbol"], "ticker:" + market["symbol"],
                                 *self._ticker_subscription(market))

    def _ticker_subscription(self, market: dict[str, Any]) -> tuple[Any, Any]:
        contract = self._contract(market)

        async def start() -> None:
            await self._wire()
            self._ticker_markets[contract.conId] = market
            self.transport.stream(contract)

        def stop() -> None:
            self._ticker_markets.pop(contract.conId, None)
            self.transport.stop_stream(contract)

        return start, stop

    def handle_tickers(self, tickers: Any) -> None:
        """One batch of IB market data: resolve tickers, books and trades that changed in it."""
        hub = self.hub
        for ticker in tickers:
            con_id = ticker.contract.conId
            if ticker.ticks:
                market = self._ticker_markets.get(con_id)
                if market is not None:
                    parsed = self.parse_ib_ticker(ticker, market)
                    symbol = market["symbol"]
                    self.tickers[symbol] = parsed
                    hub.resolve(parsed, "ticker:" + symbol)
            if ticker.domTicks and con_id in self._book_markets:
                self._handle_book(ticker, *self._book_markets[con_id])
            if ticker.tickByTicks and con_id in self._trade_markets:
                self._handle_trades(ticker, self._trade_markets[con_id])

    # ------------------------------------------------------------------ order book

    async def watch_order_book(self, symbol: str, limit: int | None = None,
                               params: dict[str, Any] = {}) -> dict[str, Any]:
        """The book after its next change (reqMktDepth, ``limit`` rows; at most 10, IB's cap is 3 books)."""
        market = await self._market(symbol)
        contract = self._contract(market)
        rows = int(self.safe_integer(params, "rows", min(limit or 5, 10)))

        async def start() -> None:
            await self._wire()
            self._book_markets[contract.conId] = (market, limit)
            self.transport.depth_stream(contract, rows)

        def stop() -> None:
            self._book_markets.pop(contract.conId, None)
            self.transport.stop_depth(contract)

        key = "orderbook:" + market["symbol"]
        return await self._watch(key, key, start, stop)

    async def un_watch_order_book(self, symbol: str, params: dict[str, Any] = {}) -> Any:
        market = await self._market(symbol)
        return await self.hub.unsubscribe("orderbook:" + market["symbol"])

    def _handle_book(self, ticker: Any, market: dict[str, Any], limit: int | None) -> None:
        if not ticker.domBids or not ticker.domAsks:
            return  # the book is still being built (IB sends it one row at a time): not an update yet
        book = self.parse_ib_order_book(ticker.domBids, ticker.domAsks, ticker.time, market, limit)
        self.orderbooks[market["symbol"]] = book
        self.hub.resolve(book, "orderbook:" + market["symbol"])

    # ------------------------------------------------------------------ public trades

    async def watch_trades(self, symbol: str, since: int | None = None, limit: int | None = None,
                           params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """Prints as they happen (tick-by-tick AllLast). IB gives neither a trade id (ids are local sequence
        numbers) nor the aggressor: ``side`` is inferred from the quote (at or above the mid: buy) when
        the ticker is also watched, else by the tick rule (``info['sideInferred']``)."""
        market = await self._market(symbol)
        contract = self._contract(market)
        symbol = market["symbol"]

        async def start() -> None:
            await self._wire()
            if symbol not in self.trades:
                self.trades[symbol] = ArrayCache(self.stream_limit("tradesLimit"))
            self._trade_markets[contract.conId] = market
            self.transport.trade_stream(contract)

        def stop() -> None:
            self._trade_markets.pop(contract.conId, None)
            self.transport.stop_trades(contract)

        key = "trades:" + symbol
        trades = await self._watch(key, key, start, stop)
        return self._since_limit(trades, symbol, since, limit)

    async def un_watch_trades(self, symbol: str, params: dict[str, Any] = {}) -> Any:
        market = await self._market(symbol)
        return await self.hub.unsubscribe("trades:" + market["symbol"])

    def _handle_trades(self, ticker: Any, market: dict[str, Any]) -> None:
        symbol = market["symbol"]
        cache = self.trades.get(symbol)
        if cache is None:
            return
        for tick in ticker.tickByTicks:
            price = finite(getattr(tick, "price", None))
            if price is None:
                continue
            self._trade_seq += 1
            side = _aggressor(price, finite(ticker.bid), finite(ticker.ask), self._last_prints.get(symbol))
            self._last_prints[symbol] = (price, side)
            timestamp = to_ms(tick.time) or self.milliseconds()
            cache.append(self.safe_trade({
                "id": f"{timestamp}-{self._trade_seq}",
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "symbol": symbol,
                "order": None,
                "type": None,
                "takerOrMaker": None,
                "price": price,
                "amount": finite(tick.size),
                "cost": None,
                "side": side,
                "fee": None,
                "info": {"exchange": getattr(tick, "exchange", None), "sideInferred": True,
                         "specialConditions": getattr(tick, "specialConditions", None)},
            }, market))
        self.hub.resolve(cache, "trades:" + symbol)

    # ------------------------------------------------------------------ OHLCV

    async def watch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None,
                          limit: int | None = None, params: dict[str, Any] = {}) -> list[list[Any]]:
        """Bars as IB updates the forming one (reqHistoricalData keepUpToDate); ``params['price']`` as in
        fetch_ohlcv. The first call returns the first update after subscribing."""
        market = await self._market(symbol)
        contract = self._contract(market)
        bar_size = ib_bar_size(timeframe)
        what = self._what_to_show(market, params)
        use_rth = bool(self.safe_value(params, "useRTH", self.options.get("useRTH", False)))
        symbol = market["symbol"]
        key = f"ohlcv:{symbol}:{timeframe}"
        duration = ib_duration_for(self.parse_timeframe(timeframe) * 3, bar_size)

        async def start() -> None:
            await self._wire()
            self._bar_keys[(contract.conId, bar_size, what, use_rth)] = (symbol, timeframe)
            bars = await self.transport.bar_stream(contract, duration=duration, bar_size=bar_size, what=what,
                                                   use_rth=use_rth)
            cache = self._ohlcv_cache(symbol, timeframe)
            for bar in list(bars)[-3:]:
                cache.append(self.parse_ohlcv(bar, market))
            cache.getLimit(symbol, None)  # what was there before subscribing is not an update

        def stop() -> None:
            self._bar_keys.pop((contract.conId, bar_size, what, use_rth), None)
            self.transport.stop_bars(contract, bar_size=bar_size, what=what, use_rth=use_rth)

        cache = await self._watch(key, key, start, stop)
        return self._since_limit(cache, symbol, since, limit, by_symbol=False)

    async def un_watch_ohlcv(self, symbol: str, timeframe: str = "1m", params: dict[str, Any] = {}) -> Any:
        market = await self._market(symbol)
        return await self.hub.unsubscribe(f"ohlcv:{market['symbol']}:{timeframe}")

    def _ohlcv_cache(self, symbol: str, timeframe: str) -> ArrayCacheByTimestamp:
        by_timeframe = self.ohlcvs.setdefault(symbol, {})
        cache = by_timeframe.get(timeframe)
        if cache is None:
            cache = by_timeframe[timeframe] = ArrayCacheByTimestamp(self.stream_limit("OHLCVLimit"))
        return cache

    def handle_bars(self, bars: Any, has_new_bar: bool) -> None:
        key = (bars.contract.conId, bars.barSizeSetting, bars.whatToShow, bars.useRTH)
        target = self._bar_keys.get(key)
        if target is None or not bars:
            return
        symbol, timeframe = target
        cache = self._ohlcv_cache(symbol, timeframe)
        for bar in list(bars)[-2:] if has_new_bar and len(bars) > 1 else list(bars)[-1:]:
            cache.append(self.parse_ohlcv(bar))
        self.hub.resolve(cache, f"ohlcv:{symbol}:{timeframe}")

    # ------------------------------------------------------------------ orders

    async def watch_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                           params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """Every change of an order's state (status, fills, price or amount), as IB reports it."""
        if symbol is not None:
            symbol = (await self._market(symbol))["symbol"]
        message_hash = "orders" if symbol is None else "orders:" + symbol
        orders = await self._watch(message_hash, "orders", self._start_account_stream("orders"), sticky=True)
        return self._since_limit(orders, symbol, since, limit)

    async def un_watch_orders(self, symbol: str | None = None, params: dict[str, Any] = {}) -> Any:
        return await self.hub.unsubscribe("orders")

    def _start_account_stream(self, name: str) -> Any:
        async def start() -> None:
            await self._wire()
            await self._ready(ACCOUNT)
            if name == "orders" and self.orders is None:
                self.orders = ArrayCacheBySymbolById(self.stream_limit("ordersLimit"))
            if name == "myTrades" and self.myTrades is None:
                self.myTrades = ArrayCacheBySymbolById(self.stream_limit("tradesLimit"))
            if name == "positions" and self.positions is None:
                self.positions = ArrayCacheBySymbolBySide()
        return start

    def handle_order(self, trade: Any, catch_up: bool = False) -> None:
        market = self._market_by_con_id(trade.contract.conId)
        if market is None:
            return
        order = self.parse_ib_order(
            trade, market,
            cancel_requested=trade.order.orderId in self._cancel_requested,
            reduce_only=(trade.order.orderRef in self._reduce_only) or None,
        )
        fingerprint = _order_fingerprint(order)
        if self._order_seen.get(order["id"]) == fingerprint:
            return
        if catch_up and order["id"] not in self._order_seen:
            return  # not an order this stream has seen: history (another client's, or before the stream)
        self._order_seen[order["id"]] = fingerprint
        if self.orders is None:
            return
        self.orders.append(order)
        self.hub.resolve(self.orders, "orders")
        self.hub.resolve(self.orders, "orders:" + order["symbol"])

    # ------------------------------------------------------------------ my trades (fills)

    async def watch_my_trades(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                              params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """This account's fills, each once, with the commission folded in (see the module docstring)."""
        if symbol is not None:
            symbol = (await self._market(symbol))["symbol"]
        message_hash = "myTrades" if symbol is None else "myTrades:" + symbol
        trades = await self._watch(message_hash, "myTrades", self._start_account_stream("myTrades"), sticky=True)
        return self._since_limit(trades, symbol, since, limit)

    async def un_watch_my_trades(self, symbol: str | None = None, params: dict[str, Any] = {}) -> Any:
        return await self.hub.unsubscribe("myTrades")

    def handle_execution(self, trade: Any, fill: Any) -> None:
        exec_id = fill.execution.execId
        if exec_id in self._fills_seen or exec_id in self._fills_pending:
            return
        if fill.commissionReport is not None and fill.commissionReport.currency:
            self._deliver_fill(fill)
            return
        wait = float(self.options.get("commissionWait", 1.0))
        loop = asyncio.get_running_loop()
        self._fills_pending[exec_id] = loop.call_later(wait, self._deliver_fill, fill)

    def handle_commission(self, trade: Any, fill: Any, report: Any) -> None:
        exec_id = fill.execution.execId
        delivered = self._fill_trades.get(exec_id)
        if delivered is not None:  # the report came after the wait: fold it into the trade already out
            delivered["fee"] = {"cost": finite(report.commission) or 0.0, "currency": report.currency}
            delivered["fees"] = [delivered["fee"]]
            return
        self._deliver_fill(fill)

    def _deliver_fill(self, fill: Any) -> None:
        exec_id = fill.execution.execId
        timer = self._fills_pending.pop(exec_id, None)
        if timer is not None:
            timer.cancel()
        if not self._fills_seen.add(exec_id):
            return
        market = self._market_by_con_id(fill.contract.conId)
        if market is None or self.myTrades is None:
            return
        parsed = self.parse_ib_trade(fill, market)
        self._fill_trades[exec_id] = parsed
        if len(self._fill_trades) > self.stream_limit("tradesLimit"):
            self._fill_trades.pop(next(iter(self._fill_trades)))
        self.myTrades.append(parsed)
        self.hub.resolve(self.myTrades, "myTrades")
        self.hub.resolve(self.myTrades, "myTrades:" + parsed["symbol"])

    # ------------------------------------------------------------------ balance and positions

    async def watch_balance(self, params: dict[str, Any] = {}) -> dict[str, Any]:
        """The balance after IB's next account update (cash, holdings), built from what the socket holds."""
        return await self._watch("balance", "balance", self._start_account_stream("balance"))

    async def un_watch_balance(self, params: dict[str, Any] = {}) -> Any:
        return await self.hub.unsubscribe("balance")

    def handle_account_value(self, value: Any) -> None:
        self._mark_account_dirty()

    def handle_position(self, position: Any) -> None:
        self._mark_account_dirty()
        if self.positions is not None:
            self._spawn_stream_task(self._publish_position(position))

    def _mark_account_dirty(self) -> None:
        # IB sends account values one message each: rebuild once per burst, on the next loop turn.
        if self._account_dirty or not self.hub.watched("balance"):
            return
        self._account_dirty = True
        self._spawn_stream_task(self._publish_balance())

    def _spawn_stream_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self.__dict__.setdefault("_stream_tasks", set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _publish_balance(self) -> None:
        await asyncio.sleep(0)  # let the rest of this burst of account messages land first
        self._account_dirty = False
        try:
            balance = await self._build_balance(self.transport.account_values(), self.transport.held_positions())
        except Exception as exc:  # noqa: BLE001 - a balance that cannot be built now is built next time
            log.debug("%s: balance not rebuilt: %s", self.id, exc)
            return
        self.balance = balance
        self.hub.resolve(balance, "balance")

    async def watch_positions(self, symbols: list[str] | None = None, since: int | None = None,
                              limit: int | None = None, params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """Positions as IB reports their changes (reqPositions, subscribed at connect)."""
        if symbols:
            symbols = [(await self._market(s))["symbol"] for s in symbols]
        positions = await self._watch("positions", "positions", self._start_account_stream("positions"), sticky=True)
        return self.filter_by_symbols_since_limit(positions, symbols, since, limit, True)

    async def un_watch_positions(self, symbols: list[str] | None = None, params: dict[str, Any] = {}) -> Any:
        return await self.hub.unsubscribe("positions")

    async def _publish_position(self, position: Any) -> None:
        rows = [p for p in self.transport.held_positions() if p.contract.conId == position.contract.conId]
        if not rows:
            rows = [position]
        try:
            parsed = await self._build_positions(rows)
        except Exception as exc:  # noqa: BLE001
            log.debug("%s: position not parsed: %s", self.id, exc)
            return
        if not parsed and position.position == 0:
            market = self._market_by_con_id(position.contract.conId)
            if market is None:
                return
            parsed = [self.parse_ib_position(0.0, position.avgCost, market, mark=None, unrealized=None,
                                             info={"conId": position.contract.conId}, timestamp=self.milliseconds())]
        if self.positions is None:
            return
        for item in parsed:
            self.positions.append(item)
        self.hub.resolve(self.positions, "positions")

    async def close(self) -> None:
        for timer in self._fills_pending.values():
            timer.cancel()
        self._fills_pending.clear()
        if self._wired and self._transport is not None:
            for event, handler in (
                ("pendingTickersEvent", self.handle_tickers), ("barUpdateEvent", self.handle_bars),
                ("orderStatusEvent", self.handle_order), ("openOrderEvent", self.handle_order),
                ("execDetailsEvent", self.handle_execution), ("commissionReportEvent", self.handle_commission),
                ("accountValueEvent", self.handle_account_value), ("positionEvent", self.handle_position),
            ):
                self._transport.unlisten(event, handler)
            self._wired = False
        await super().close()


def _order_fingerprint(order: dict[str, Any]) -> tuple[Any, ...]:
    """What makes an order update news. IB's acknowledgement is one, although the ccxt status stays
    ``open``: the order placed and the order acknowledged differ (``info['latency']`` gains its ack)."""
    acknowledged = (order.get("info") or {}).get("status") not in _UNACKNOWLEDGED
    return (order["status"], order["filled"], order["remaining"], order["price"], order["amount"],
            order["average"], order["triggerPrice"], len(order.get("trades") or ()), acknowledged)


_UNACKNOWLEDGED = frozenset({"PendingSubmit", "ApiPending"})


def _aggressor(price: float, bid: float | None, ask: float | None, last: tuple[float, str] | None) -> str:
    """The likely aggressor of a print IB reports without one: quote rule, then tick rule."""
    if bid is not None and ask is not None and bid > 0 and ask > 0:
        mid = (bid + ask) / 2
        if price != mid:
            return "buy" if price > mid else "sell"
    if last is not None:
        if price != last[0]:
            return "buy" if price > last[0] else "sell"
        return last[1]
    return "buy"
