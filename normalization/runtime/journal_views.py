"""The journal's rows as ccxt structures and plain records: for fills a broker no longer reports and
for the command line's ``journal list | show | export``.

Why: the journal is the one place that still knows a fill after the broker forgot it (IB answers
``reqExecutions`` for the current day only) and the one an operator reads after an incident. Both
uses present the same rows, so the presenting is written once, here, without any broker library.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from normalization.runtime.journal import JournalFill, JournalOrder, OrderJournal

__all__ = ["FILL_COLUMNS", "ORDER_COLUMNS", "journal_trades", "order_record", "fill_record", "to_csv", "to_json"]

#: Columns of ``journal export --format csv`` (orders), in order.
ORDER_COLUMNS = ("client_order_id", "symbol", "side", "type", "amount", "price", "trigger_price", "state",
                 "reason", "filled", "remaining", "order_id", "perm_id", "deal_reference", "deal_id",
                 "created", "updated", "exchange", "account")
#: Columns of ``journal export --fills --format csv``.
FILL_COLUMNS = ("exec_id", "client_order_id", "order_id", "symbol", "side", "amount", "price", "fee_cost",
                "fee_currency", "timestamp")


def journal_trades(exchange: Any, journal: OrderJournal, *, since: int | None = None, until: int | None = None,
                   symbol: str | None = None, exclude: Iterable[str] = ()) -> list[dict[str, Any]]:
    """ccxt trades from the journal's fills in ``[since, until)``, minus the exec ids in ``exclude``
    (the ones the broker reported itself), each marked ``info['source'] == 'journal'``."""
    skip = set(exclude)
    trades = []
    for fill in journal.fills():
        if fill.exec_id in skip or fill.timestamp is None:
            continue
        if (since is not None and fill.timestamp < since) or (until is not None and fill.timestamp >= until):
            continue
        if symbol is not None and fill.symbol != symbol:
            continue
        trades.append(_trade(exchange, fill))
    return trades


def _trade(exchange: Any, fill: JournalFill) -> dict[str, Any]:
    fee = None if fill.fee_cost is None else {"cost": fill.fee_cost, "currency": fill.fee_currency}
    market = (getattr(exchange, "markets", None) or {}).get(fill.symbol) if fill.symbol else None
    info = dict(fill.info) if isinstance(fill.info, dict) else {"raw": fill.info}
    info.update({"source": "journal", "clientOrderId": fill.client_order_id})
    return exchange.safe_trade({
        "id": fill.exec_id,
        "order": fill.order_id,
        "timestamp": fill.timestamp,
        "datetime": exchange.iso8601(fill.timestamp),
        "symbol": fill.symbol,
        "type": None,
        "side": fill.side,
        "takerOrMaker": None,
        "price": fill.price,
        "amount": fill.amount,
        "cost": None,
        "fee": fee,
        "info": info,
    }, market)


def order_record(order: JournalOrder) -> dict[str, Any]:
    """One order row as plain JSON-ready data (``params`` and ``info`` kept as stored)."""
    return asdict(order)


def fill_record(fill: JournalFill) -> dict[str, Any]:
    return asdict(fill)


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=str, indent=2) + "\n"


def to_csv(rows: list[dict[str, Any]], columns: Iterable[str] = ORDER_COLUMNS) -> str:
    """Rows as CSV with a header; nested values (params, info) are left out: use JSON for those."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buffer.getvalue()
