"""Dry runs: every order validated, checked against the limits, priced and journaled, none sent.

``options['dryRun'] = True`` (or ``CCXT_BROKERS_DRY_RUN=1``) turns a bot into a rehearsal of itself:
create_order runs every check a real order meets (arguments, market precision and limits, the
pre-trade limits), estimates its price and fee, journals it, and returns without a byte reaching the
broker. Market data and account reads still go to the broker: a dry run prices against real quotes.

The answer is a ccxt order with ``status`` ``'canceled'``, ``filled`` 0 and ``info['dryRun']`` True:
ccxt has no "not sent" status, and of its five only ``canceled`` is true of an order that never
traded and never will without being an error -- ``open`` would have a bot wait for (or cancel) an order
that does not exist, ``closed`` would claim a fill, ``rejected`` would read as a broker refusal. The
estimate (price, cost, fee) and the request that would have been sent are in ``info``; the fee is
also the order's ``fee``.

Dry runs are journaled under their own scope (account ``<account>:dry-run`` in the same journal), so a
clientOrderId rehearsed is never mistaken for a real order later, and they count towards no limit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from normalization.arguments import parse_flag
from normalization.runtime.journal import OrderJournal

__all__ = ["DRY_RUN_ENV", "DRY_RUN_SCOPE", "dry_run_enabled", "dry_run_journal", "dry_run_order"]

DRY_RUN_ENV = "CCXT_BROKERS_DRY_RUN"
DRY_RUN_SCOPE = ":dry-run"
DRY_RUN_STATE = "canceled"


def dry_run_enabled(exchange_id: str, options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> bool:
    """``options['dryRun']`` if given (a flag, read strictly), else ``$CCXT_BROKERS_DRY_RUN``."""
    if options.get("dryRun") is not None:
        return parse_flag(options["dryRun"], "dryRun", exchange_id)
    env = os.environ if env is None else env
    text = str(env.get(DRY_RUN_ENV, "") or "").strip().lower()
    if not text:
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    from normalization.runtime.factory import ConfigError

    raise ConfigError(f"{DRY_RUN_ENV}={text!r} must be 1 or 0")


def dry_run_journal(journal: OrderJournal) -> OrderJournal:
    """Where dry runs are journaled: the same store, account scope ``<account>:dry-run``."""
    return journal.scoped(journal.account + DRY_RUN_SCOPE)


def dry_run_order(exchange: Any, journal: OrderJournal, client_order_id: str, intent: Mapping[str, Any],
                  market: Mapping[str, Any], *, reference_price: float | None, fee: Mapping[str, Any] | None,
                  request: Mapping[str, Any], reduce_only: bool = False) -> dict[str, Any]:
    """Journal a dry run (once per clientOrderId: a repeat returns the first) and return it as a ccxt order.

    ``intent``: symbol, side, type, amount, price, trigger_price as the journal keeps them;
    ``request``: what would have been sent (JSON-ready); ``exchange``: for ccxt's ``safe_order``."""
    size = float(market.get("contractSize") or 1.0)
    amount = float(intent["amount"])
    estimate = {
        "price": reference_price,
        "cost": None if reference_price is None else amount * reference_price * size,
        "fee": dict(fee) if fee else None,
    }
    info = {"dryRun": True, "sent": False, "estimate": estimate, "request": dict(request)}
    row, _ = journal.record_intent(client_order_id, **intent, params=info, state=DRY_RUN_STATE)
    kept = row.params or info
    return exchange.safe_order({
        "id": row.client_order_id,
        "clientOrderId": row.client_order_id,
        "timestamp": row.created,
        "datetime": exchange.iso8601(row.created),
        "lastTradeTimestamp": None,
        "symbol": row.symbol,
        "type": row.type,
        "side": row.side,
        "amount": row.amount,
        "price": row.price,
        "triggerPrice": row.trigger_price,
        "status": DRY_RUN_STATE,
        "filled": 0.0,
        "remaining": row.amount,
        "cost": 0.0,
        "average": None,
        "fee": (kept.get("estimate") or {}).get("fee"),
        "trades": [],
        "reduceOnly": reduce_only,
        "info": kept,
    }, market)
