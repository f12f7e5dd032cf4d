"""The sync face against its async twin and against the raw clients, both brokers, in one run.

A sync ccxt bot calls ``ccxt.ibkr(...)`` / ``ccxt.capitalcom(...)`` from its own thread, which runs no
event loop; the sync face runs the async implementation on a private loop (see
``normalization/runtime/loop_thread.py``). This bench is that bot: the main thread calls the sync face
directly, and runs the async twin and the raw client one operation at a time on a loop of its own
(``run_until_complete``; the async side's time is taken inside its coroutine, as an async bot sees it).

1. ``create_order``, one phase per broker in which three sides take turns in a seeded random order:
   the raw client (IB: ``ib.placeOrder`` -> Submitted; Capital: bare httpx ``POST /positions`` +
   ``GET /confirms``), the async face, the sync face (both with the broker's default journal on disk).
   Printed: the medians, the sync face's cost over its async twin (goal <= +0.15 ms) and over the raw
   client, with the spread over five slices of the phase; and the raw client's median split by which
   face ran just before it: the sync face's background work (its loop thread taking over what a call
   left behind) must not slow what runs beside it.
   Then the sync face against its async twin alone, the two in a random order each round: the goal's
   measure (with the raw client in the rounds, the async face often follows it warm on the same loop).
   Then where the sync call's time goes: the same create_order timed inside its coroutine on both faces
   (equal: the body runs the same code on either loop) and the sync call around it, whose difference is
   the turn (the facade, taking the loop, ``run_forever`` starting and stopping, handing it back).
2. Each other method the faces share, sync against async, interleaved the same way.

After every operation the side's deferred bookkeeping (the journal writes the adapters run right after
returning) is let run, untimed, on both faces alike (``await asyncio.sleep(0)`` / a no-op sync call).
The simulators run as their own processes, rate limits and pacing off.

    .venv/bin/python bench/bench_sync_face.py [--orders 400] [--calls 200] [--broker ib|capital|both]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench_capital_trader import Side, Target, bare_deals, bare_login  # noqa: E402
from bench_capital_trader import simulator as capital_simulator  # noqa: E402
from bench_ib_sim import simulator as ib_simulator  # noqa: E402
from bench_ibkr_trader import unbound_pacer  # noqa: E402

import ccxt_capital  # noqa: E402
import ccxt_ibkr  # noqa: E402
from ccxt_capital.async_support import CapitalTrader  # noqa: E402
from ccxt_ibkr._ib import ib_lib  # noqa: E402
from ccxt_ibkr.async_support import IBTrader  # noqa: E402

SLICES = 5


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def _nothing() -> None:
    return None


class Bench:
    """The bot's thread: its own loop for the raw client and the async face, the sync face called directly."""

    def __init__(self, seed: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.shuffle = random.Random(seed).shuffle
        self.cpu = 0.0  # the process's CPU time (all threads) in the last timed operation

    def run(self, awaitable: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(awaitable)

    def timed_async(self, make: Callable[[], Awaitable[Any]]) -> float:
        async def op() -> float:
            cpu, started = time.process_time(), time.perf_counter()
            await make()
            elapsed = time.perf_counter() - started
            self.cpu = time.process_time() - cpu
            await asyncio.sleep(0)  # its deferred bookkeeping, untimed
            return elapsed
        return self.run(op())

    def timed_sync(self, sync: Any, call: Callable[[], Any]) -> float:
        cpu, started = time.process_time(), time.perf_counter()
        call()
        elapsed = time.perf_counter() - started
        self.cpu = time.process_time() - cpu
        sync._loop_thread.run(_nothing(), 10)  # its deferred bookkeeping, untimed
        return elapsed

    def turn_split(self, asy: Any, syn: Any, order: Callable[[Any, int], Awaitable[Any]], rounds: int
                   ) -> dict[str, list[tuple[float, float]]]:
        """Where a sync call's time goes: the same create_order timed inside its coroutine on both faces
        (as an async bot sees it), and the sync call around it (the turn: the facade, taking the loop,
        ``run_forever`` starting and stopping, handing the loop back). CPU time of the calling thread
        beside the wall time: the split is what the turn costs in context, caches cold."""
        impl, loop_thread = syn.impl, syn._loop_thread
        samples: dict[str, list[tuple[float, float]]] = {"async body": [], "sync body": [], "sync call": []}

        async def body(exchange: Any, i: int, key: str) -> None:
            cpu, started = time.thread_time(), time.perf_counter()
            await order(exchange, i)
            samples[key].append((time.thread_time() - cpu, time.perf_counter() - started))

        def run_async(i: int) -> None:
            self.run(body(asy, i, "async body"))
            self.run(asyncio.sleep(0))

        def run_sync(i: int) -> None:
            cpu, started = time.thread_time(), time.perf_counter()
            loop_thread.run(body(impl, i, "sync body"), 60)
            samples["sync call"].append((time.thread_time() - cpu, time.perf_counter() - started))
            loop_thread.run(_nothing(), 10)

        sides = [run_async, run_sync]
        for i in range(10 + rounds):
            self.shuffle(sides)
            for side in sides:
                side(i)
        return {key: values[10:] for key, values in samples.items()}

    def cancel_sides(self, asy: Any, syn: Any, symbol: str, amount_price: Callable[[int], tuple[float, float]]
                     ) -> dict[str, Callable[[int], float]]:
        """Each face cancels a resting limit order it has just placed (the placement and its deferred
        bookkeeping untimed, alike on both faces)."""
        def run_async(i: int) -> float:
            ids: list[str] = []

            async def place() -> None:
                ids.append((await asy.create_order(symbol, "limit", "buy", *amount_price(i)))["id"])
            self.timed_async(place)
            return self.timed_async(lambda: asy.cancel_order(ids[0], symbol))

        def run_sync(i: int) -> float:
            ids: list[str] = []
            self.timed_sync(syn, lambda: ids.append(syn.create_order(symbol, "limit", "buy", *amount_price(i))["id"]))
            return self.timed_sync(syn, lambda: syn.cancel_order(ids[0], symbol))
        return {"async": run_async, "sync": run_sync}

    def interleave(self, sides: dict[str, Callable[[int], float]], rounds: int, warmup: int = 10) -> dict[str, Any]:
        """Every side once per round in a random order; samples per side, and the raw side's samples
        keyed by the side that ran just before it."""
        for i in range(warmup):
            for side in sides.values():
                side(i)
        samples: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        after: dict[str, list[float]] = {name: [] for name in sides}
        order = list(sides)
        previous = order[-1]
        for i in range(rounds):
            self.shuffle(order)
            for name in order:
                value = sides[name](warmup + i)
                samples[name].append(value)
                cpu[name].append(self.cpu)
                if name == "raw":
                    after[previous].append(value)
                previous = name
        return {"samples": samples, "after": after, "cpu": cpu}


def _slices(a: list[float], b: list[float]) -> list[float]:
    size = max(len(a) // SLICES, 1)
    return [(statistics.median(a[i:i + size]) - statistics.median(b[i:i + size])) * 1000
            for i in range(0, size * SLICES, size) if a[i:i + size] and b[i:i + size]]


def _paired(a: list[float], b: list[float]) -> float:
    """The median of each round's own difference: what drift between rounds cannot move."""
    return statistics.median(x - y for x, y in zip(a, b, strict=True)) * 1000


def report_create_order(broker: str, raw_label: str, result: dict[str, Any]) -> None:
    s, after = result["samples"], result["after"]
    raw, asy, syn = _ms(s["raw"]), _ms(s["async"]), _ms(s["sync"])
    gap = _slices(s["sync"], s["async"])
    print(f"{broker} create_order, {len(s['raw'])} rounds (raw, async, sync in a random order each round):")
    print(f"  {raw_label:44} {raw:7.3f} ms")
    print(f"  {'async face':44} {asy:7.3f} ms   ratio to raw {asy / raw:5.2f}")
    print(f"  {'sync face (the bot thread calls it)':44} {syn:7.3f} ms   ratio to raw {syn / raw:5.2f}")
    print(f"  sync - async: {syn - asy:+.3f} ms (goal <= +0.150; 5 slices {min(gap):+.3f} .. {max(gap):+.3f}; "
          f"median of the rounds' own differences {_paired(s['sync'], s['async']):+.3f})")
    cpu = result["cpu"]
    print(f"  CPU time of the whole process per call (all threads; less moved by the machine's load): raw "
          f"{_ms(cpu['raw']):.3f}, async {_ms(cpu['async']):.3f}, sync {_ms(cpu['sync']):.3f} ms "
          f"(sync - async {_ms(cpu['sync']) - _ms(cpu['async']):+.3f})")
    if after["sync"] and after["async"]:
        ra, rs = _ms(after["async"]), _ms(after["sync"])
        print(f"  raw right after an async call {ra:7.3f} ms ({len(after['async'])}), right after a sync call "
              f"{rs:7.3f} ms ({len(after['sync'])}): {rs - ra:+.3f} ms")


def report_pair(broker: str, s: dict[str, list[float]]) -> None:
    """The sync face against its async twin alone. In the three-way rounds the async face shares the bot's
    loop with the raw client and follows it warm about half the time, where the sync face's loop is the
    other one: that costs the sync side ~0.1 ms of cold caches that a sync bot, with no second loop on its
    thread, never pays (measured: paired differences +0.07 / +0.13 ms in pairs, +0.21 / +0.25 ms with
    the raw client in the rounds, same code)."""
    asy, syn = _ms(s["async"]), _ms(s["sync"])
    gap = _slices(s["sync"], s["async"])
    print(f"{broker} create_order, the sync face against its async twin alone ({len(s['async'])} rounds, "
          "the two in a random order each round):")
    print(f"  async {asy:7.3f} ms, sync {syn:7.3f} ms: sync - async {syn - asy:+.3f} ms (goal <= +0.150; 5 slices "
          f"{min(gap):+.3f} .. {max(gap):+.3f}; median of the rounds' own differences "
          f"{_paired(s['sync'], s['async']):+.3f})")


def report_turn(broker: str, split: dict[str, list[tuple[float, float]]]) -> None:
    base = split["async body"]
    print(f"{broker} where the sync call's time goes ({len(base)} rounds; medians of each round's difference "
          "from the async body, CPU of the calling thread / wall):")
    for key in ("sync body", "sync call"):
        cpu = statistics.median(x[0] - y[0] for x, y in zip(split[key], base, strict=False)) * 1000
        wall = statistics.median(x[1] - y[1] for x, y in zip(split[key], base, strict=False)) * 1000
        print(f"  {key:10} {cpu:+.3f} / {wall:+.3f} ms")
    turn = [(c[0] - b[0], c[1] - b[1]) for c, b in zip(split["sync call"], split["sync body"], strict=False)]
    print(f"  the turn around the body: {statistics.median(t[0] for t in turn) * 1000:.3f} ms CPU, "
          f"{statistics.median(t[1] for t in turn) * 1000:.3f} ms wall")


def report_methods(broker: str, rows: list[tuple[str, dict[str, list[float]]]]) -> None:
    print(f"{broker} sync face over its async twin, per method (medians, interleaved):")
    for name, s in rows:
        asy, syn = _ms(s["async"]), _ms(s["sync"])
        gap = _slices(s["sync"], s["async"])
        print(f"  {name:22} async {asy:8.3f} ms   sync {syn:8.3f} ms   {syn - asy:+.3f} ms "
              f"(5 slices {min(gap):+.3f} .. {max(gap):+.3f}; rounds {_paired(s['sync'], s['async']):+.3f})")


# ---------------------------------------------------------------------------------------------- IB

def bench_ib(bench: Bench, orders: int, calls: int, tmp: Path) -> None:
    cm = ib_simulator(False)
    host, port = bench.run(cm.__aenter__())
    try:
        ib = ib_lib.IB()
        bench.run(ib.connectAsync(host, port, clientId=1, timeout=10))
        ib.client.MaxRequests = 0
        (aapl,) = bench.run(ib.qualifyContractsAsync(ib_lib.Stock("AAPL", "SMART", "USD")))
        (ticker,) = bench.run(ib.reqTickersAsync(aapl))
        far = ticker.bid - 10

        def options(client_id: int, journal: str) -> dict[str, Any]:
            return {"options": {"host": host, "port": port, "clientId": client_id, "symbols": ["AAPL/USD"],
                                "journal": str(tmp / journal), "pacer": unbound_pacer()}}

        asy = IBTrader(options(2, "ib-async.sqlite"))
        bench.run(asy.load_markets())
        asy.transport.ib.client.MaxRequests = 0
        syn = ccxt_ibkr.IBTrader(options(3, "ib-sync.sqlite"))
        syn.load_markets()
        syn.impl.transport.ib.client.MaxRequests = 0

        def price(i: int) -> float:
            return round(far - (i % 50) * 0.01, 2)

        async def raw_order(i: int) -> None:
            trade = ib.placeOrder(aapl, ib_lib.LimitOrder("BUY", 1, price(i)))
            while trade.orderStatus.status != "Submitted":
                await asyncio.wait_for(trade.statusEvent, 10)

        # Per method first, while each face has only a few resting orders.
        resting = {"async": [bench.run(asy.create_order("AAPL/USD", "limit", "buy", 1, price(i)))["id"]
                             for i in range(3)],
                   "sync": [syn.create_order("AAPL/USD", "limit", "buy", 1, price(i))["id"] for i in range(3)]}

        def method(name: str, *args: Any, per_face: dict[str, tuple[Any, ...]] | None = None
                   ) -> dict[str, Callable[[int], float]]:
            a_args = per_face["async"] if per_face else args
            s_args = per_face["sync"] if per_face else args
            return {"async": lambda i: bench.timed_async(lambda: getattr(asy, name)(*a_args)),
                    "sync": lambda i: bench.timed_sync(syn, lambda: getattr(syn, name)(*s_args))}

        rows = []
        for label, sides in [
            ("fetch_order", method("fetch_order", per_face={"async": (resting["async"][0], "AAPL/USD"),
                                                            "sync": (resting["sync"][0], "AAPL/USD")})),
            ("fetch_open_orders", method("fetch_open_orders", "AAPL/USD")),
            ("fetch_balance", method("fetch_balance")),
            ("fetch_positions", method("fetch_positions")),
            ("fetch_ticker", method("fetch_ticker", "AAPL/USD")),
            ("cancel_order", bench.cancel_sides(asy, syn, "AAPL/USD", lambda i: (1, price(i)))),
        ]:
            rows.append((label, bench.interleave(sides, calls, warmup=3)["samples"]))

        sides = {
            "raw": lambda i: bench.timed_async(lambda: raw_order(i)),
            "async": lambda i: bench.timed_async(lambda: asy.create_order("AAPL/USD", "limit", "buy", 1, price(i))),
            "sync": lambda i: bench.timed_sync(syn, lambda: syn.create_order("AAPL/USD", "limit", "buy", 1, price(i))),
        }
        report_create_order("IB", "raw ib_async placeOrder -> Submitted", bench.interleave(sides, orders))
        report_pair("IB", bench.interleave({"async": sides["async"], "sync": sides["sync"]}, orders)["samples"])
        report_turn("IB", bench.turn_split(
            asy, syn, lambda exchange, i: exchange.create_order("AAPL/USD", "limit", "buy", 1, price(i)), orders // 2))
        report_methods("IB", rows)
        syn.close()
        bench.run(asy.close())
        ib.disconnect()
    finally:
        bench.run(cm.__aexit__(None, None, None))


# ---------------------------------------------------------------------------------------------- Capital

def bench_capital(bench: Bench, orders: int, calls: int, tmp: Path) -> None:
    cm = capital_simulator(False)
    target: Target = bench.run(cm.__aenter__())
    http = httpx.AsyncClient(base_url=target.api_url, timeout=30)
    try:
        headers = bench.run(bare_login(http, target))

        def config(journal: str) -> dict[str, Any]:
            return {"apiKey": target.api_key, "login": target.identifier, "password": target.password,
                    "options": {"baseUrl": target.base_url, "pacing": False, "journal": str(tmp / journal),
                                "symbols": ["EUR/USD", "BTC/USD"], "clock": target.now}}

        asy = CapitalTrader(config("cap-async.sqlite"))
        bench.run(asy.load_markets())
        syn = ccxt_capital.CapitalTrader(config("cap-sync.sqlite"))
        syn.load_markets()
        bare, counts = Side("bare"), {"async": 0, "sync": 0}

        def direction(face: str) -> str:
            counts[face] += 1
            return "buy" if counts[face] % 2 else "sell"  # the account stays flat

        ticker = bench.run(asy.fetch_ticker("EUR/USD"))
        far = round(ticker["bid"] * 0.8, 4)
        resting = {"async": bench.run(asy.create_order("EUR/USD", "limit", "buy", 1000, far))["id"],
                   "sync": syn.create_order("EUR/USD", "limit", "buy", 1000, far)["id"]}

        def method(name: str, *args: Any, per_face: dict[str, tuple[Any, ...]] | None = None
                   ) -> dict[str, Callable[[int], float]]:
            a_args = per_face["async"] if per_face else args
            s_args = per_face["sync"] if per_face else args
            return {"async": lambda i: bench.timed_async(lambda: getattr(asy, name)(*a_args)),
                    "sync": lambda i: bench.timed_sync(syn, lambda: getattr(syn, name)(*s_args))}

        rows = []
        for label, sides in [
            ("fetch_order", method("fetch_order", per_face={"async": (resting["async"], "EUR/USD"),
                                                            "sync": (resting["sync"], "EUR/USD")})),
            ("fetch_open_orders", method("fetch_open_orders", "EUR/USD")),
            ("fetch_balance", method("fetch_balance")),
            ("fetch_positions", method("fetch_positions")),
            ("fetch_ticker", method("fetch_ticker", "EUR/USD")),
            ("cancel_order", bench.cancel_sides(asy, syn, "EUR/USD", lambda i: (1000, far))),
        ]:
            rows.append((label, bench.interleave(sides, calls, warmup=3)["samples"]))

        sides = {
            "raw": lambda i: bench.timed_async(lambda: bare_deals(http, headers, bare, 1)),
            "async": lambda i: bench.timed_async(
                lambda: asy.create_order("EUR/USD", "market", direction("async"), 1000)),
            "sync": lambda i: bench.timed_sync(
                syn, lambda: syn.create_order("EUR/USD", "market", direction("sync"), 1000)),
        }
        report_create_order("Capital", "bare httpx POST /positions + GET /confirms", bench.interleave(sides, orders))
        report_pair("Capital", bench.interleave({"async": sides["async"], "sync": sides["sync"]}, orders)["samples"])
        report_turn("Capital", bench.turn_split(
            asy, syn, lambda exchange, i: exchange.create_order("EUR/USD", "market", "buy" if i % 2 else "sell", 1000),
            orders // 2))
        report_methods("Capital", rows)
        syn.close()
        bench.run(asy.close())
    finally:
        bench.run(http.aclose())
        bench.run(cm.__aexit__(None, None, None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400, help="create_order rounds per broker")
    parser.add_argument("--calls", type=int, default=150, help="rounds per method in the per-method table")
    parser.add_argument("--broker", choices=("ib", "capital", "both"), default="both")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # the cancel phase's "Error 202, Order Canceled"
    bench = Bench(args.seed)
    print("simulators in their own processes; rate limits and pacing off; default journals on disk")
    with tempfile.TemporaryDirectory() as tmp:
        if args.broker in ("ib", "both"):
            bench_ib(bench, args.orders, args.calls, Path(tmp))
        if args.broker in ("capital", "both"):
            bench_capital(bench, args.orders, args.calls, Path(tmp))
    bench.loop.close()


if __name__ == "__main__":
    main()
