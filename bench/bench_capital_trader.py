"""CapitalTrader overhead against bare httpx on the same simulator, as ratios from one run.

1. ``create_order`` (market, through the confirm) vs a bare ``httpx.AsyncClient`` loop of
   ``POST /positions`` + ``GET /confirms/{ref}``: the same two requests per deal. CapitalTrader also
   checks the arguments, records the order in its journal before sending and parses the confirm into
   a ccxt order. A third side, the floor, sends the same requests straight to an httpx connection
   pool, prepared by hand, as CapitalTrader's transport does (it skips ``client.request``'s generic
   merging): the adapter's own bookkeeping is its ratio against the floor (for information).
   Rows: the journal in memory (``options['journal'] = None``), and on disk with each
   ``journalSync``: ``"normal"`` (survives the process dying, the disk left to the kernel),
   ``"behind"`` (the Capital default: fsynced by a background thread right after the send) and
   ``"full"`` (fsynced before every send). Each row runs in its own phase against the bare client
   and the floor.
2. ``fetch_ohlcv`` of 10,000 one-minute bars vs bare httpx paging through the same ``from``/``to``
   windows of 1000 bars, decoded with ``response.json()`` and nothing else (a second baseline row
   decodes with orjson, for information: what a hand-written loop could do at best).

By default the simulator runs as its own process (``python -m ccxt_capital.sim``), as the broker is:
client and server then do not share one GIL, so neither side's CPU time is billed to the other's
waits. ``--in-process`` runs it on a thread of this process instead (the test harness). There the
journal writes CapitalTrader runs while a request is in flight (a settled deal's ids, fills and status
ride on the next deal's requests) compete with the simulator for the GIL and delay its answers, which
a broker on another machine never suffers: the in-process ratios overstate the adapter's cost.

The simulator's rate limits are **off** and the adapter's own limiter is switched off
(``options['pacing'] = False``): with them on, both sides would spend most of the time waiting out the
same 10 req/s and 1 deal / 0.1 s windows, and the ratio would say nothing about the adapter. Deals are
timed in batches, the two sides of a phase taking turns in a seeded random order (so drift of the
machine hits both alike); a batch's time includes the journal writes CapitalTrader runs after
returning (they are billed, not hidden). The figure is the ratio of the batches' medians; the five
slices show how much the machine moved during the phase. Goal: <= 1.15.

    .venv/bin/python bench/bench_capital_trader.py [--deals 400] [--rounds 21] [--bars 10000] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ratios import chunk_ratios  # noqa: E402
from sim_process import sim_process  # noqa: E402

import ccxt_capital.transport as capital_transport  # noqa: E402
from ccxt_capital.async_support import CapitalTrader  # noqa: E402
from ccxt_capital.sim import CapitalSimulator  # noqa: E402
from ccxt_capital.sim.server import DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD  # noqa: E402

#: A Tuesday, 10:00 in New York: FX and crypto are open (the standalone simulator follows real time from it).
START = "2024-03-05T15:00:00"

ROWS = (  # label, journal (None = in memory, else a file name), journalSync
    ("CapitalTrader, journal in memory", None, "full"),
    ("CapitalTrader, journal on disk, sync normal", "normal.sqlite", "normal"),
    ("CapitalTrader, journal on disk, sync behind (default)", "behind.sqlite", "behind"),
    ("CapitalTrader, journal on disk, sync full", "full.sqlite", "full"),
)

try:
    import orjson

    _orjson_loads: Callable[[bytes], Any] | None = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _orjson_loads = None


@dataclass
class Target:
    """Where the simulator listens, its credentials and its clock (epoch seconds)."""

    base_url: str
    api_key: str
    identifier: str
    password: str
    now: Callable[[], float]

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/v1"


@contextlib.asynccontextmanager
async def simulator(in_process: bool) -> AsyncIterator[Target]:
    if in_process:
        with CapitalSimulator(port=0, rate_limits="off") as sim:
            yield Target(sim.base_url, sim.api_key, sim.identifier, sim.password, sim.clock.now)
        return
    async with sim_process("ccxt_capital.sim", "--rate-limits", "off", "--start", START) as (host, port):
        base_url = f"http://{host}:{port}"
        async with httpx.AsyncClient(base_url=base_url + "/api/v1") as http:
            before = time.time()
            server_ms = (await http.get("/time")).json()["serverTime"]
            offset = server_ms / 1000 - (before + time.time()) / 2
        yield Target(base_url, DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD, lambda: time.time() + offset)


def _fmt(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


async def bare_login(http: httpx.AsyncClient, target: Target) -> dict[str, str]:
    answer = await http.post("/session", headers={"X-CAP-API-KEY": target.api_key},
                             json={"identifier": target.identifier, "password": target.password})
    answer.raise_for_status()
    return {"CST": answer.headers["CST"], "X-SECURITY-TOKEN": answer.headers["X-SECURITY-TOKEN"]}


class Side:
    """One contestant: its deal counter (buys and sells alternate, so the account stays flat) and samples."""

    def __init__(self, label: str, exchange: CapitalTrader | None = None) -> None:
        self.label = label
        self.exchange = exchange
        self.count = 0
        self.samples: list[float] = []

    def direction(self) -> str:
        self.count += 1
        return "buy" if self.count % 2 else "sell"


async def bare_deals(http: httpx.AsyncClient, headers: dict[str, str], side: Side, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        sent = await http.post("/positions", headers=headers,
                               json={"epic": "EURUSD", "direction": side.direction().upper(), "size": 1000})
        sent.raise_for_status()
        confirm = await http.get(f"/confirms/{sent.json()['dealReference']}", headers=headers)
        confirm.raise_for_status()
        assert confirm.json()["dealStatus"] == "ACCEPTED"
    return (time.perf_counter() - start) / count


async def floor_deals(pool: httpx.AsyncHTTPTransport, target: Target, headers: dict[str, str], side: Side,
                      count: int) -> float:
    """The same two requests, prepared by hand and sent straight to an httpx connection pool: what
    CapitalTrader's transport does under its bookkeeping, without the bookkeeping (for information)."""
    fields = [("Accept", "application/json"), *headers.items()]
    timeouts = httpx.Timeout(30).as_dict()
    positions = httpx.URL(target.api_url + "/positions")
    start = time.perf_counter()
    for _ in range(count):
        body = json.dumps({"epic": "EURUSD", "direction": side.direction().upper(), "size": 1000}).encode()
        sent = await pool.handle_async_request(httpx.Request(
            "POST", positions, headers=[*fields, ("Content-Type", "application/json")], content=body,
            extensions={"timeout": timeouts}))
        await sent.aread()
        assert sent.status_code == 200, sent.status_code
        reference = json.loads(sent.content)["dealReference"]
        confirm = await pool.handle_async_request(httpx.Request(
            "GET", httpx.URL(f"{target.api_url}/confirms/{reference}"), headers=fields,
            extensions={"timeout": timeouts}))
        await confirm.aread()
        assert json.loads(confirm.content)["dealStatus"] == "ACCEPTED"
    return (time.perf_counter() - start) / count


