"""The order journal on PostgreSQL (loopback) against the SQLite journal and against no journal, in one run.

* ``create_order``: a resting limit order through ``IBTrader.create_order`` against the fake TWS, with
  the caller's own clientOrderId (the path a shared journal exists for: "seen before?" is answered by the
  database before the send). Rows: no journal (in memory), SQLite ``normal`` and ``full``, PostgreSQL
  ``normal`` and ``full`` on a throwaway loopback server (fsync on). The rows take turns in a seeded
  random order each round, so each median is measured under the same conditions; ratios are against the
  in-memory row.
* journal writes per second with 8 bot processes writing at once, each its own orders (intent, ids with
  status, a fill: three writes per order), SQLite (one shared file) and PostgreSQL, ``normal`` and ``full``.

Needs Debian's postgresql package (see tests/pgserver.py). Run:
``.venv/bin/python bench/bench_journal_postgres.py [--orders 300] [--procs 8] [--per-proc 300]``. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_ib_sim import simulator  # noqa: E402
from bench_ibkr_trader import unbound_pacer  # noqa: E402

from ccxt_ibkr.async_support import IBTrader  # noqa: E402
from normalization.runtime.journal import OrderJournal  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402


def rows(tmp: Path, pg: PgServer) -> list[tuple[str, Any, str]]:
    return [
        ("no journal (memory)", None, "normal"),
        ("SQLite normal", str(tmp / "normal.sqlite"), "normal"),
        ("SQLite full (fsync)", str(tmp / "full.sqlite"), "full"),
        ("PostgreSQL normal (sync_commit off)", pg.url("bench_normal"), "normal"),
        ("PostgreSQL full (sync_commit on)", pg.url("bench_full"), "full"),
    ]


async def create_order_latency(orders: int, table: list[tuple[str, Any, str]]) -> list[list[float]]:
    async with simulator(True) as (host, port):
        traders = [
            IBTrader({"options": {"host": host, "port": port, "clientId": 30 + i, "symbols": ["AAPL/USD"],
                                  "journal": journal, "journalSync": sync,
                                  "pacer": unbound_pacer()}})
            for i, (_, journal, sync) in enumerate(table)
        ]
        for ex in traders:
            await ex.load_markets()
            ex.transport.ib.client.MaxRequests = 0
        ticker = await traders[0].fetch_ticker("AAPL/USD")
        samples: list[list[float]] = [[] for _ in traders]
        shuffle = random.Random(7).shuffle
        order = list(range(len(traders)))
        for n in range(orders + 10):
            price = round(ticker["bid"] - 10 - (n % 50) * 0.01, 2)
            shuffle(order)
            for i in order:
                started = time.perf_counter()
                placed = await traders[i].create_order("AAPL/USD", "limit", "buy", 1, price,
                                                       {"clientOrderId": f"b{i}-{n}"})
                elapsed = time.perf_counter() - started
                assert placed["status"] == "open"
                await asyncio.sleep(0)  # post-ack bookkeeping outside the next timing
                if n >= 10:  # warm-up
                    samples[i].append(elapsed)
        for ex in traders:
            await ex.close()
    return samples


def _writer(where: str, sync: str, bot: int, count: int, barrier: Any, out: Any) -> None:
    journal = OrderJournal(where, exchange="ibkr", account="DU1", sync=sync)
    barrier.wait()
    started = time.perf_counter()
    for n in range(count):
        cid = f"w{bot}-{n}"
        journal.record_intent(cid, symbol="AAPL/USD", side="buy", type="limit", amount=1, price=10,
                              state="sent_unknown")
        journal.update_status(cid, "open", ids={"order_id": n, "perm_id": bot * 10**6 + n})
        journal.record_fill(f"x{bot}-{n}", client_order_id=cid, amount=1, price=10, timestamp=n)
    out.put((started, time.perf_counter()))
    journal.close()


def writes_per_second(where: str, sync: str, procs: int, per_proc: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs)
    out = ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(where, sync, b, per_proc, barrier, out)) for b in range(procs)]
    for w in workers:
        w.start()
    spans = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return procs * per_proc * 3 / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--per-proc", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, PgServer() as pg:
        table = rows(Path(tmp), pg)
        samples = asyncio.run(create_order_latency(args.orders, table))
        base = statistics.median(samples[0])
        print(f"create_order (resting limit, own clientOrderId) against the fake TWS, {args.orders} rounds:")
        for (label, _, _), row in zip(table, samples, strict=True):
            value = statistics.median(row)
            p90 = statistics.quantiles(row, n=10)[-1]
            print(f"  {label:38}: median {value * 1000:6.3f} ms  p90 {p90 * 1000:6.3f} ms  "
                  f"ratio {value / base:5.2f}")
        print(f"journal writes/s, {args.procs} processes x {args.per_proc} orders x 3 writes:")
        for label, where, sync in table[1:]:
            where = where if where.startswith("postgresql") else str(Path(tmp) / f"shared-{sync}.sqlite")
            if where.startswith("postgresql"):
                where = pg.url(f"bench_w_{sync}")
            rate = writes_per_second(where, sync, args.procs, args.per_proc)
            print(f"  {label:38}: {rate:8.0f} writes/s")


if __name__ == "__main__":
    main()
