"""``python -m ccxt_capital.sim --port PORT [--seed N] [--currency CCY] [--start ISO]``: serve until stopped.

The clock follows real time in this mode (so the demo looks live), from now or from ``--start`` (a
benchmark or a weekend demo that needs markets open picks a weekday), and rate limits use the wall
clock like the real broker. Prints ``listening on 127.0.0.1:PORT`` and the default credentials
once connections are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

from .server import DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD, CapitalSimulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ccxt_capital.sim",
                                     description="Fake Capital.com REST API v1 on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8100, help="TCP port (0 = any free port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic prices")
    parser.add_argument("--currency", default="USD", help="currency of the preferred account")
    parser.add_argument("--balance", type=float, default=10_000.0, help="starting cash per account")
    parser.add_argument("--rate-limits", choices=("wall", "sim", "off"), default="wall")
    parser.add_argument("--start", help="simulated start time, ISO-8601, UTC unless it has an offset (default: now)")
    parser.add_argument("--csv", action="append", default=[], metavar="EPIC=PATH",
                        help="replay bars from a CSV (time,open,high,low,close,volume) for EPIC")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--identifier", default=DEFAULT_IDENTIFIER)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    return parser.parse_args(argv)


def _start(text: str | None) -> float | None:
    """``--start`` as epoch seconds; a time without an offset is UTC, as everywhere in the API."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"--start expects an ISO-8601 time such as 2024-03-05T15:00:00, got {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


async def serve(args: argparse.Namespace) -> None:
    csv: dict[str, str | Path] = {}
    for item in args.csv:
        epic, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--csv expects EPIC=PATH, got {item!r}")
        csv[epic] = path
    sim = CapitalSimulator(port=args.port, seed=args.seed, currency=args.currency.upper(), start=_start(args.start),
                           real_time=True, rate_limits=args.rate_limits, balance=args.balance, csv=csv,
                           api_key=args.api_key, identifier=args.identifier, password=args.password)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with sim:
        print(f"Capital.com simulator listening on 127.0.0.1:{sim.port} (base URL {sim.api_url})", flush=True)
        print(f"credentials: X-CAP-API-KEY={sim.api_key} identifier={sim.identifier} "
              f"password={sim.password}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
