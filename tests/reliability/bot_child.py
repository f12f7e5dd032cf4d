"""A small, unmodified-style ccxt bot run as a child process by ``test_process_death.py``.

Why a separate process: the process-death test kills the bot with SIGKILL while an order is in
flight, and a *new* process must then reconcile the shared journal with the broker. The simulator
lives in the test process, so it outlives the bot.

Protocol (one JSON object per stdout line, flushed; the parent never sleeps, it reads lines):

* ``place``: connect, place the ``before`` orders, print ``{"event": "placed", ...}``, wait for a
  ``go`` line on stdin (the parent arms a fault in between), then for each ``after`` order print
  ``{"event": "sending", "cid": ...}`` and place it -- the parent kills us during that call.
* ``report``: connect (which reconciles the journal), then print ``{"event": "report", ...}`` with
  ``fetch_order`` for every clientOrderId and ``fetch_my_trades``, through the sync ccxt API.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability.bots import add_exchange_args, emit, emit_report, make_exchange, summary  # noqa: E402


def place(args: argparse.Namespace, orders: list[dict[str, Any]]) -> None:
    ex = make_exchange(args)
    ex.load_markets()
    placed = []
    for spec in (o for o in orders if o.get("stage", "before") == "before"):
        order = ex.create_order(spec["symbol"], spec["type"], spec["side"], spec["amount"], spec.get("price"),
                                {"clientOrderId": spec["cid"]})
        placed.append(summary(order))
    emit(event="placed", orders=placed)
    if sys.stdin.readline().strip() != "go":
        emit(event="aborted")
        return
    for spec in (o for o in orders if o.get("stage") == "after"):
        emit(event="sending", cid=spec["cid"])
        order = ex.create_order(spec["symbol"], spec["type"], spec["side"], spec["amount"], spec.get("price"),
                                {"clientOrderId": spec["cid"]})
        emit(event="sent", order=summary(order))  # the parent should have killed us before this
    ex.close()


def report(args: argparse.Namespace, orders: list[dict[str, Any]]) -> None:
    ex = make_exchange(args)
    ex.load_markets()
    emit_report(ex, orders)
    ex.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("place", "report"))
    add_exchange_args(parser)
    parser.add_argument("--orders", required=True, help="[{cid, symbol, type, side, amount, price, stage}]")
    args = parser.parse_args(argv)
    orders = json.loads(args.orders)
    try:
        (place if args.mode == "place" else report)(args, orders)
    except Exception as error:  # noqa: BLE001 - reported to the parent, which fails the test with it
        emit(event="error", error=type(error).__name__, message=str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
