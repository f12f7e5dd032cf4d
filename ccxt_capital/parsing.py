"""Capital.com JSON -> ccxt structures.

One ``parse_*`` per unified structure, as in ccxt's exchange files: each reads the broker's
fields with the ``safe_*`` accessors, ends in ccxt's own builder (``safe_market``-structure,
``safe_ticker``, ``safe_order``, ``safe_trade``, ``safe_position``, ``safe_balance``,
``safe_ledger_entry``) and keeps the raw JSON in ``info``. A sample response sits above each
parser. The mixin is shared by nothing but the async exchange class (the sync face forwards to
it), and it does no I/O.

Capital reports times as zone-less ISO strings; the ``...UTC`` twins are used, read as UTC.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any

from ccxt.base.precise import Precise

from normalization.fees import capital_fee
from normalization.statuses import capital_order_status
from normalization.symbols import capital_epic_to_symbol, parse_symbol
from normalization.tickers import hold_in_range

__all__ = ["CapitalParsing", "ORDER_TYPES", "SIDES", "capital_time"]

#: Capital's direction <-> ccxt side.
SIDES = {"BUY": "buy", "SELL": "sell"}
DIRECTIONS = {"buy": "BUY", "sell": "SELL"}
#: Working-order types <-> ccxt order types.
ORDER_TYPES = {"LIMIT": "limit", "STOP": "stop"}
#: Activity actions that are executions (one fill each).
FILL_ACTIONS = ("POSITION_OPENED", "POSITION_CLOSED", "POSITION_PARTIALLY_CLOSED")
#: Transaction types -> ccxt ledger entry types.
LEDGER_TYPES = {
    "TRADE": "trade",
    "SWAP": "fee",
    "TRADE_COMMISSION": "fee",
    "COMMISSION": "fee",
    "DEPOSIT": "transaction",
    "WITHDRAWAL": "transaction",
    "DIVIDEND": "rebate",
    "TRANSFER": "transfer",
    "ADJUSTMENT": "adjustment",
}


def capital_time(ms: int | float) -> str:
    """Epoch ms -> the API's query format ``YYYY-MM-DDTHH:MM:SS`` (UTC, no zone; a ``Z`` is refused)."""
    return datetime.fromtimestamp(int(ms) // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _side(pair: Any, price: str) -> float | None:
    """One bar price: the bid, the ask, or their mid (the default), from ``{"bid": .., "ask": ..}``."""
    if not isinstance(pair, dict):
        return None
    bid, ask = pair.get("bid"), pair.get("ask")
    if price == "bid" or ask is None:
        return None if bid is None else float(bid)
    if price == "ask" or bid is None:
        return float(ask)
    return round((float(bid) + float(ask)) * 0.5, 10)


#: Mid prices are rounded to 10 decimals as ``round(2 * mid * 5e9) / 1e10`` -- the scaled value is
#: computed in one multiplication, since ``(bid + ask) * 5e9`` is exactly ``mid * 1e10`` -- which equals
#: ``round(mid, 10)`` whenever ``mid * 1e10`` is an exact integer in a double (|mid| < 2**53 / 1e10 ~ 900,719)
#: and is not within an ulp of a half-way point at the 10th decimal (a price never is). ``round(x, 10)``
#: goes through a decimal string and cost three times the rest of the bar; bars beyond the bound use it
#: (checked on high and low: a bar whose open or close lies outside them is broken anyway, and would be
#: off by an ulp at most).
_SCALED_LIMIT = 9.0e15
#: "HH:MM:SS" -> milliseconds into the day (1440 distinct values for minute bars).
_TIME_OF_DAY: dict[str, int] = {}


def parse_capital_bars(prices: list[Any], price: str = "mid") -> list[list[Any]]:
    """GET /prices bars -> ccxt rows ``[ms, open, high, low, close, volume]``, skipping broken bars.

    A tight loop with plain dict access rather than ``safe_*`` per field, the day parsed once per day
    and the time of day looked up: a 10,000-bar download parses 10,000 of these, and per-bar method
    calls would cost as much as decoding the JSON. Mid prices are ``(bid + ask) / 2`` rounded to 10
    decimals, which drops binary noise (128.32999999999998) without touching real digits.
    """
    out: list[list[Any]] = []
    append = out.append
    mid = price == "mid"
    key = "ask" if price == "ask" else "bid"
    last_day = ""
    day_ms = 0
    time_of_day = _TIME_OF_DAY
    limit = _SCALED_LIMIT
    for bar in prices:
        try:
            stamp = bar.get("snapshotTimeUTC") or bar.get("snapshotTime")
            if stamp[:10] != last_day:
                base = _utc_ms(stamp[:10] + "T00:00:00")
                if base is None:
                    continue
                last_day, day_ms = stamp[:10], base
            if len(stamp) == 19 or stamp[19:] in (".000", "Z", ".000Z"):
                clock = stamp[11:19]
                offset = time_of_day.get(clock)
                if offset is None:
                    offset = int(clock[0:2]) * 3_600_000 + int(clock[3:5]) * 60_000 + int(clock[6:8]) * 1000
                    if len(time_of_day) > 100_000:
                        time_of_day.clear()
                    time_of_day[clock] = offset
                ts = day_ms + offset
            else:
                ts = _utc_ms(stamp)
                if ts is None:
                    continue
            o, h, low, c = bar["openPrice"], bar["highPrice"], bar["lowPrice"], bar["closePrice"]
            if mid:
                so, sh = (o["bid"] + o["ask"]) * 5e9, (h["bid"] + h["ask"]) * 5e9
                sl, sc = (low["bid"] + low["ask"]) * 5e9, (c["bid"] + c["ask"]) * 5e9
                if sh < limit and sl > -limit:  # open and close lie between low and high
                    row = [ts, round(so) / 1e10, round(sh) / 1e10, round(sl) / 1e10, round(sc) / 1e10]
                else:
                    row = [ts, round((o["bid"] + o["ask"]) * 0.5, 10), round((h["bid"] + h["ask"]) * 0.5, 10),
                           round((low["bid"] + low["ask"]) * 0.5, 10), round((c["bid"] + c["ask"]) * 0.5, 10)]
            else:
                row = [ts, float(o[key]), float(h[key]), float(low[key]), float(c[key])]
        except (KeyError, TypeError, AttributeError, ValueError):
            row = _lenient_bar(bar, price)
            if row is None:
                continue
        volume = bar.get("lastTradedVolume")
        row.append(None if volume is None else float(volume))
        append(row)
    return out


def _lenient_bar(bar: Any, price: str) -> list[Any] | None:
    """The slow path for a bar missing one side or a field: mid falls back to the side present."""
    if not isinstance(bar, dict):
        return None
    stamp = bar.get("snapshotTimeUTC") or bar.get("snapshotTime")
    ts = _utc_ms(stamp) if isinstance(stamp, str) else None
    values = [_side(bar.get(k), price) for k in ("openPrice", "highPrice", "lowPrice", "closePrice")]
    if ts is None or None in values:
        return None
    return [ts, *values]


_DAY_MS: dict[str, int] = {}


def _utc_ms(value: str) -> int | None:
    """Fast path for ``YYYY-MM-DDTHH:MM:SS[.fff]`` (UTC): the day is parsed once and cached."""
    if len(value) < 19 or value[10] != "T":
        return None
    day = value[:10]
    base = _DAY_MS.get(day)
    try:
        if base is None:
            base = int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()) * 1000
            if len(_DAY_MS) > 20_000:
                _DAY_MS.clear()
            _DAY_MS[day] = base
        ms = base + (int(value[11:13]) * 3600 + int(value[14:16]) * 60 + int(value[17:19])) * 1000
        tail = value[19:].removesuffix("Z")
        if tail:
            digits = tail[1:]
            if tail[0] != "." or not digits.isdigit():
                return None  # a zone offset or something else: the slow, general parser decides
            ms += int(digits[:3].ljust(3, "0"))
        return ms
    except ValueError:
        return None


