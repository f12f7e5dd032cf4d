"""Ticker invariants both brokers' parsers keep (ccxt's validator checks ``low <= close <= high``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def hold_in_range(ticker: dict[str, Any], prices: Iterable[float | None]) -> dict[str, Any]:
    """Widen the ticker's ``high`` / ``low`` to cover ``prices`` (its open, close), in place.

    A broker's day range and its quote are stamped apart: the quote can run a tick ahead of the range, and
    outside the regular session (IB pre-market, a Capital gap from the previous close) it lies outside the
    session's range altogether. ccxt's window runs up to now, so its range includes the price quoted now.
    """
    for price in prices:
        if price is None:
            continue
        if ticker.get("high") is not None and price > ticker["high"]:
            ticker["high"] = price
        if ticker.get("low") is not None and price < ticker["low"]:
            ticker["low"] = price
    return ticker
