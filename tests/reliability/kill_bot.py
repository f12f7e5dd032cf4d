"""The bot of the kill loop (``test_kill_loop.py``): an ordinary ccxt bot, sync API, its own clientOrderIds.

It does what a bot that no one here wrote does after a crash: it places again every clientOrderId it
had attempted (``--redo``, the standard at-least-once retry), then goes on with its plan. The parent
SIGKILLs it at seeded random moments and reads what it did from stdout, one JSON line per step:

* ``ready`` once connected and the markets are loaded;
* ``attempt`` (cid) right before each ``create_order``; ``placed`` (cid, id, status, permId) or
  ``failed`` (cid, error) right after;
* with ``--report``: ``report`` (every cid's ``fetch_order`` and all ``fetch_my_trades``) at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ccxt  # noqa: E402

from tests.reliability.bots import add_exchange_args, emit, emit_report, make_exchange  # noqa: E402


def connect(ex: Any) -> None:
    """Load markets; a clientId still held by the killed process (IB 326) is retried, as a bot would."""
    for attempt in range(100):
        try:
            ex.load_markets()
            return
        except (ccxt.AuthenticationError, ccxt.NetworkError):
            if attempt == 99:
                raise
            time.sleep(0.05)  # the bot's own reconnect policy, not a test wait


def place(ex: Any, spec: dict[str, Any]) -> dict[str, Any] | None:
    """One create_order with the bot's own clientOrderId; an honest 'not yet' is asked again later."""
    emit(event="attempt", cid=spec["cid"])
    try:
        order = ex.create_order(spec["symbol"], spec["type"], spec["side"], spec["amount"], spec.get("price"),
                                {"clientOrderId": spec["cid"]})
    except ccxt.BaseError as error:
        emit(event="failed", cid=spec["cid"], error=type(error).__name__, message=str(error)[:300])
        return None
    info = order.get("info") or {}
    emit(event="placed", cid=spec["cid"], id=order["id"], status=order["status"], filled=order.get("filled"),
         permId=info.get("permId") if isinstance(info, dict) else None)
    return order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_exchange_args(parser)
    parser.add_argument("--plan", required=True, help="[{cid, symbol, type, side, amount, price}] still to place")
    parser.add_argument("--redo", default="[]", help="specs attempted by earlier runs: placed again first")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args(argv)
    ex = make_exchange(args)
    try:
        connect(ex)
        emit(event="ready")
        for spec in json.loads(args.redo):
            for _ in range(20):  # ReconciliationPending / reconnecting: ask again, as the error says
                if place(ex, spec) is not None:
                    break
        for spec in json.loads(args.plan):
            place(ex, spec)
        if args.report:
            emit_report(ex, json.loads(args.redo) + json.loads(args.plan))
    finally:
        ex.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