_ISO_MINUTE: dict[int, str] = {}
#: Epoch ms of 10000-01-01: ccxt's ``iso8601`` formats only four-digit years.
_ISO_END = 253_402_300_800_000


def _iso8601(ms: int) -> str:
    """ccxt's ``iso8601`` text for epoch ms in years 1970-9999 (``YYYY-MM-DDTHH:MM:SS.mmmZ``), the part up
    to the minute cached: every order carries its time in both forms, and ccxt builds a datetime for it."""
    minute, rest = divmod(ms, 60_000)
    head = _ISO_MINUTE.get(minute)
    if head is None:
        moment = datetime.fromtimestamp(minute * 60, tz=timezone.utc)
        head = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        if len(_ISO_MINUTE) > 20_000:
            _ISO_MINUTE.clear()
        _ISO_MINUTE[minute] = head
    seconds, millis = divmod(rest, 1000)
    return f"{head}{seconds:02d}.{millis:03d}Z"


#: Products of two or three prices/sizes are exact within 200 digits: the float of the exact product,
#: as ccxt's ``Precise.string_mul`` (arbitrary precision, pure Python) gives it, at a tenth of the cost.
_EXACT = Context(prec=200)


def _plain_number(value: Any) -> bool:
    """A finite JSON number (``bool`` is not one: ccxt's ``safe_string`` ignores it)."""
    kind = type(value)
    return (kind is float or kind is int) and math.isfinite(value)


def _rule(rules: dict[str, Any], key: str) -> Any:
    value = rules.get(key)
    return value.get("value") if isinstance(value, dict) else value


if TYPE_CHECKING:  # the mixin borrows ccxt's safe_* helpers from the class it is mixed into
    from ccxt.async_support import Exchange as _Base
else:
    _Base = object