async def trader_deals(side: Side, count: int) -> float:
    exchange = side.exchange
    assert exchange is not None
    start = time.perf_counter()
    for _ in range(count):
        order = await exchange.create_order("EUR/USD", "market", side.direction(), 1000)
        assert order["status"] == "closed", order
    await asyncio.sleep(0)  # the journal writes deferred past the last return are billed to this batch
    return (time.perf_counter() - start) / count


async def bare_bars(http: httpx.AsyncClient, headers: dict[str, str], since_s: int, bars: int,
                    loads: Callable[[bytes], Any] | None = None) -> float:
    start = time.perf_counter()
    got = 0
    cursor = since_s
    while got < bars:
        count = min(1000, bars - got)
        end = cursor + (count - 1) * 60
        page = await http.get("/prices/BTCUSD", headers=headers, params={
            "resolution": "MINUTE", "max": count, "from": _fmt(cursor * 1000), "to": _fmt(end * 1000)})
        page.raise_for_status()
        body = page.json() if loads is None else loads(page.content)
        got += len(body["prices"])
        cursor = end + 60
    assert got == bars, got
    return time.perf_counter() - start


async def trader_bars(exchange: CapitalTrader, since_ms: int, bars: int) -> float:
    start = time.perf_counter()
    rows = await exchange.fetch_ohlcv("BTC/USD", "1m", since_ms, bars)
    assert len(rows) == bars, len(rows)
    return time.perf_counter() - start


