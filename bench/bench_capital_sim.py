"""Throughput of the Capital.com simulator: GET /prices and the open-position + confirm round trip.

The server runs alone on one core (a subprocess pinned to CPU 0, ``python -m ccxt_capital.sim``
with limits off); the client is an asyncio loop with aiohttp on another core, keeping a few requests
in flight. GET /time, the cheapest authenticated-free route, is measured in the same run as the
baseline, so the figures read as ratios that do not depend much on the machine.

    .venv/bin/python bench/bench_capital_sim.py [--seconds 3] [--concurrency 8] [--in-thread]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


async def _measure(name: str, seconds: float, concurrency: int,
                   one: Callable[[], Awaitable[None]]) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await one()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = done / (time.perf_counter() - start)
    print(f"{name:<40} {rate:10.0f} /s")
    return rate


async def run(base: str, seconds: float, concurrency: int) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as http:
        async with http.post("/api/v1/session", headers={"X-CAP-API-KEY": "demo-api-key"},
                             json={"identifier": "demo@example.com", "password": "demo-password"}) as login:
            assert login.status == 200, await login.text()
            headers = {"CST": login.headers["CST"], "X-SECURITY-TOKEN": login.headers["X-SECURITY-TOKEN"]}

        async def get_time() -> None:
            async with http.get("/api/v1/time") as response:
                await response.read()

        async def get_ping() -> None:
            async with http.get("/api/v1/ping", headers=headers) as response:
                await response.read()

        async def get_prices() -> None:
            async with http.get("/api/v1/prices/AAPL", headers=headers,
                                params={"resolution": "MINUTE", "max": "100"}) as response:
                assert response.status == 200
                await response.read()

        flip = [0]

        async def deal() -> None:
            flip[0] += 1
            body = {"epic": "BTCUSD", "direction": "BUY" if flip[0] % 2 else "SELL", "size": 0.01}
            async with http.post("/api/v1/positions", headers=headers, json=body) as response:
                reference = (await response.json())["dealReference"]
            async with http.get(f"/api/v1/confirms/{reference}", headers=headers) as response:
                assert (await response.json())["dealStatus"] == "ACCEPTED"

        await _measure("warm-up GET /prices", min(seconds, 1.0), concurrency, get_prices)
        baseline = await _measure("GET /time (baseline)", seconds, concurrency, get_time)
        ping = await _measure("GET /ping (session + limiter)", seconds, concurrency, get_ping)
        prices = await _measure("GET /prices/AAPL MINUTE max=100", seconds, concurrency, get_prices)
        deals = await _measure("POST /positions + GET /confirms", seconds, concurrency, deal)
        print(f"ratios to baseline: ping {ping / baseline:.2f}, prices {prices / baseline:.2f}, "
              f"deal round trip {deals / baseline:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--in-thread", action="store_true",
                        help="run the server on a thread of this process instead (shares the GIL)")
    args = parser.parse_args()
    if args.in_thread:
        from ccxt_capital.sim import CapitalSimulator

        with CapitalSimulator(port=0, rate_limits="off", real_time=True, start=None) as sim:
            print(f"server: thread in the client's process, {sim.base_url}")
            asyncio.run(run(sim.base_url, args.seconds, args.concurrency))
        return 0
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen(
        [sys.executable, "-c", "import os,sys; os.sched_setaffinity(0, {0}) if hasattr(os, 'sched_setaffinity') "
         "else None; from ccxt_capital.sim.__main__ import main; sys.exit(main(sys.argv[1:]))",
         "--port", "0", "--rate-limits", "off"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        _pin(1)
        print(f"server: subprocess on CPU 0, port {port}; client: CPU 1, {args.concurrency} in flight")
        asyncio.run(run(f"http://127.0.0.1:{port}", args.seconds, args.concurrency))
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
