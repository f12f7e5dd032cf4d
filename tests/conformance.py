"""Hold every structure an adapter returns to ccxt's own validators.

ccxt ships its structure validators in the wheel (``ccxt/test/exchange/base/test_*.py``). They
are imported under aliases (a ``test_*`` name in a pytest module would be collected as a test)
and called directly, because ccxt's full harness refuses to run from site-packages.

Their traps (shared/reference/ccxt-notes.md §3.4) are handled here, not in each test:
- ``test_order`` only knows open/closed/canceled; ccxt itself also emits ``rejected`` and
  ``expired``, so for those the status check is ours.
- ``test_order`` rejects ``timeInForce='DAY'`` (and 'GTD'), which IB orders legitimately carry.
- empty lists pass silently and types are barely checked: ``strict_*`` checks add ``isinstance``
  assertions on numbers and timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ccxt.test.exchange.base.test_balance import test_balance as _validate_balance
from ccxt.test.exchange.base.test_market import test_market as _validate_market
from ccxt.test.exchange.base.test_ohlcv import test_ohlcv as _validate_ohlcv
from ccxt.test.exchange.base.test_order import test_order as _validate_order
from ccxt.test.exchange.base.test_position import test_position as _validate_position
from ccxt.test.exchange.base.test_ticker import test_ticker as _validate_ticker
from ccxt.test.exchange.base.test_trade import test_trade as _validate_trade

CCXT_STATUSES = ("open", "closed", "canceled", "rejected", "expired")
NUMBER = (int, float)


def _now(exchange: Any) -> int:
    return int(exchange.milliseconds())


def _skips(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return dict(extra or {})


def _assert_number(entry: Mapping[str, Any], key: str, *, allow_none: bool = True) -> None:
    value = entry.get(key)
    if value is None:
        assert allow_none, f"{key} must not be None in {entry!r}"
        return
    assert isinstance(value, NUMBER) and not isinstance(value, bool), f"{key}={value!r} is not a number"
    assert math.isfinite(value), f"{key}={value!r} is not finite"


def _assert_timestamp(entry: Mapping[str, Any], key: str = "timestamp", allow_none: bool = True) -> None:
    value = entry.get(key)
    if value is None:
        assert allow_none, f"{key} must be set"
        return
    assert isinstance(value, int) and not isinstance(value, bool), f"{key}={value!r} is not an int"


def check_market(exchange: Any, market: Mapping[str, Any], skips: Mapping[str, Any] | None = None) -> None:
    _validate_market(exchange, _skips(skips), "fetchMarkets", market)
    for key in ("amount", "price"):
        _assert_number(market["precision"], key, allow_none=False)


def check_markets(exchange: Any, markets: Iterable[Mapping[str, Any]], skips: Mapping[str, Any] | None = None) -> None:
    markets = list(markets)
    assert markets, "no markets"
    for market in markets:
        check_market(exchange, market, skips)


def check_ticker(
    exchange: Any, ticker: Mapping[str, Any], symbol: str | None = None, skips: Mapping[str, Any] | None = None,
    method: str = "fetchTicker",
) -> None:
    _validate_ticker(exchange, _skips(skips), method, ticker, symbol)
    _assert_timestamp(ticker)
    for key in ("bid", "ask", "last", "close", "high", "low", "open", "baseVolume"):
        _assert_number(ticker, key)


def check_ohlcv(
    exchange: Any, rows: list[list[Any]], symbol: str, skips: Mapping[str, Any] | None = None, *, nonempty: bool = True
) -> None:
    if nonempty:
        assert rows, "no candles"
    now = _now(exchange)
    previous = None
    for row in rows:
        _validate_ohlcv(exchange, _skips(skips), "fetchOHLCV", row, symbol, now)
        assert isinstance(row[0], int), f"candle time {row[0]!r} is not an int"
        for value in row[1:5]:
            assert isinstance(value, NUMBER) and math.isfinite(value), f"candle {row!r} has a non-number price"
        # ccxt's own OHLC comparisons index a list with string keys and never fire in Python.
        _, open_, high, low, close, volume = row
        assert low <= min(open_, close) and max(open_, close) <= high, f"candle {row!r}: open/close outside low..high"
        assert volume is None or volume >= 0, f"candle {row!r}: negative volume"
        if previous is not None:
            assert row[0] > previous, "candles are not strictly ascending"
        previous = row[0]


def check_order(
    exchange: Any, order: Mapping[str, Any], symbol: str | None = None, skips: Mapping[str, Any] | None = None,
    method: str = "createOrder",
) -> None:
    skipped = _skips(skips)
    status = order.get("status")
    assert status in CCXT_STATUSES or status is None, f"status {status!r} is not a ccxt status"
    if status in ("rejected", "expired"):
        skipped["status"] = "ccxt emits it; its validator predates it"
    if order.get("timeInForce") in ("DAY", "GTD"):
        skipped["timeInForce"] = "IB DAY and GTD orders have no unified value"
    _validate_order(exchange, skipped, method, order, symbol, _now(exchange))
    _assert_timestamp(order)
    for key in ("amount", "filled", "remaining", "price", "average", "cost"):
        _assert_number(order, key)
    assert order.get("id"), "order has no id"


def check_orders(exchange: Any, orders: Iterable[Mapping[str, Any]], symbol: str | None = None,
                 skips: Mapping[str, Any] | None = None, method: str = "fetchOrders") -> None:
    for order in orders:
        check_order(exchange, order, symbol, skips, method)


def check_trade(
    exchange: Any, trade: Mapping[str, Any], symbol: str | None = None, skips: Mapping[str, Any] | None = None,
    method: str = "fetchMyTrades",
) -> None:
    _validate_trade(exchange, _skips(skips), method, trade, symbol, _now(exchange), False)
    _assert_timestamp(trade, allow_none=False)
    for key in ("amount", "price", "cost"):
        _assert_number(trade, key, allow_none=False)


def check_balance(exchange: Any, balance: Mapping[str, Any], skips: Mapping[str, Any] | None = None) -> None:
    _validate_balance(exchange, _skips(skips), "fetchBalance", balance)
    for code, account in balance.items():
        if code in ("info", "free", "used", "total", "timestamp", "datetime", "debt"):
            continue
        for key in ("free", "used", "total"):
            _assert_number(account, key)
            assert balance[key].get(code) == account.get(key), f"{code}.{key} disagrees with balance[{key!r}]"
        free, used, total = account.get("free"), account.get("used"), account.get("total")
        if None not in (free, used, total):
            assert math.isclose(free + used, total, rel_tol=1e-9, abs_tol=1e-9), (
                f"{code}: free {free} + used {used} != total {total}"
            )


def check_position(
    exchange: Any, position: Mapping[str, Any], symbol: str | None = None, skips: Mapping[str, Any] | None = None
) -> None:
    _validate_position(exchange, _skips(skips), "fetchPositions", position, symbol, _now(exchange))
    for key in ("contracts", "entryPrice", "unrealizedPnl", "notional"):
        _assert_number(position, key, allow_none=False)


CHECKS = {
    "market": check_market,
    "ticker": check_ticker,
    "ohlcv": check_ohlcv,
    "order": check_order,
    "trade": check_trade,
    "balance": check_balance,
    "position": check_position,
}


def check_latency(latency: Mapping[str, Any], *, filled: bool) -> None:
    """``order['info']['latency']`` (normalization.runtime.latency): every metric present; the stages
    reached are non-negative and add up, i.e. intent <= submit <= ack <= first fill <= last fill; the
    fills of an order not filled are None."""
    from normalization.runtime.latency import METRICS

    assert set(latency) == set(METRICS), latency
    steps = [latency["intent_to_submit_ms"], latency["submit_to_ack_ms"]]
    assert all(step is not None and step >= 0 for step in steps), latency
    if filled:
        first, last = latency["ack_to_first_fill_ms"], latency["ack_to_last_fill_ms"]
        assert first is not None and last is not None and 0 <= first <= last, latency
        steps.append(last)
    else:
        assert latency["ack_to_first_fill_ms"] is None and latency["ack_to_last_fill_ms"] is None, latency
    assert abs(latency["total_ms"] - sum(steps)) <= 0.01, latency


def fx_notional_refusal(usd_per_eur: float) -> str:
    """The pre-trade refusal of 6 shares at 208 USD under ``{"maxOrderNotional": 1000, "notionalCurrency":
    "EUR"}``, converted at the broker's EUR/USD mid (both brokers' controls tests place the same order)."""
    rate = 1 / usd_per_eur
    return f"notional {6 * 208 * rate:,.2f} EUR (6 x 208 USD at {rate:g} EUR/USD) exceeds the limit 1,000.00 EUR"
