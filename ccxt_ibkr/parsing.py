"""ib_async objects -> ccxt structures.

One ``parse_*`` per unified structure, as in a ccxt exchange file: each reads the IB object,
builds the ccxt dict with strings where precision matters, ends in ccxt's own ``safe_*`` builder
(so the output passes ccxt's validators) and keeps the raw payload in ``info``. A sample of the
IB object is pasted above each parser, as it arrives from TWS (values from the wire captures in
reference/ib-protocol.md).

This is a mixin placed before ``ccxt.async_support.Exchange`` so the parsers are methods, the
way ccxt bots and ccxt's helpers expect (``self.safe_order`` etc.), while the IB object shapes
stay out of ``exchange.py``. The readings of a trade's state that every room shares are here too
(:func:`effective_status`, :func:`is_done`, :func:`is_acknowledged`, :func:`commissions_in`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from normalization.errors import ib_is_warning
from normalization.statuses import IB_DONE_STATES, ib_order_status
from normalization.tickers import hold_in_range

from ._ib import ContractDetails, Fill, Ticker, Trade

#: IB orderType -> ccxt order type; stops keep their trigger in ``triggerPrice``.
ORDER_TYPES = {"MKT": "market", "LMT": "limit", "STP": "market", "STP LMT": "limit", "MIT": "market", "LIT": "limit",
               "TRAIL": "market", "TRAIL LIMIT": "limit"}
#: IB secType -> ccxt market type.
MARKET_TYPES = {"STK": "spot", "CASH": "spot", "CRYPTO": "spot", "CFD": "swap", "FUT": "future", "OPT": "option"}
UNSET_DOUBLE = 1.7976931348623157e308


def finite(value: Any) -> float | None:
    """IB's "no value" comes as nan, UNSET_DOUBLE or -1 (sizes); ccxt wants None."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number) or math.isinf(number) or abs(number) >= UNSET_DOUBLE:
        return None
    return number


def positive(value: Any) -> float | None:
    number = finite(value)
    return number if number is not None and number > 0 else None


def num_str(value: Any) -> str | None:
    """A float as the shortest string that round-trips (what ccxt's Precise math expects)."""
    number = finite(value)
    return None if number is None else repr(number)