def trader(target: Target, journal: str | None, sync: str) -> CapitalTrader:
    return CapitalTrader({
        "apiKey": target.api_key, "login": target.identifier, "password": target.password,
        "options": {"baseUrl": target.base_url, "pacing": False, "journal": journal, "journalSync": sync,
                    "symbols": ["EUR/USD", "BTC/USD"], "clock": target.now},
    })


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def bench_orders(target: Target, tmp: Path, deals: int, batch: int) -> None:
    pool = httpx.AsyncHTTPTransport()
    async with httpx.AsyncClient(base_url=target.api_url, timeout=30) as http, pool:
        headers = await bare_login(http, target)
        print(f"create_order (market, through the confirm) vs bare httpx POST /positions + GET /confirms: "
              f"each row in its own phase of {max(deals // batch, 1)} batches of {batch} deals per side")
        print("  (floor: the same requests prepared by hand and sent straight to an httpx connection pool, "
              "as CapitalTrader's transport sends them; for information)")
        shuffle = random.Random(7).shuffle
        for label, name, sync in ROWS:
            # One phase per row: it, the bare client and the floor take turns batch by batch, in a seeded
            # random order, so the ratios compare sides that ran under the same conditions.
            bare, floor = Side("bare"), Side("floor")
            side = Side(label, trader(target, None if name is None else str(tmp / name), sync))
            assert side.exchange is not None
            await side.exchange.load_markets()
            await trader_deals(side, 10)  # warm up: login, journal, connection
            await bare_deals(http, headers, bare, 10)
            await floor_deals(pool, target, headers, floor, 10)
            requests_before = side.exchange._wire().stats["requests"]
            order: list[Side] = [bare, floor, side]
            for _ in range(max(deals // batch, 1)):
                shuffle(order)
                for turn in order:
                    if turn is bare:
                        bare.samples.append(await bare_deals(http, headers, bare, batch))
                    elif turn is floor:
                        floor.samples.append(await floor_deals(pool, target, headers, floor, batch))
                    else:
                        side.samples.append(await trader_deals(side, batch))
            requests = (side.exchange._wire().stats["requests"] - requests_before) / (len(side.samples) * batch)
            base, value, least = _ms(bare.samples), _ms(side.samples), _ms(floor.samples)
            spread = chunk_ratios(side.samples, bare.samples)
            print(f"  {label:54} {value:6.3f} ms/deal vs bare {base:6.3f}   ratio {value / base:5.2f}"
                  f"   (5 slices: {min(spread):.2f}-{max(spread):.2f}; {requests:.2f} requests/deal)"
                  f"   vs floor {least:6.3f}: {value / least:5.2f}")
            await side.exchange.close()


async def bench_bars(target: Target, bars: int, rounds: int) -> None:
    async with httpx.AsyncClient(base_url=target.api_url, timeout=30) as http:
        headers = await bare_login(http, target)
        exchange = trader(target, None, "full")
        await exchange.load_markets()
        since_ms = (int(target.now()) // 60 - bars - 5) * 60 * 1000
        await bare_bars(http, headers, since_ms // 1000, bars)
        await trader_bars(exchange, since_ms, bars)
        bare_t, fast_t, trader_t = [], [], []
        for _ in range(rounds):
            bare_t.append(await bare_bars(http, headers, since_ms // 1000, bars))
            if _orjson_loads is not None:
                fast_t.append(await bare_bars(http, headers, since_ms // 1000, bars, _orjson_loads))
            trader_t.append(await trader_bars(exchange, since_ms, bars))
        await exchange.close()
    base, value = _ms(bare_t), _ms(trader_t)
    decoder = "orjson" if capital_transport._loads is not json.loads else "the standard library"
    print(f"fetch_ohlcv {bars} x 1m bars ({-(-bars // 1000)} pages), {rounds} runs each; "
          f"CapitalTrader decodes with {decoder}")
    print(f"  {'bare httpx paging, response.json()':52} {base:7.1f} ms")
    if fast_t:
        print(f"  {'bare httpx paging, orjson (for information)':52} {_ms(fast_t):7.1f} ms   "
              f"ratio {_ms(fast_t) / base:5.2f}")
    print(f"  {'CapitalTrader.fetch_ohlcv (mid rows)':52} {value:7.1f} ms   ratio {value / base:5.2f}"
          f"   (best {min(trader_t) / min(bare_t):4.2f})")


async def main(deals: int, batch: int, rounds: int, bars: int, in_process: bool) -> None:
    where = "on a thread of this process (--in-process)" if in_process else "in its own process"
    print(f"simulator {where}; rate limits off on both sides")
    async with simulator(in_process) as target:
        with tempfile.TemporaryDirectory() as tmp:
            await bench_orders(target, Path(tmp), deals, batch)
        await bench_bars(target, bars, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=400, help="deals per side")
    parser.add_argument("--batch", type=int, default=10, help="deals per timed batch")
    parser.add_argument("--rounds", type=int, default=21, help="fetch_ohlcv runs per side")
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--in-process", action="store_true", help="run the simulator on a thread of this process")
    parser.add_argument("--stdlib-json", action="store_true",
                        help="CapitalTrader decodes with the standard library even if orjson is installed")
    args = parser.parse_args()
    if args.stdlib_json:
        capital_transport._loads = json.loads
    asyncio.run(main(args.deals, args.batch, args.rounds, args.bars, args.in_process))
