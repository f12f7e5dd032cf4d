"""Balance rows a ccxt bot may index without checking: one for the base of every loaded market.

Why: at a crypto exchange ``fetch_balance()`` lists every currency, held or not, and bots index it
directly (``balance['AAPL']['total']`` after placing an order, as README's first snippet does). A
broker lists only what the account holds, so a bot would meet KeyError before its first fill. The
adapters therefore add a zero row for the base currency of every market they loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["add_zero_rows"]

_TOTALS = ("free", "used", "total")


def add_zero_rows(balance: dict[str, Any], markets: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Add ``{free: 0, used: 0, total: 0}`` for every market's base not in ``balance`` (a ccxt balance
    structure, after ``safe_balance``); the per-kind maps (``balance['total']`` ...) get the zeros too."""
    for market in markets:
        code = market.get("base")
        if not code or code in balance:
            continue
        balance[code] = {key: 0.0 for key in _TOTALS}
        for key in _TOTALS:
            per_kind = balance.get(key)
            if isinstance(per_kind, dict):
                per_kind[code] = 0.0
    return balance
