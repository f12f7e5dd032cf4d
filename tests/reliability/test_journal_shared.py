"""One journal shared by several bot processes: on one host (SQLite) or across hosts (PostgreSQL).

* Two bot processes place the same clientOrderId at the same moment: the broker gets one order, and
  both bots get that order back.
* The PostgreSQL server restarts while a bot runs: a new order fails fast with ExchangeNotAvailable and
  nothing reaches the broker unjournaled; once the server is back the same bot places it, once.

(The standby taking over a SIGKILLed primary's in-flight orders is test_process_death.py, run on both
stores.) Real processes, the fake TWS over its socket, a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import ccxt
import pytest

from ccxt_ibkr.async_support import IBTrader
from ccxt_ibkr.sim import IBSimulator

from .brokers import eventually, ib_options, ib_orders_with_ref
from .test_process_death import Child

FAIL_FAST = 5.0  # seconds: far below any order timeout a bot would wait


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_journal(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite")
    return str(request.getfixturevalue("pg_server").fresh_url())


@pytest.mark.long  # two bot processes each importing ccxt and connecting: tens of seconds on a busy machine
async def test_two_processes_racing_one_client_order_id_reach_the_broker_once(
    ib_sim: IBSimulator, shared_journal: str
) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    orders = [{"cid": "race-1", "symbol": "AAPL/USD", "type": "limit", "side": "buy", "amount": 3,
               "price": round(quote.bid * 0.8, 2), "stage": "after"}]
    bots = []
    try:
        for client_id in (21, 22):
            options = ib_options(ib_sim, Path(shared_journal), client_id)
            options["journal"] = shared_journal
            bots.append(await Child.start("place", "--broker", "ib", "--journal", shared_journal,
                                          "--options", json.dumps(options), "--orders", json.dumps(orders)))
        for bot in bots:
            assert (await bot.line("placed"))["orders"] == []
        for bot in bots:  # both connected and waiting: let them go together
            await bot.send("go")
        sent = []
        for bot in bots:
            await bot.line("sending")
            sent.append((await bot.line("sent"))["order"])
        for bot in bots:
            await bot.finish()
    finally:
        for bot in bots:
            bot.cleanup()
    assert len(ib_orders_with_ref(ib_sim, "race-1")) == 1
    assert [o["clientOrderId"] for o in sent] == ["race-1", "race-1"]


async def test_a_database_restart_fails_new_orders_fast_and_never_sends_them_unjournaled(
    ib_sim: IBSimulator, pg_server: Any
) -> None:
    url = pg_server.fresh_url()
    ex = IBTrader({"options": ib_options(ib_sim, url, 23)})  # type: ignore[arg-type]
    try:
        await ex.load_markets()
        price = round(ib_sim.quote("AAPL", "STK", "USD").bid * 0.8, 2)
        first = await ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "db-1"})
        assert first["status"] == "open"
        pg_server.stop()
        try:
            for params in ({"clientOrderId": "db-2"}, {}):  # the caller's own id, and a generated one
                started = time.monotonic()
                with pytest.raises(ccxt.ExchangeNotAvailable, match="journal"):
                    await ex.create_order("AAPL/USD", "limit", "buy", 1, price, params)
                assert time.monotonic() - started < FAIL_FAST
            assert len(ib_sim.orders()) == 1  # nothing reached the broker without its journal row
        finally:
            pg_server.start()
        again = await ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "db-2"})
        assert again["clientOrderId"] == "db-2" and again["status"] == "open"
        repeat = await ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "db-2"})
        assert repeat["id"] == again["id"]
        await eventually(lambda: len(ib_orders_with_ref(ib_sim, "db-2")) == 1, timeout=5)
        assert len(ib_sim.orders()) == 2
        await asyncio.sleep(0)
    finally:
        await ex.close()