def to_ms(when: Any) -> int | None:
    """datetime (aware or naive UTC) or date (a daily bar: UTC midnight of that day) -> epoch ms."""
    if when is None:
        return None
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return int(round(when.timestamp() * 1000))
    if isinstance(when, dt.date):
        return int(dt.datetime(when.year, when.month, when.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
    if isinstance(when, (int, float)):
        return int(when * 1000)
    return None


def effective_status(trade: Trade) -> str:
    """IB's status of a trade, minus the client library's guesses.

    ib_async marks a live order Cancelled when an informational code arrives for it (10349 "TIF was
    set to DAY based on order preset", ib-protocol.md §3; fixed only on its unreleased branch). Such a
    Cancelled has no orderStatus from TWS behind it: the order is still working, so the status before
    it stands. A real cancel (202 or TWS's own orderStatus) is kept. ib_async 2.x marks the order
    ``ValidationError`` on any warning instead ("the order is STILL LIVE at the broker", its own comment),
    e.g. on 399 "will not be placed at the exchange until the open": the status before it stands too.
    """
    status = trade.orderStatus.status
    if status in ("Cancelled", "ValidationError") and trade.log:
        last = trade.log[-1]
        code = getattr(last, "errorCode", 0)
        if last.status == status and code and code != 202 and ib_is_warning(code):
            earlier = (e.status for e in reversed(trade.log[:-1]) if e.status not in ("Cancelled", "ValidationError"))
            return next(earlier, "Submitted")
    return status


#: IB's statuses that acknowledge an order (besides the done ones).
ACK_STATES = frozenset({"PreSubmitted", "Submitted", "Filled"})


def is_done(trade: Trade) -> bool:
    """IB is done with the order (Inactive too, in both client libraries)."""
    return effective_status(trade) in IB_DONE_STATES


def commissions_in(trade: Trade) -> bool:
    return all(f.commissionReport is not None and f.commissionReport.currency for f in trade.fills)


def is_acknowledged(trade: Trade) -> bool:
    return effective_status(trade) in ACK_STATES or is_done(trade)


#: Account values reported in ``fetch_balance()['info']['account']`` (base currency): what a bot sizing
#: orders or watching margin needs, which ccxt's free/used/total cannot hold.
ACCOUNT_FIGURES = ("NetLiquidation", "TotalCashValue", "BuyingPower", "AvailableFunds", "ExcessLiquidity",
                   "InitMarginReq", "MaintMarginReq")


def contract_info(contract: Any) -> dict[str, Any]:
    return {
        "conId": contract.conId,
        "symbol": contract.symbol,
        "secType": contract.secType,
        "lastTradeDateOrContractMonth": contract.lastTradeDateOrContractMonth,
        "multiplier": contract.multiplier,
        "exchange": contract.exchange,
        "primaryExchange": contract.primaryExchange,
        "currency": contract.currency,
        "localSymbol": contract.localSymbol,
        "tradingClass": contract.tradingClass,
    }



def parse_ib_bars(bars: Iterable[Any]) -> list[list[Any]]:
    """IB bars as ccxt OHLCV rows ``[ms, open, high, low, close, volume]``, in one tight loop: a
    request brings hundreds, and per-bar method calls were a visible part of fetch_ohlcv's cost.

    Intraday bars come with an aware datetime (formatDate=2), daily ones with a date, read as UTC
    midnight. MIDPOINT/BID/ASK bars carry volume -1: reported as None (IB has no volume for them).
    """
    rows: list[list[Any]] = []
    append = rows.append
    for bar in bars:
        date = bar.date
        if date.__class__ is dt.datetime and date.tzinfo is not None:
            timestamp = round(date.timestamp() * 1000)
        else:
            timestamp = to_ms(date)
        volume = bar.volume
        append([timestamp, float(bar.open), float(bar.high), float(bar.low), float(bar.close),
                float(volume) if volume is not None and 0 <= volume < UNSET_DOUBLE else None])
    return rows

class IBParsing:
    """Parsers shared by every IBTrader face (mixed into the async class)."""

    def ib_client_id(self) -> int | None:
        """This connection's clientId: order ids are only unique per clientId (overridden)."""
        return None

    def ib_order_id(self, order_id: int, client_id: int, perm_id: int) -> str:
        """ccxt id of an order: IB's permId, the only id stable across clients, sessions and restarts.

        An order must keep one id for its whole life (bots key their state by it), so the orderId,
        unique only per clientId and session, is used only before TWS has assigned a permId.
        ``fetch_order`` / ``cancel_order`` still accept an orderId or a clientOrderId.
        """
        if perm_id:
            return str(perm_id)
        return str(order_id)

    # ------------------------------------------------------------------ markets

    # ContractDetails(contract=Contract(secType='STK', conId=265598, symbol='AAPL', exchange='SMART',
    #   primaryExchange='NASDAQ', currency='USD', localSymbol='AAPL', tradingClass='NMS'),
    #   marketName='NMS', minTick=0.01, orderTypes='ACTIVETIM,...,LMT,MKT,STP,STPLMT,TRAIL',
    #   validExchanges='SMART,NASDAQ,ARCA,...', longName='APPLE INC', timeZoneId='US/Eastern',
    #   tradingHours='20250402:0400-20250402:2000;...', liquidHours='20250402:0930-20250402:1600;...',
    #   minSize=1.0, sizeIncrement=1.0, suggestedSizeIncrement=1.0, ...)
    def parse_ib_market(self, details: ContractDetails, symbol: str) -> dict[str, Any]:
        contract = details.contract
        sec_type = contract.secType
        kind = MARKET_TYPES.get(sec_type, "spot")
        base, _, rest = symbol.partition("/")
        quote = rest.split(":")[0]
        tick = positive(details.minTick) or 0.01
        increment = positive(getattr(details, "sizeIncrement", None))
        if increment is None:
            increment = 1.0 if sec_type in ("STK", "FUT", "OPT", "CFD") else 0.01
        min_size = positive(getattr(details, "minSize", None)) or increment
        contract_kind = kind != "spot"
        multiplier = positive(contract.multiplier) or 1.0
        expiry = None
        if sec_type in ("FUT", "OPT") and contract.lastTradeDateOrContractMonth:
            day = contract.lastTradeDateOrContractMonth.split(" ")[0]
            real = getattr(details, "realExpirationDate", "") or day
            expiry = to_ms(dt.datetime.strptime(real[:8], "%Y%m%d").replace(tzinfo=dt.timezone.utc))
        info = contract_info(contract)
        info.update(
            {
                "minTick": details.minTick,
                "minSize": getattr(details, "minSize", None),
                "sizeIncrement": getattr(details, "sizeIncrement", None),
                "longName": details.longName,
                "marketName": details.marketName,
                "orderTypes": details.orderTypes,
                "validExchanges": details.validExchanges,
                "timeZoneId": details.timeZoneId,
                "tradingHours": details.tradingHours,
                "liquidHours": details.liquidHours,
                "contractMonth": details.contractMonth,
                "realExpirationDate": getattr(details, "realExpirationDate", ""),
            }
        )
        return self.safe_market_structure(  # type: ignore[attr-defined]
            {
                "id": str(contract.conId),
                "symbol": symbol,
                "base": base,
                "quote": quote,
                "settle": quote if contract_kind else None,
                "baseId": contract.symbol,
                "quoteId": contract.currency,
                "settleId": contract.currency if contract_kind else None,
                "type": kind,
                "spot": kind == "spot",
                "margin": False,
                "swap": kind == "swap",
                "future": kind == "future",
                "option": kind == "option",
                "active": True,
                "contract": contract_kind,
                "linear": True if contract_kind else None,
                "inverse": False if contract_kind else None,
                "contractSize": multiplier if contract_kind else None,
                "expiry": expiry,
                "expiryDatetime": self.iso8601(expiry) if expiry is not None else None,  # type: ignore[attr-defined]
                "strike": positive(getattr(contract, "strike", None)) if kind == "option" else None,
                "optionType": ({"C": "call", "P": "put"}.get(contract.right[:1]) if kind == "option" else None),
                "precision": {"amount": increment, "price": tick},
                "limits": {
                    "amount": {"min": min_size, "max": None},
                    "price": {"min": tick, "max": None},
                    "cost": {"min": None, "max": None},
                    "leverage": {"min": None, "max": None},
                },
                "marginModes": {"cross": True, "isolated": False},
                "created": None,
                "info": info,
            }
        )

    # ------------------------------------------------------------------ tickers

    # Ticker(contract=Stock(conId=265598, symbol='AAPL', ...), time=datetime(2025, 4, 2, 14, 30, tz=UTC),
    #   marketDataType=1, minTick=0.01, bid=189.99, bidSize=300.0, ask=190.01, askSize=200.0,
    #   last=190.0, lastSize=100.0, volume=51234.0, high=191.2, low=188.4, close=189.1)
    # FX snapshots carry no last (and volume -1): ccxt's last/close is then the bid/ask mid.
    def parse_ib_ticker(self, ticker: Ticker, market: Mapping[str, Any]) -> dict[str, Any]:
        bid, ask = positive(ticker.bid), positive(ticker.ask)
        last = positive(ticker.last)
        if last is None and bid is not None and ask is not None:
            last = (bid + ask) / 2
        timestamp = to_ms(ticker.time) or self.milliseconds()  # type: ignore[attr-defined]
        volume = finite(ticker.volume)
        result = self.safe_ticker(  # type: ignore[attr-defined]
            {
                "symbol": market["symbol"],
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),  # type: ignore[attr-defined]
                "high": num_str(positive(ticker.high)),
                "low": num_str(positive(ticker.low)),
                "bid": num_str(bid),
                "bidVolume": num_str(positive(ticker.bidSize)),
                "ask": num_str(ask),
                "askVolume": num_str(positive(ticker.askSize)),
                "vwap": num_str(positive(getattr(ticker, "vwap", None))),
                "open": num_str(positive(getattr(ticker, "open", None))),
                "close": num_str(last),
                "last": num_str(last),
                "previousClose": num_str(positive(ticker.close)),
                "change": None,
                "percentage": None,
                "average": None,
                "baseVolume": num_str(volume) if volume is not None and volume >= 0 else None,
                "quoteVolume": None,
                "info": {
                    "conId": market["info"].get("conId"),
                    "marketDataType": ticker.marketDataType,
                    "bid": ticker.bid,
                    "ask": ticker.ask,
                    "last": ticker.last,
                    "close": ticker.close,
                    "volume": ticker.volume,
                },
            },
            market,
        )
        # IB's high / low are the regular session's: before the open the quote lies outside them.
        return hold_in_range(result, (result.get("close"),))

    # ------------------------------------------------------------------ order book

    # Ticker.domBids = [DOMLevel(price=189.99, size=300.0, marketMaker=''), ...]; domAsks likewise
    # (copied out of the depth Ticker before the subscription is cancelled).
    def parse_ib_order_book(
        self, dom_bids: list[Any], dom_asks: list[Any], when: Any, market: Mapping[str, Any], limit: int | None
    ) -> dict[str, Any]:
        bids = [[level.price, level.size] for level in dom_bids if positive(level.price)]
        asks = [[level.price, level.size] for level in dom_asks if positive(level.price)]
        timestamp = to_ms(when) or self.milliseconds()  # type: ignore[attr-defined]
        book = self.parse_order_book(  # type: ignore[attr-defined]
            {"bids": bids, "asks": asks}, market["symbol"], timestamp, "bids", "asks", 0, 1
        )
        if limit:
            book["bids"], book["asks"] = book["bids"][:limit], book["asks"][:limit]
        return book

    # ------------------------------------------------------------------ OHLCV

    # BarData(date=datetime(2025, 4, 2, 13, 30, tzinfo=UTC), open=190.0, high=190.4, low=189.8,
    #   close=190.2, volume=1200.0, average=190.1, barCount=57)   # formatDate=2, intraday
    # BarData(date=date(2025, 4, 2), ...)                          # daily bars: a date, read as UTC midnight
    # MIDPOINT/BID/ASK bars carry volume -1: reported as None (IB has no volume for them).
    def parse_ohlcv(self, ohlcv: Any, market: Any = None) -> list:
        if isinstance(ohlcv, list):
            return super().parse_ohlcv(ohlcv, market)  # type: ignore[misc]
        return parse_ib_bars([ohlcv])[0]

    # ------------------------------------------------------------------ trades (fills)

    # Fill(contract=Stock(conId=265598, symbol='AAPL', ...),
    #   execution=Execution(execId='0000e215.656d0000.01.01', time=datetime(2025,4,2,14,30,1,tz=UTC),
    #     acctNumber='DU1234567', exchange='ISLAND', side='BOT', shares=10.0, price=190.01, permId=1351823368,
    #     clientId=2, orderId=215, cumQty=10.0, avgPrice=190.01, orderRef='ccxt-4f1c...', lastLiquidity=2),
    #   commissionReport=CommissionReport(execId='0000e215.656d0000.01.01', commission=1.0, currency='USD',
    #     realizedPNL=0.0), time=datetime(...))
    def parse_ib_trade(self, fill: Fill, market: Mapping[str, Any]) -> dict[str, Any]:
        execution = fill.execution
        report = fill.commissionReport
        timestamp = to_ms(execution.time) or to_ms(fill.time)
        fee = None
        if report is not None and report.currency:
            fee = {"cost": finite(report.commission) or 0.0, "currency": report.currency}
        liquidity = getattr(execution, "lastLiquidity", 0)
        return self.safe_trade(  # type: ignore[attr-defined]
            {
                "id": execution.execId,
                "order": self.ib_order_id(execution.orderId, execution.clientId, execution.permId),
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),  # type: ignore[attr-defined]
                "symbol": market["symbol"],
                "type": None,
                "side": "buy" if execution.side == "BOT" else "sell",
                "takerOrMaker": {1: "maker", 2: "taker"}.get(liquidity),
                "price": num_str(execution.price),
                "amount": num_str(execution.shares),
                "cost": None,
                "fee": fee,
                "info": {
                    "execId": execution.execId,
                    "orderId": execution.orderId,
                    "permId": execution.permId,
                    "clientId": execution.clientId,
                    "orderRef": execution.orderRef,
                    "exchange": execution.exchange,
                    "acctNumber": execution.acctNumber,
                    "cumQty": execution.cumQty,
                    "avgPrice": execution.avgPrice,
                    "commission": report.commission if report is not None and report.currency else None,
                    "realizedPNL": report.realizedPNL if report is not None and report.currency else None,
                },
            },
            market,
        )

    # ------------------------------------------------------------------ orders

    # Trade(contract=Stock(conId=265598, symbol='AAPL', ...),
    #   order=Order(orderId=216, clientId=2, permId=1351823369, action='BUY', totalQuantity=10.0,
    #     orderType='LMT', lmtPrice=187.5, auxPrice=0.0, tif='GTC', orderRef='ccxt-4f1c...', parentId=0),
    #   orderStatus=OrderStatus(orderId=216, status='Submitted', filled=0.0, remaining=10.0,
    #     avgFillPrice=0.0, permId=1351823369, whyHeld=''),
    #   fills=[...], log=[TradeLogEntry(time=..., status='PendingSubmit', message='', errorCode=0), ...])
    def parse_ib_order(
        self,
        trade: Trade,
        market: Mapping[str, Any],
        *,
        cancel_requested: bool = False,
        reduce_only: bool | None = None,
    ) -> dict[str, Any]:
        order, status = trade.order, trade.orderStatus
        amount = finite(order.totalQuantity) or 0.0
        fills = [f for f in trade.fills if f.execution.shares]
        filled_from_fills = sum(f.execution.shares for f in fills)
        filled = max(finite(status.filled) or 0.0, filled_from_fills)
        remaining = max(amount - filled, 0.0)
        order_type = order.orderType
        is_trigger = order_type in ("STP", "STP LMT", "MIT", "LIT")
        price = finite(order.lmtPrice) if order_type in ("LMT", "STP LMT", "LIT") else None
        trigger = positive(order.auxPrice) if is_trigger else None  # 0: no trigger set
        if order_type in ("TRAIL", "TRAIL LIMIT"):  # the stop where it stands (auxPrice is the trailing amount)
            trigger = positive(finite(order.trailStopPrice))
        average = positive(status.avgFillPrice)
        if average is None and filled_from_fills:
            average = sum(f.execution.shares * f.execution.price for f in fills) / filled_from_fills
        timestamp = to_ms(trade.log[0].time) if trade.log else None
        last_trade = max((to_ms(f.execution.time) or 0 for f in fills), default=None) or None
        if not fills and not filled and average is None and amount > 0:
            # Unfilled (every order as it is placed, most open orders): the fields safe_order would derive.
            parsed = self._unfilled_order_fields(trade, market, timestamp, order_type, price, trigger, amount,
                                                 reduce_only)
        else:
            parsed = self._order_fields(trade, market, timestamp, order_type, price, trigger, amount, filled,
                                        remaining, average, last_trade, fills, reduce_only)
        return self._ib_order_state(parsed, trade, filled, remaining, cancel_requested)

    def _order_fields(
        self, trade: Trade, market: Mapping[str, Any], timestamp: int | None, order_type: str, price: float | None,
        trigger: float | None, amount: float, filled: float, remaining: float, average: float | None,
        last_trade: int | None, fills: list[Any], reduce_only: bool | None,
    ) -> dict[str, Any]:
        """Everything but status, id and info, through ccxt's ``safe_order`` (the reference)."""
        order = trade.order
        fee = None
        reported = [f.commissionReport for f in fills if f.commissionReport is not None and f.commissionReport.currency]
        if reported:
            fee = {"cost": sum(r.commission for r in reported), "currency": reported[0].currency}
        return self.safe_order(  # type: ignore[attr-defined, no-any-return]
            {
                "id": None,  # id, status, info: _ib_order_state
                "status": None,
                "clientOrderId": order.orderRef or None,
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp) if timestamp else None,  # type: ignore[attr-defined]
                "lastTradeTimestamp": last_trade,
                "symbol": market["symbol"],
                "type": ORDER_TYPES.get(order_type, order_type.lower()),
                "timeInForce": order.tif or None,
                "postOnly": False,
                "reduceOnly": reduce_only,
                "side": order.action.lower() if order.action else None,
                "price": num_str(price),
                "triggerPrice": num_str(trigger),
                "amount": num_str(amount),
                "filled": num_str(filled),
                "remaining": num_str(remaining),
                "cost": None,
                "average": num_str(average),
                "fee": fee,
                "trades": [self.parse_ib_trade(f, market) for f in fills],
            },
            market,
        )

    def _unfilled_order_fields(
        self, trade: Trade, market: Mapping[str, Any], timestamp: int | None, order_type: str, price: float | None,
        trigger: float | None, amount: float, reduce_only: bool | None,
    ) -> dict[str, Any]:
        """What :meth:`_order_fields` gives for an order with nothing filled (amount > 0), built directly.

        ``safe_order`` costs ~100 us per call in place, and an order is parsed right after every send;
        for an unfilled order its rules reduce to these few (property-tested against it): cost is 0 when
        there is a price, a missing timeInForce on a plain market order reads IOC, no fees."""
        order = trade.order
        kind = ORDER_TYPES.get(order_type, order_type.lower())
        price = price or None  # safe_order omits a zero price
        tif = order.tif or None
        if tif is None and trigger is None and kind == "market":
            tif = "IOC"
        return {
            "id": None,
            "status": None,
            "clientOrderId": order.orderRef or None,
            "timestamp": timestamp,
            "datetime": self.iso8601(timestamp) if timestamp else None,  # type: ignore[attr-defined]
            "lastTradeTimestamp": None,
            "lastUpdateTimestamp": None,
            "symbol": market["symbol"],
            "type": kind,
            "timeInForce": tif,
            "postOnly": False,
            "reduceOnly": reduce_only,
            "side": order.action.lower() if order.action else None,
            "price": price,
            "triggerPrice": trigger,
            "stopPrice": trigger,
            "takeProfitPrice": None,
            "stopLossPrice": None,
            "amount": amount,
            "filled": 0.0,
            "remaining": amount,
            "cost": 0.0 if price is not None else None,
            "average": None,
            "fee": None,
            "fees": [],
            "trades": [],
        }

    def refresh_ib_order(
        self, parsed: dict[str, Any], trade: Trade, market: Mapping[str, Any], *, reduce_only: bool | None = None
    ) -> dict[str, Any]:
        """``parsed`` (from an earlier state of ``trade``) brought up to date, cheaply when possible.

        Placement parses the order right after sending it, while IB is still working on it, so the
        acknowledgement itself only has to refresh what it can change without a fill: status, id
        (permId), info and lastUpdateTimestamp. A fill or a new size parses the order afresh.
        """
        status = trade.orderStatus
        filled = finite(status.filled) or 0.0
        amount = finite(trade.order.totalQuantity) or 0.0
        if trade.fills or filled or parsed["filled"] or parsed["amount"] != amount:
            return self.parse_ib_order(trade, market, reduce_only=reduce_only)
        return self._ib_order_state(dict(parsed), trade, 0.0, amount, False)

    def _ib_order_state(
        self, parsed: dict[str, Any], trade: Trade, filled: float, remaining: float, cancel_requested: bool
    ) -> dict[str, Any]:
        """The fields of an order that move without a fill: status, id, info, lastUpdateTimestamp.

        ``safe_order`` derives nothing from them once amount, filled and remaining are given, so they
        can be set after it (see refresh_ib_order)."""
        order, status = trade.order, trade.orderStatus
        log = trade.log
        codes = [entry.errorCode for entry in log if getattr(entry, "errorCode", 0)]
        cancel_requested = cancel_requested or any(entry.status == "PendingCancel" for entry in log)
        ib_status = effective_status(trade)
        last_message = next((e for e in reversed(log) if getattr(e, "errorCode", 0)), None)
        perm_id = order.permId or status.permId
        parsed["id"] = self.ib_order_id(order.orderId, order.clientId, perm_id)
        parsed["lastUpdateTimestamp"] = to_ms(log[-1].time) if log else None
        parsed["status"] = ib_order_status(
            ib_status,
            filled=filled,
            remaining=remaining,
            error_codes=codes,
            why_held=status.whyHeld or "",
            tif=order.tif or "",
            cancel_requested=cancel_requested,
        )
        parsed["info"] = {
            "orderId": order.orderId,
            "permId": perm_id,
            "clientId": order.clientId,
            "parentId": order.parentId,
            "orderRef": order.orderRef,
            "orderType": order.orderType,
            "tif": order.tif,
            "ocaGroup": order.ocaGroup,
            "status": ib_status,
            "whyHeld": status.whyHeld,
            "errorCode": last_message.errorCode if last_message else None,
            "message": last_message.message if last_message else None,
            "advancedError": getattr(trade, "advancedError", ""),
            "conId": trade.contract.conId,
            "latency": self._order_latency(trade),  # type: ignore[attr-defined]  # ccxt_ibkr.orders
        }
        return parsed

    # ------------------------------------------------------------------ positions

    # PortfolioItem(contract=Stock(conId=265598, symbol='AAPL', ...), position=10.0, marketPrice=190.2,
    #   marketValue=1902.0, averageCost=190.11, unrealizedPNL=0.9, realizedPNL=0.0, account='DU1234567')
    # Position(account='DU1234567', contract=..., position=-2.0, avgCost=275012.5)   # ES: avgCost = price * 50
    def parse_ib_position(
        self, quantity: float, avg_cost: float, market: Mapping[str, Any], *, mark: float | None,
        unrealized: float | None, info: Mapping[str, Any], timestamp: int,
    ) -> dict[str, Any]:
        size = positive(market.get("contractSize")) or 1.0
        contracts = abs(quantity)
        entry = (finite(avg_cost) or 0.0) / size
        mark = positive(mark) or entry
        if unrealized is None:
            unrealized = (mark - entry) * quantity * size
        collateral = contracts * size * entry
        notional = contracts * size * mark
        return self.safe_position(  # type: ignore[attr-defined]
            {
                "info": dict(info),
                "id": None,
                "symbol": market["symbol"],
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),  # type: ignore[attr-defined]
                "lastUpdateTimestamp": timestamp,
                "hedged": False,
                "side": "long" if quantity > 0 else "short",
                "contracts": contracts,
                "contractSize": size,
                "entryPrice": entry,
                "markPrice": mark,
                "lastPrice": mark,
                "notional": notional,
                "leverage": 1,
                "collateral": collateral,
                "initialMargin": collateral,
                "initialMarginPercentage": 1.0,
                "maintenanceMargin": None,
                "maintenanceMarginPercentage": None,
                "unrealizedPnl": unrealized,
                "realizedPnl": finite(info.get("realizedPNL")),
                "liquidationPrice": None,
                "marginMode": "cross",
                "marginRatio": None,
                "percentage": (unrealized / collateral * 100) if collateral else 0.0,
                "stopLossPrice": None,
                "takeProfitPrice": None,
            }
        )

    # ------------------------------------------------------------------ balance

    # AccountValue(account='DU1234567', tag='CashBalance', value='98099.89', currency='USD', modelCode='')
    # AccountValue(account='DU1234567', tag='AvailableFunds', value='97148.84', currency='USD', modelCode='')
    def parse_ib_balance(
        self,
        values: Iterable[Any],
        holdings: Mapping[str, tuple[float, float]],
        timestamp: int,
    ) -> dict[str, Any]:
        """Cash per currency from ``CashBalance``; the base currency's free part from ``AvailableFunds``;
        ``holdings`` maps a base code (``AAPL``) to (total, used) so a spot bot sees what it bought."""
        cash: dict[str, float] = {}
        available: dict[str, float] = {}
        raw: list[dict[str, str]] = []
        figures: dict[str, Any] = {}
        for value in values:
            if value.currency in ("", "BASE"):
                continue
            if value.tag in ("CashBalance", *ACCOUNT_FIGURES):
                raw.append({"tag": value.tag, "value": value.value, "currency": value.currency})
            number = finite(value.value)
            if number is None:
                continue
            if value.tag == "CashBalance":
                cash[value.currency] = number
            elif value.tag == "AvailableFunds":
                available[value.currency] = number
            if value.tag in ACCOUNT_FIGURES:
                figures[value.tag] = number
                figures["currency"] = value.currency
        info = {"accountValues": raw, "account": figures}
        result: dict[str, Any] = {"info": info, "timestamp": timestamp, "datetime": self.iso8601(timestamp)}  # type: ignore[attr-defined]
        for code, total in cash.items():
            account = self.account()  # type: ignore[attr-defined]
            if total < 0:
                account["free"], account["used"], account["total"], account["debt"] = "0", "0", "0", num_str(-total)
            else:
                free = min(max(available.get(code, total), 0.0), total)
                account["free"], account["used"] = num_str(free), num_str(total - free)
                account["total"] = num_str(total)
            result[code] = account
        for code, (total, used) in holdings.items():
            if total <= 0:
                continue
            account = self.account()  # type: ignore[attr-defined]
            used = min(max(used, 0.0), total)
            account["free"], account["used"], account["total"] = num_str(total - used), num_str(used), num_str(total)
            result[code] = account
        return self.safe_balance(result)  # type: ignore[attr-defined]
