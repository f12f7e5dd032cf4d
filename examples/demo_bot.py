"""A plain ccxt bot: it knows only ccxt's unified API and gets its exchange by id.

    python examples/demo_bot.py                       # Interactive Brokers, embedded simulator
    python examples/demo_bot.py --exchange capitalcom # Capital.com, same bot code

With no broker configured the venue's simulator is started in-process, so the demo needs no
account. ``exchange_config`` is the only venue-aware code: it returns (id, config, symbol).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Any

import ccxt


def exchange_config(exchange_id: str, stack: contextlib.ExitStack) -> tuple[str, dict[str, Any], str]:
    """The venue's ccxt id, its config and the symbol to trade; starts a simulator if needed."""
    if exchange_id == "ibkr":
        import ccxt_ibkr  # noqa: F401 - registers ccxt.ibkr

        # The IB client library logs IB's informational messages ("Error 202 Order Canceled") as errors.
        logging.getLogger(ccxt_ibkr.IB_LIBRARY_NAME).setLevel(logging.CRITICAL)

        host, port = os.environ.get("IB_HOST"), os.environ.get("IB_PORT")
        if not port:  # no broker configured: the embedded fake TWS on a free loopback port
            from ccxt_ibkr.sim.server import IBSimulator

            sim = stack.enter_context(IBSimulator(port=0, seed=1))
            host, port = sim.host, str(sim.port)
        options = {"host": host or "127.0.0.1", "port": int(port), "clientId": 7, "symbols": ["AAPL/USD"],
                   "journal": None}
        return "ibkr", {"options": options}, "AAPL/USD"
    if exchange_id == "capitalcom":
        import ccxt_capital  # noqa: F401 - registers ccxt.capitalcom

        key, login, password = (os.environ.get(n) for n in ("CAPITAL_API_KEY", "CAPITAL_LOGIN", "CAPITAL_PASSWORD"))
        options: dict[str, Any] = {"symbols": ["AAPL/USD"], "journal": None}
        if not (key and login and password):  # no account configured: the embedded fake Capital.com
            from ccxt_capital.sim import CapitalSimulator

            # Real-time clock from a Tuesday 10:00 New York (markets open), limits measured in real time.
            sim = stack.enter_context(CapitalSimulator(port=0, seed=1, real_time=True, rate_limits="wall"))
            key, login, password = sim.api_key, sim.identifier, sim.password
            options["baseUrl"] = sim.base_url
        return "capitalcom", {"apiKey": key, "login": login, "password": password, "options": options}, "AAPL/USD"
    raise SystemExit(f"unknown exchange {exchange_id!r}; this demo knows: ibkr, capitalcom")


def money(value: float | None, code: str = "USD") -> str:
    return "n/a" if value is None else f"{value:,.2f} {code}"


def run_bot(exchange: ccxt.Exchange, symbol: str) -> None:
    markets = exchange.load_markets()
    market = markets[symbol]
    base, quote = market["base"], market["quote"]
    print(f"== {exchange.name} ({exchange.id}): {symbol}, tick {market['precision']['price']}")

    ticker = exchange.fetch_ticker(symbol)
    print(f"ticker   bid {ticker['bid']}  ask {ticker['ask']}  last {ticker['last']}")
    candles = exchange.fetch_ohlcv(symbol, "1h", limit=24)
    closes = [c[4] for c in candles]
    print(f"ohlcv    {len(candles)} x 1h, SMA(24) {sum(closes) / len(closes):.2f}, last close {closes[-1]}")

    start = exchange.fetch_balance()
    held_before = (start.get(base) or {}).get("total") or 0

    buy = exchange.create_order(symbol, "market", "buy", 10)
    print(f"order    {buy['id']} market buy 10 -> {buy['status']}, filled {buy['filled']} @ {buy['average']}")

    bid = exchange.fetch_ticker(symbol)["bid"]
    price = float(exchange.price_to_precision(symbol, bid * 0.95))
    limit = exchange.create_order(symbol, "limit", "buy", 5, price)
    print(f"order    {limit['id']} limit buy 5 @ {price} -> {limit['status']} ({limit['timeInForce']})")
    print(f"open     {[o['id'] for o in exchange.fetch_open_orders(symbol)]}")
    canceled = exchange.cancel_order(limit["id"], symbol)
    print(f"cancel   {canceled['id']} -> {canceled['status']}")

    balance = exchange.fetch_balance()
    print(f"balance  {base} {balance[base]['total']} (was {held_before}), {money(balance[quote]['free'], quote)} free")

    sell = exchange.create_order(symbol, "market", "sell", 10)
    print(f"order    {sell['id']} market sell 10 -> {sell['status']}, filled {sell['filled']} @ {sell['average']}")

    ours = {buy["id"], sell["id"]}
    fills = [t for t in exchange.fetch_my_trades(symbol) if t["order"] in ours]
    pnl = 0.0
    for fill in fills:
        fee = fill["fee"]["cost"] if fill["fee"] and fill["fee"]["cost"] is not None else 0.0
        sign = -1 if fill["side"] == "buy" else 1
        pnl += sign * fill["cost"] - fee
        fee_code = (fill["fee"] or {}).get("currency") or quote
        print(f"fill     {fill['id']} {fill['side']:4} {fill['amount']:g} @ {fill['price']} fee {money(fee, fee_code)}")
    end = exchange.fetch_balance()
    print(f"pnl      {money(pnl, quote)} realised after fees; total {money(end[quote]['total'], quote)}")
    print(f"final    {base} {(end.get(base) or {}).get('total') or 0} held")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchange", default="ibkr", help="ccxt id of the venue (ibkr, capitalcom)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        exchange_id, config, symbol = exchange_config(args.exchange, stack)
        exchange = getattr(ccxt, exchange_id)(config)  # exactly how ccxt bots pick a venue
        stack.callback(exchange.close)
        try:
            run_bot(exchange, symbol)
        except ccxt.BaseError as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
