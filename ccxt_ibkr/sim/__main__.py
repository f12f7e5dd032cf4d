"""``python -m ccxt_ibkr.sim --port 7497``: run the fake TWS until interrupted.

The clock follows real time (optionally from ``--start``), so a human sees live-looking
ticks and resting orders fill as prices move; tests use the in-process API instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import signal
import sys

from .server import IBSimulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ccxt_ibkr.sim", description=__doc__)
    parser.add_argument("--port", type=int, default=7497, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic price paths")
    parser.add_argument("--base-currency", default="USD", help="account base currency (USD, AUD, EUR, ...)")
    parser.add_argument("--cash", type=float, default=1_000_000.0, help="starting cash in the base currency")
    parser.add_argument("--account", default="DU1234567", help="account id reported to clients")
    parser.add_argument(
        "--csv", action="append", default=[], metavar="SYMBOL=PATH",
        help="replay prices for SYMBOL (or localSymbol) from a CSV of bars time,open,high,low,close,volume",
    )
    parser.add_argument("--start", help="simulated start time, ISO-8601 (default: now)")
    parser.add_argument("--no-pacing", action="store_true", help="do not enforce historical-data pacing")
    parser.add_argument("--tick-interval", type=float, default=1.0, help="seconds between price updates")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    csv_paths = {}
    for item in args.csv:
        symbol, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"--csv expects SYMBOL=PATH, got {item!r}")
        csv_paths[symbol] = path
    start = None
    if args.start:
        when = dt.datetime.fromisoformat(args.start)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        start = when.timestamp()
    sim = IBSimulator(
        port=args.port, seed=args.seed, real_time=True, start=start, base_currency=args.base_currency,
        cash={args.base_currency: args.cash}, account=args.account, csv_paths=csv_paths,
        tick_interval=args.tick_interval,
    )
    sim.pacer.enabled = not args.no_pacing
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with sim:
        print(f"ccxt_ibkr.sim listening on {sim.host}:{sim.port} ({len(sim.catalogue)} contracts, "
              f"account {args.account}, base {args.base_currency})", flush=True)
        await stop.wait()
    print("ccxt_ibkr.sim stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
