"""What the two bots run as child processes share: the exchange they build from their flags, their one
JSON line per event on stdout, and the closing report of what the exchange says about their orders.

``kill_bot.py`` (the kill loop) and ``bot_child.py`` (process death) are scripts: each puts the
repository root on ``sys.path`` and imports this module.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import ccxt


def emit(**payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def add_exchange_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", choices=("ib", "capital"), required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--options", default="{}", help="the exchange's options, as JSON")
    parser.add_argument("--credentials", default="{}", help="apiKey/login/password (Capital), as JSON")


def make_exchange(args: argparse.Namespace) -> Any:
    """The sync exchange of ``--broker`` with ``--options`` (journal at ``--journal``) and ``--credentials``."""
    options: dict[str, Any] = json.loads(args.options)
    options["journal"] = args.journal
    if args.broker == "ib":
        import ccxt_ibkr

        return ccxt_ibkr.IBTrader({"options": options})
    import ccxt_capital

    config: dict[str, Any] = json.loads(args.credentials)
    config["options"] = options
    return ccxt_capital.CapitalTrader(config)


def summary(order: dict[str, Any]) -> dict[str, Any]:
    return {k: order.get(k) for k in ("id", "clientOrderId", "status", "filled", "amount", "symbol", "fee")}


def emit_report(ex: Any, specs: list[dict[str, Any]]) -> None:
    """``report``: ``fetch_order`` of every spec's clientOrderId (or the error it raised) and the
    ``fetch_my_trades`` of their symbols, through the sync ccxt API."""
    orders: dict[str, Any] = {}
    for spec in specs:
        cid = spec["cid"]
        try:
            orders[cid] = summary(ex.fetch_order(cid, spec["symbol"], {"clientOrderId": cid}))
        except ccxt.BaseError as error:
            orders[cid] = {"error": type(error).__name__, "message": str(error)[:300]}
    symbols = sorted({spec["symbol"] for spec in specs})
    trades = [{k: t.get(k) for k in ("id", "order", "amount", "price", "fee", "symbol")}
              for symbol in symbols for t in ex.fetch_my_trades(symbol)]
    emit(event="report", orders=orders, trades=trades)