class CapitalParsing(_Base):
    """``parse_*`` methods; mixed into the exchange class before ``ccxt.async_support.Exchange``."""

    # ------------------------------------------------------------------ helpers

    def parse_capital_date(self, value: Any) -> int | None:
        """``2024-03-05T15:00:00.000`` (UTC, no zone) -> epoch milliseconds.

        ``datetime.fromisoformat`` first: it is ~20x faster than ccxt's regex-based ``parse8601``,
        which matters for 10,000-bar downloads; anything it rejects goes to ``parse8601``.
        """
        if not isinstance(value, str) or not value:
            return None
        fast = _utc_ms(value)
        if fast is not None:
            return fast
        try:
            moment = datetime.fromisoformat(value[:-1] if value.endswith("Z") else value)
        except ValueError:
            return self.parse8601(value if value.endswith("Z") else value + "Z")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)

    def market_by_epic(self, epic: str | None) -> dict[str, Any] | None:
        if not epic or not self.markets_by_id:
            return None
        found = self.markets_by_id.get(epic)
        return found[0] if found else None

    def capital_symbol(self, epic: str | None, market: dict[str, Any] | None = None) -> str | None:
        if market is None:
            market = self.market_by_epic(epic)
        return market["symbol"] if market else epic

    # ------------------------------------------------------------------ markets

    # GET /markets?epics=AAPL -> {"marketDetails": [
    #   {"instrument": {"epic": "AAPL", "symbol": "AAPL", "expiry": "-", "name": "Apple Inc", "lotSize": 1.0,
    #                   "type": "SHARES", "currency": "USD", "marginFactor": 20.0, "marginFactorUnit": "PERCENTAGE",
    #                   "openingHours": {...}, "overnightFee": {...}},
    #    "dealingRules": {"minStepDistance": {"unit": "POINTS", "value": 0.01},
    #                     "minDealSize": {"unit": "POINTS", "value": 1.0},
    #                     "maxDealSize": {"unit": "POINTS", "value": 5000},
    #                     "minSizeIncrement": {"unit": "POINTS", "value": 1.0}, ...},
    #    "snapshot": {"marketStatus": "TRADEABLE", "bid": 183.91, "offer": 184.01, "decimalPlacesFactor": 2, ...}}]}
    def parse_market(self, details: dict[str, Any]) -> dict[str, Any]:
        instrument = self.safe_dict(details, "instrument", {})
        rules = self.safe_dict(details, "dealingRules", {})
        snapshot = self.safe_dict(details, "snapshot", {})
        epic = self.safe_string(instrument, "epic")
        kind = self.safe_string(instrument, "type", "")
        currency = self.safe_string(instrument, "currency", "")
        swap = self.safe_string(self.options, "defaultType", "spot") == "swap"
        symbol = capital_epic_to_symbol(epic, kind, currency, swap=swap)
        parts = parse_symbol(symbol)
        decimals = self.safe_integer(snapshot, "decimalPlacesFactor")
        price_tick = self.parse_number(self.parse_precision(str(decimals))) if decimals is not None else None
        step = self.safe_number({"v": _rule(rules, "minSizeIncrement")}, "v")
        minimum = self.safe_number({"v": _rule(rules, "minDealSize")}, "v")
        maximum = self.safe_number({"v": _rule(rules, "maxDealSize")}, "v")
        margin_factor = self.safe_number(instrument, "marginFactor")
        unit = self.safe_string(instrument, "marginFactorUnit", "PERCENTAGE")
        max_leverage = None
        if margin_factor:
            max_leverage = 100.0 / margin_factor if unit == "PERCENTAGE" else 1.0 / margin_factor
        status = self.safe_string(snapshot, "marketStatus")
        lot = self.safe_number(instrument, "lotSize", 1.0)
        return {
            "id": epic,
            "symbol": symbol,
            "base": parts.base,
            "quote": parts.quote,
            "settle": parts.quote if swap else None,
            "baseId": parts.base,
            "quoteId": parts.quote,
            "settleId": parts.quote if swap else None,
            "type": "swap" if swap else "spot",
            "spot": not swap,
            "margin": False,
            "swap": swap,
            "future": False,
            "option": False,
            "index": False,
            # CLOSED is only "outside trading hours"; OFFLINE / SUSPENDED take the market away.
            "active": status not in ("OFFLINE", "SUSPENDED"),
            "contract": swap,
            "linear": True if swap else None,
            "inverse": False if swap else None,
            "contractSize": lot if swap else None,
            "taker": 0.0,
            "maker": 0.0,
            "expiry": None,
            "expiryDatetime": None,
            "strike": None,
            "optionType": None,
            "precision": {"amount": step, "price": price_tick},
            "limits": {
                "leverage": {"min": 1.0 if max_leverage else None, "max": max_leverage},
                "amount": {"min": minimum, "max": maximum},
                "price": {"min": None, "max": None},
                "cost": {"min": None, "max": None},
            },
            "marginModes": {"cross": True, "isolated": False},
            "created": None,
            "info": details,
        }

    # ------------------------------------------------------------------ tickers

    # GET /markets?epics=AAPL -> {"markets": [{"epic": "AAPL", "instrumentType": "SHARES", "bid": 183.91,
    #   "offer": 184.01, "high": 184.76, "low": 182.31, "netChange": 0.07, "percentageChange": 0.04,
    #   "updateTimeUTC": "2024-03-05T15:00:00.000", "marketStatus": "TRADEABLE", ...}]}
    def parse_ticker(self, ticker: dict[str, Any], market: dict[str, Any] | None = None) -> dict[str, Any]:
        epic = self.safe_string(ticker, "epic")
        if market is None:
            market = self.market_by_epic(epic)
        bid = self.safe_string(ticker, "bid")
        ask = self.safe_string(ticker, "offer")
        high, low = self.safe_string(ticker, "high"), self.safe_string(ticker, "low")
        last = None
        if bid is not None and ask is not None:
            # No last trade at a CFD broker: the mid is what the bot can compare against. Capital's day
            # high and low are bid prices; shifted by half the spread they are mids too, so every price of
            # the ticker is on one side and low <= close <= high holds at a day high.
            last = Precise.string_div(Precise.string_add(bid, ask), "2")
            half = Precise.string_div(Precise.string_sub(ask, bid), "2")
            high = Precise.string_add(high, half) if high is not None else None
            low = Precise.string_add(low, half) if low is not None else None
        timestamp = self.parse_capital_date(self.safe_string_2(ticker, "updateTimeUTC", "updateTime"))
        change = self.safe_string(ticker, "netChange")
        previous = Precise.string_sub(last, change) if last is not None and change is not None else None
        result = self.safe_ticker(
            {
                "symbol": self.capital_symbol(epic, market),
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "high": high,
                "low": low,
                "bid": bid,
                "bidVolume": None,
                "ask": ask,
                "askVolume": None,
                "vwap": None,
                "open": None,
                "close": last,
                "last": last,
                "previousClose": previous,
                "change": change,
                "percentage": None,  # derived by safe_ticker from change, as ccxt's checks expect
                "average": None,
                "baseVolume": None,
                "quoteVolume": None,
                "info": ticker,
            },
            market,
        )
        # Capital's change is against the previous close (ccxt's ``open`` of the window), its high and
        # low are today's: after a gap the previous close lies outside them. ccxt's window runs from
        # that open to now, so its range includes the open.
        return hold_in_range(result, (result.get("open"), result.get("close")))

    # ------------------------------------------------------------------ OHLCV

    # GET /prices/AAPL?resolution=MINUTE&max=2 -> {"prices": [{"snapshotTimeUTC": "2024-03-05T14:58:00",
    #   "openPrice": {"bid": 184.07, "ask": 184.17}, "closePrice": {"bid": 184.14, "ask": 184.24},
    #   "highPrice": {...}, "lowPrice": {...}, "lastTradedVolume": 1474}, ...], "instrumentType": "SHARES"}
    def parse_ohlcv(self, ohlcv: Any, market: dict[str, Any] | None = None, price: str = "mid") -> list[Any]:
        if isinstance(ohlcv, list):
            return super().parse_ohlcv(ohlcv, market)
        rows = parse_capital_bars([ohlcv], price)
        return rows[0] if rows else [None, None, None, None, None, None]

    def parse_ohlcvs_page(self, prices: list[Any], price: str = "mid") -> list[list[Any]]:
        """A whole page of bars at once (see :func:`parse_capital_bars`)."""
        return parse_capital_bars(prices, price)

    # ------------------------------------------------------------------ orders

    # GET /confirms/o_6c1f... -> {"date": "2024-03-05T15:00:00.000", "dateUTC": "2024-03-05T15:00:00.000",
    #   "dealReference": "o_6c1f...", "epic": "AAPL", "dealStatus": "ACCEPTED", "status": "OPEN",
    #   "level": 184.01, "size": 10.0, "direction": "BUY", "dealId": "e443df78-...", "stopLevel": null,
    #   "profitLevel": null, "affectedDeals": [{"dealId": "e443df78-...", "status": "OPENED"}]}
    #
    # GET /workingorders -> {"workingOrders": [{"workingOrderData": {"dealId": "...", "direction": "BUY",
    #   "epic": "AAPL", "orderSize": 1, "orderLevel": 150.0, "timeInForce": "GOOD_TILL_CANCELLED",
    #   "createdDateUTC": "2024-03-05T15:00:00.000", "orderType": "LIMIT", "stopDistance": 5.0}, "marketData": {...}}]}
    #
    # GET /history/activity?detailed=true -> {"activities": [{"dateUTC": "...", "epic": "AAPL", "dealId": "...",
    #   "source": "USER", "type": "POSITION", "status": "ACCEPTED", "details": {"dealReference": "o_...",
    #   "size": 10.0, "direction": "BUY", "level": 184.01, "actions": [{"actionType": "POSITION_OPENED", ...}]}}]}
    #   -- grouped per dealReference by the exchange as {"activities": [...]} before parsing.
    def parse_order(self, order: dict[str, Any], market: dict[str, Any] | None = None) -> dict[str, Any]:
        if "workingOrderData" in order:
            return self._parse_working_order(order, market)
        if "activities" in order:
            return self._parse_activity_order(order, market)
        return self.parse_confirm_order(order, market)

    def parse_confirm_order(self, confirm: dict[str, Any], market: dict[str, Any] | None = None,
                            working_type: str | None = None) -> dict[str, Any]:
        """A deal's confirm as an order; ``working_type`` ('limit' / 'stop'), when the caller knows the
        deal was a working order, changes what ACCEPTED + OPEN means (resting, not filled).

        Every create_order ends here, so a well-formed confirm is built directly (:meth:`_confirm_order_fast`);
        anything unusual goes through ccxt's generic ``safe_order`` (:meth:`_confirm_order_generic`). The
        two give equal dicts for every confirm the fast one accepts (tests/capital/test_confirm_parsing.py).
        """
        fast = self._confirm_order_fast(confirm, market, working_type)
        return fast if fast is not None else self._confirm_order_generic(confirm, market, working_type)

    def _confirm_basics(self, confirm: dict[str, Any], market: dict[str, Any] | None,
                        working_type: str | None) -> tuple[str | None, dict[str, Any] | None, str, str]:
        """Epic, market, ccxt order type and status of a confirm: what both order builders start from."""
        epic = self.safe_string(confirm, "epic")
        if market is None:
            market = self.market_by_epic(epic)
        order_type = working_type if working_type in ("limit", "stop") else "market"
        status = capital_order_status(
            self.safe_string(confirm, "dealStatus"),
            self.safe_string(confirm, "status"),
            working_order=order_type != "market",
        )
        return epic, market, order_type, status

    def _confirm_order_fast(self, confirm: dict[str, Any], market: dict[str, Any] | None,
                            working_type: str | None) -> dict[str, Any] | None:
        """What ``safe_order`` makes of the confirm, computed without its generic machinery (trade parsing,
        fee reduction, a dozen ``safe_*`` look-ups per field): a third of create_order's own time went
        there. ``None`` when the confirm is not the usual shape (sizes and levels finite numbers, a size
        above zero, a linear market, a status the broker reports for deals): the generic path decides."""
        size = confirm.get("size")
        level = confirm.get("level")
        stop_level = confirm.get("stopLevel")
        profit_level = confirm.get("profitLevel")
        if not _plain_number(size) or size <= 0 or (level is not None and not _plain_number(level)) \
                or (stop_level is not None and not _plain_number(stop_level)) \
                or (profit_level is not None and not _plain_number(profit_level)):
            return None
        epic, market, order_type, status = self._confirm_basics(confirm, market, working_type)
        if market is not None and market.get("inverse"):
            return None
        working = order_type != "market"
        size_s = str(size)
        level_s = None if level is None else str(level)
        if status == "closed":
            filled, remaining = size_s, "0"
            average = None if working or level == 0 else level_s
        elif status in ("open", "canceled", "rejected"):
            filled, remaining, average = "0", (size_s if status == "open" else "0"), None
        else:
            return None
        price = level_s if working and level != 0 else None
        cost = None
        multiplier = average if average is not None else price
        if multiplier is not None:
            contract = market.get("contractSize") if market is not None else None
            product = _EXACT.multiply(Decimal(filled), Decimal(multiplier))
            if contract is not None:
                product = _EXACT.multiply(product, Decimal(self.number_to_string(contract)))
            cost = float(product)
        if price is None and order_type == "market":
            price = average
        timestamp = self.parse_capital_date(self.safe_string_2(confirm, "dateUTC", "date"))
        trigger = float(level) if order_type == "stop" and level is not None else None
        stop_loss = None if stop_level is None else float(stop_level)
        take_profit = None if profit_level is None else float(profit_level)
        if working:
            time_in_force: str | None = "GTC"
        else:
            time_in_force = "IOC" if trigger is None and stop_loss is None and take_profit is None else None
        fee = capital_fee(self._account_currency()) if status == "closed" else None
        return {
            "id": self.safe_string(confirm, "dealReference"),
            "clientOrderId": None,
            "timestamp": timestamp,
            "datetime": _iso8601(timestamp) if type(timestamp) is int and 0 <= timestamp < _ISO_END
            else self.iso8601(timestamp),
            "lastTradeTimestamp": timestamp if status == "closed" else None,
            "lastUpdateTimestamp": timestamp,
            "symbol": self.capital_symbol(epic, market),
            "type": order_type,
            "timeInForce": time_in_force,
            "postOnly": False,
            "reduceOnly": None,
            "side": SIDES.get(self.safe_string(confirm, "direction", "")),
            "price": None if price is None else float(price),
            "triggerPrice": trigger,
            "stopLossPrice": stop_loss,
            "takeProfitPrice": take_profit,
            "amount": float(size),
            "filled": float(filled),
            "remaining": float(remaining),
            "cost": cost,
            "average": None if average is None else float(average),
            "status": status,
            "fee": fee,
            "trades": [],
            "info": confirm,
            "fees": [] if fee is None else [dict(fee)],
            "stopPrice": trigger,
        }

    def _confirm_order_generic(self, confirm: dict[str, Any], market: dict[str, Any] | None = None,
                               working_type: str | None = None) -> dict[str, Any]:
        """The confirm through ccxt's ``safe_order``: any shape, and the reference the fast path must equal."""
        epic, market, order_type, status = self._confirm_basics(confirm, market, working_type)
        working = order_type != "market"
        timestamp = self.parse_capital_date(self.safe_string_2(confirm, "dateUTC", "date"))
        size = self.safe_string(confirm, "size")
        level = self.safe_string(confirm, "level")
        filled = None
        remaining = None
        average = None
        if status == "closed":
            filled, remaining, average = size, "0", (None if working else level)
        elif status in ("open", "canceled", "rejected"):
            filled, remaining = "0", (size if status == "open" else "0")
        fee = capital_fee(self._account_currency()) if filled not in (None, "0") else None
        return self.safe_order(
            {
                "id": self.safe_string(confirm, "dealReference"),
                "clientOrderId": None,
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "lastTradeTimestamp": timestamp if status == "closed" else None,
                "lastUpdateTimestamp": timestamp,
                "symbol": self.capital_symbol(epic, market),
                "type": order_type,
                "timeInForce": None if not working else "GTC",
                "postOnly": False,
                "reduceOnly": None,
                "side": SIDES.get(self.safe_string(confirm, "direction", "")),
                "price": level if working else None,
                "triggerPrice": level if order_type == "stop" else None,
                "stopLossPrice": self.safe_string(confirm, "stopLevel"),
                "takeProfitPrice": self.safe_string(confirm, "profitLevel"),
                "amount": size,
                "filled": filled,
                "remaining": remaining,
                "cost": None,
                "average": average,
                "status": status,
                "fee": fee,
                "trades": None,
                "info": confirm,
            },
            market,
        )

    def _parse_working_order(self, entry: dict[str, Any], market: dict[str, Any] | None) -> dict[str, Any]:
        data = self.safe_dict(entry, "workingOrderData", {})
        epic = self.safe_string(data, "epic")
        if market is None:
            market = self.market_by_epic(epic)
        order_type = ORDER_TYPES.get(self.safe_string(data, "orderType", ""), "limit")
        level = self.safe_string(data, "orderLevel")
        direction = self.safe_string(data, "direction", "")
        sign = "1" if direction == "BUY" else "-1"
        stop_distance = self.safe_string(data, "stopDistance")
        profit_distance = self.safe_string(data, "profitDistance")
        P = Precise
        stop_loss = take_profit = None
        if level is not None and stop_distance is not None:
            stop_loss = P.string_sub(level, P.string_mul(sign, stop_distance))
        if level is not None and profit_distance is not None:
            take_profit = P.string_add(level, P.string_mul(sign, profit_distance))
        timestamp = self.parse_capital_date(self.safe_string_2(data, "createdDateUTC", "createdDate"))
        gtd = self.safe_string(data, "timeInForce") == "GOOD_TILL_DATE"
        expiry = self.parse_capital_date(self.safe_string_2(data, "goodTillDateUTC", "goodTillDate"))
        size = self.safe_string(data, "orderSize")
        return self.safe_order(
            {
                "id": self.safe_string(data, "dealId"),
                "clientOrderId": None,
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "lastTradeTimestamp": None,
                "symbol": self.capital_symbol(epic, market),
                "type": order_type,
                "timeInForce": "GTD" if gtd else "GTC",
                "postOnly": False,
                "reduceOnly": None,
                "side": SIDES.get(direction),
                "price": level,
                "triggerPrice": level if order_type == "stop" else None,
                "stopLossPrice": stop_loss,
                "takeProfitPrice": take_profit,
                "amount": size,
                "filled": "0",
                "remaining": size,
                "cost": "0",
                "average": None,
                "status": "open",
                "fee": None,
                "trades": None,
                "expiry": expiry if gtd else None,
                "info": entry,
            },
            market,
        )

    def _parse_activity_order(self, group: dict[str, Any], market: dict[str, Any] | None) -> dict[str, Any]:
        """One dealReference's activity entries -> the order they describe (history, so terminal)."""
        entries = [e for e in group.get("activities") or [] if isinstance(e, dict)]
        first = entries[0] if entries else {}
        epic = self.safe_string(first, "epic")
        if market is None:
            market = self.market_by_epic(epic)
        details = self.safe_dict(first, "details", {})
        P = Precise
        order_type = "market"
        status = "closed"
        amount = None
        filled = "0"
        cost = "0"
        price = None
        side = SIDES.get(self.safe_string(details, "direction", ""))
        timestamps = []
        rejected = False
        fill_level = None
        for entry in entries:
            info = self.safe_dict(entry, "details", {})
            actions = [self.safe_string(a, "actionType") for a in info.get("actions") or []]
            ts = self.parse_capital_date(self.safe_string_2(entry, "dateUTC", "date"))
            if ts is not None:
                timestamps.append(ts)
            if self.safe_string(entry, "status") == "REJECTED":
                rejected = True
            if entry.get("type") == "WORKING_ORDER":
                kind = ORDER_TYPES.get(self.safe_string(info, "orderType", ""))
                if order_type == "market":
                    order_type, status = kind or "limit", "open"
                if "LIMIT_ORDER_FILLED" in actions or "STOP_ORDER_FILLED" in actions:
                    order_type = "limit" if "LIMIT_ORDER_FILLED" in actions else "stop"
                    status = "closed"
                    fill_level = self.safe_string(info, "level")
                elif "WORKING_ORDER_DELETED" in actions and status != "closed":
                    # Deleted by the broker at its good-till date: expired, not cancelled by anyone.
                    lapsed = entry.get("source") == "SYSTEM" and info.get("goodTillDate")
                    status = "expired" if lapsed else "canceled"
                elif "WORKING_ORDER_CREATED" in actions or price is None:
                    price = self.safe_string(info, "level") if "WORKING_ORDER_CREATED" in actions else price
                amount = amount or self.safe_string(info, "size")
                continue
            if any(a in FILL_ACTIONS for a in actions) and entry.get("status") == "ACCEPTED":
                size = self.safe_string(info, "size", "0")
                level = self.safe_string(info, "level", "0")
                filled = P.string_add(filled, size)
                cost = P.string_add(cost, P.string_mul(size, level))
        if order_type == "market":
            amount = filled if amount is None else amount
        if rejected and filled == "0":
            status = "rejected"
        average = P.string_div(cost, filled) if P.string_gt(filled, "0") else None
        if status == "closed" and order_type != "market" and not P.string_gt(filled, "0"):
            # The fill itself is listed under the position (maybe outside the window): the order is done.
            filled = amount
            average = fill_level
            cost = P.string_mul(amount, fill_level) if amount is not None and fill_level is not None else None
        if status == "closed" and amount is not None and filled is not None and P.string_gt(amount, filled):
            amount = filled
        timestamp = min(timestamps) if timestamps else None
        last = max(timestamps) if timestamps else None
        fee = capital_fee(self._account_currency()) if filled not in (None, "0") else None
        return self.safe_order(
            {
                "id": self.safe_string(details, "dealReference"),
                "clientOrderId": None,
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "lastTradeTimestamp": last if status == "closed" else None,
                "symbol": self.capital_symbol(epic, market),
                "type": order_type,
                "timeInForce": None if order_type == "market" else "GTC",
                "postOnly": False,
                "reduceOnly": None,
                "side": side,
                "price": price if order_type != "market" else None,
                "triggerPrice": price if order_type == "stop" else None,
                "amount": amount if amount is not None else filled,
                "filled": filled if status in ("closed", "rejected") else "0",
                "remaining": "0" if status != "open" else amount,
                "cost": cost if status == "closed" else "0",
                "average": average,
                "status": status,
                "fee": fee,
                "trades": None,
                "info": group,
            },
            market,
        )

    # ------------------------------------------------------------------ trades

    # One fill = one accepted POSITION activity entry with an OPENED / CLOSED / PARTIALLY_CLOSED action:
    # {"dateUTC": "2024-03-05T15:00:00.000", "epic": "AAPL", "dealId": "e443df78-...", "source": "USER",
    #  "type": "POSITION", "status": "ACCEPTED", "details": {"dealReference": "o_...", "size": 10.0,
    #  "direction": "BUY", "level": 184.01,
    #  "actions": [{"actionType": "POSITION_OPENED", "affectedDealId": "e443..."}]}}
    # (A working order's fill is listed as "p_<dealId>", the position's own reference: :mod:`.activity`
    # files it under the order's "o_..." before it gets here, the broker's kept as "positionReference".)
    def parse_trade(self, trade: dict[str, Any], market: dict[str, Any] | None = None) -> dict[str, Any]:
        epic = self.safe_string(trade, "epic")
        if market is None:
            market = self.market_by_epic(epic)
        details = self.safe_dict(trade, "details", {})
        reference = self.safe_string(details, "dealReference")
        deal_id = self.safe_string(trade, "dealId")
        timestamp = self.parse_capital_date(self.safe_string_2(trade, "dateUTC", "date"))
        actions = [self.safe_string(a, "actionType") for a in details.get("actions") or []]
        fee = trade.get("fee") or capital_fee(self._account_currency())
        source = self.safe_string(trade, "source")
        return self.safe_trade(
            {
                "id": f"{reference}:{deal_id}" if reference else deal_id,
                "order": reference,
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "symbol": self.capital_symbol(epic, market),
                "type": "market" if source == "USER" else None,
                "side": SIDES.get(self.safe_string(details, "direction", "")),
                "takerOrMaker": "taker",
                "price": self.safe_string(details, "level"),
                "amount": self.safe_string(details, "size"),
                "cost": None,
                "fee": fee,
                "info": {k: v for k, v in trade.items() if k != "fee"} | {"actions": actions},
            },
            market,
        )

    # ------------------------------------------------------------------ positions

    # GET /positions -> {"positions": [{"position": {"contractSize": 1.0, "createdDateUTC": "2024-03-05T15:00:00.000",
    #   "dealId": "e443df78-...", "dealReference": "o_...", "workingOrderId": "...", "size": 10.0, "leverage": 5,
    #   "upl": -1.0, "direction": "BUY", "level": 184.01, "currency": "USD", "stopLevel": 180.0,
    #   "profitLevel": 200.0}, "market": {"epic": "AAPL", "bid": 183.91, "offer": 184.01, ...}}]}
    def parse_position(self, position: dict[str, Any], market: dict[str, Any] | None = None) -> dict[str, Any]:
        data = self.safe_dict(position, "position", {})
        summary = self.safe_dict(position, "market", {})
        epic = self.safe_string(summary, "epic")
        if market is None:
            market = self.market_by_epic(epic)
        P = Precise
        long = self.safe_string(data, "direction") == "BUY"
        contracts = self.safe_string(data, "size")
        contract_size = self.safe_string(data, "contractSize", "1")
        # The position would close at the bid (long) or the offer (short): that is its mark.
        mark = self.safe_string(summary, "bid" if long else "offer")
        leverage = self.safe_string(data, "leverage")
        notional = None
        margin = None
        if contracts is not None and mark is not None:
            notional = P.string_mul(P.string_mul(contracts, contract_size), mark)
            if leverage is not None and P.string_gt(leverage, "0"):
                margin = P.string_div(notional, leverage)
        upl = self.safe_string(data, "upl")
        timestamp = self.parse_capital_date(self.safe_string_2(data, "createdDateUTC", "createdDate"))
        percentage = None
        if upl is not None and margin is not None and P.string_gt(margin, "0"):
            percentage = P.string_mul(P.string_div(upl, margin), "100")
        return self.safe_position(
            {
                "info": position,
                "id": self.safe_string(data, "dealId"),
                "symbol": self.capital_symbol(epic, market),
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "lastUpdateTimestamp": None,
                "hedged": False,
                "side": "long" if long else "short",
                "contracts": self.parse_number(contracts),
                "contractSize": self.parse_number(contract_size),
                "entryPrice": self.safe_number(data, "level"),
                "markPrice": self.parse_number(mark),
                "lastPrice": None,
                "notional": self.parse_number(notional),
                "leverage": self.parse_number(leverage),
                "collateral": self.parse_number(margin),
                "initialMargin": self.parse_number(margin),
                "initialMarginPercentage": self.parse_number(P.string_div("1", leverage)) if leverage else None,
                "maintenanceMargin": None,
                "maintenanceMarginPercentage": None,
                "unrealizedPnl": self.parse_number(upl),
                "realizedPnl": None,
                "liquidationPrice": None,
                "marginMode": "cross",
                "marginRatio": None,
                "percentage": self.parse_number(percentage),
                "stopLossPrice": self.safe_number(data, "stopLevel"),
                "takeProfitPrice": self.safe_number(data, "profitLevel"),
            }
        )

    # ------------------------------------------------------------------ balance

    # GET /accounts -> {"accounts": [{"accountId": "200000000000001", "accountName": "Demo USD account",
    #   "preferred": true, "balance": {"balance": 9999.0, "deposit": 10000.0, "profitLoss": -1.0,
    #   "available": 9631.08}, "currency": "USD"}]}  (+ GET /positions for the holdings)
    def parse_balance(self, account: dict[str, Any], holdings: dict[str, str] | None = None) -> dict[str, Any]:
        values = self.safe_dict(account, "balance", {})
        code = self.safe_currency_code(self.safe_string(account, "currency"))
        P = Precise
        result: dict[str, Any] = {"info": account, "timestamp": None, "datetime": None}
        cash = self.account()
        total = self.safe_string(values, "balance")
        free = self.safe_string(values, "available")
        cash["total"] = total
        cash["free"] = free
        if total is not None and free is not None:
            cash["used"] = P.string_sub(total, free)  # the margin the open positions hold
        result[code] = cash
        for base, size in (holdings or {}).items():
            if base == code:
                continue  # a holding in the account currency would double count the cash
            holding = self.account()
            if Precise.string_lt(size, "0"):
                # A short CFD is owed, not held: ccxt's margin convention puts it in ``debt``.
                holding.update({"total": "0", "free": "0", "used": "0", "debt": Precise.string_abs(size)})
            else:
                holding.update({"total": size, "free": size, "used": "0"})
            result[base] = holding
        return self.safe_balance(result)

    # ------------------------------------------------------------------ ledger

    # GET /history/transactions -> {"transactions": [{"dateUtc": "2024-03-05T22:00:00.000",
    #   "instrumentName": "Apple Inc", "transactionType": "SWAP", "note": "Overnight funding",
    #   "reference": "e443df78-...", "size": "-0.42", "currency": "USD", "status": "PROCESSED"}]}
    def parse_ledger_entry(self, item: dict[str, Any], currency: dict[str, Any] | None = None) -> dict[str, Any]:
        P = Precise
        amount = self.safe_string(item, "size", "0")
        code = self.safe_currency_code(self.safe_string(item, "currency"), currency)
        timestamp = self.parse_capital_date(self.safe_string_2(item, "dateUtc", "dateUTC") or item.get("date"))
        kind = self.safe_string(item, "transactionType", "")
        negative = P.string_lt(amount, "0")
        reference = self.safe_string(item, "reference")
        entry_id = f"{kind}:{reference}:{timestamp}:{amount}"
        return self.safe_ledger_entry(
            {
                "info": item,
                "id": entry_id,
                "direction": "out" if negative else "in",
                "account": None,
                "referenceId": reference,
                "referenceAccount": None,
                "type": LEDGER_TYPES.get(kind, kind.lower() or None),
                "currency": code,
                "amount": self.parse_number(P.string_abs(amount)),
                "before": None,
                "after": None,
                "status": "ok" if self.safe_string(item, "status", "PROCESSED") == "PROCESSED" else "pending",
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "fee": None,
            },
            self.safe_currency(code, currency) if code else currency,
        )

    # ------------------------------------------------------------------ shared

    def _account_currency(self) -> str | None:
        """The currency fees are charged in; known once logged in (the exchange overrides this)."""
        return self.safe_string(self.options, "accountCurrency")
