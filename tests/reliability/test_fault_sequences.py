"""Seeded random fault sequences: many orders, one fault each, in an order no one wrote by hand.

The fault matrix tests each fault alone; real outages come in runs (a drop right after a partial
fill, an outage while an order rests, a lost commission report, then another drop). Each seed here
builds a sequence of orders and faults from ``random.Random(seed)`` -- the same sequence every run --
plays it against one adapter and one simulator, and then asserts the invariants over every order.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import ccxt
import pytest

from ccxt_capital.async_support import CapitalTrader
from ccxt_capital.sim import CapitalSimulator
from ccxt_ibkr.async_support import IBTrader
from ccxt_ibkr.sim import ACKED, BEFORE, BOOKED
from ccxt_ibkr.sim.testing import running_simulator
from normalization.runtime.journal import OrderJournal
from normalization.runtime.supervisor import CONNECTED, OUTAGE

from .brokers import (
    IB_ACCOUNT,
    assert_invariants,
    capital_config,
    capital_placements,
    capital_truth,
    capital_unowned,
    eventually,
    ib_options,
    ib_orders_with_ref,
    ib_truth,
)

CLIENT_ID = 11
IB_FAULTS = ("none", "none", BEFORE, BOOKED, ACKED, "commission", "drop_after", "outage_1101", "outage_1102")
CAPITAL_FAULTS = ("none", "none", "drop_before", "drop_after", "confirm_500", "confirm_drop", "429", "expire")


async def _reconnected(ex: Any, before: int) -> None:
    await ex.supervisor.wait_for(lambda s: s.reconnects > before and s.state == CONNECTED and not s.healing, 10)


async def _ready(ex: Any) -> None:
    await ex.supervisor.wait_for(lambda s: s.state == CONNECTED and not s.healing, 10)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_ib_random_fault_sequence(seed: int, tmp_path: Path, tally: Any) -> None:
    rng = random.Random(seed)
    journal_path = tmp_path / "journal.sqlite"
    with running_simulator(seed=seed) as sim:
        ex = IBTrader({"options": ib_options(sim, journal_path, CLIENT_ID, orderTimeout=1.0)})
        cids: list[str] = []
        try:
            await ex.load_markets()
            if rng.random() < 0.5:
                sim.set_liquidity(rng.choice([3, 5]), symbol="AAPL")  # partial fills across the faults
            for step in range(6):
                cid = f"seq{seed}-{step}"
                cids.append(cid)
                fault = rng.choice(IB_FAULTS)
                quote = sim.quote("AAPL", "STK", "USD")
                resting = rng.random() < 0.4
                price = round(quote.bid * 0.9, 2) if resting else None
                kind = "limit" if resting else "market"
                before = ex.supervisor.reconnects
                if fault in (BEFORE, BOOKED, ACKED):
                    sim.drop_on_order(fault, order_ref=cid)
                elif fault == "commission":
                    sim.drop_commission_reports(1)
                result = await _attempt(ex.create_order("AAPL/USD", kind, "buy", rng.choice([2, 7, 10]), price,
                                                        {"clientOrderId": cid}))
                assert isinstance(result, (ccxt.BaseError, dict)), result
                if fault in (BEFORE, BOOKED, ACKED):
                    await _reconnected(ex, before)
                elif fault in ("drop_after", "commission"):
                    sim.drop_client(CLIENT_ID)
                    await _reconnected(ex, before)
                elif fault.startswith("outage"):
                    sim.start_outage()
                    await ex.supervisor.wait_for(lambda s: s.state == OUTAGE, 5)
                    sim.advance(60)
                    sim.end_outage(data_lost=fault.endswith("1101"))
                    await _ready(ex)
                if rng.random() < 0.5:
                    sim.advance(60 * rng.randint(1, 3))
            before = ex.supervisor.reconnects
            sim.drop_client(CLIENT_ID)  # a last reconnect reconciles everything that happened
            await _reconnected(ex, before)
            with OrderJournal(journal_path, exchange="ibkr", account=IB_ACCOUNT) as journal:
                await eventually(lambda: all(f.fee_cost is not None for f in journal.fills()), timeout=3)
                for cid in cids:
                    assert len(ib_orders_with_ref(sim, cid)) <= 1, f"{cid} placed twice"
                    truth = [o for o in ib_truth(sim)[0] if o.client_order_id == cid]
                    try:
                        seen = await ex.fetch_order(cid, "AAPL/USD", {"clientOrderId": cid})
                    except ccxt.OrderNotFound:  # never reached IB: not shown with any status
                        assert not truth and journal.get(cid).never_received, cid
                        continue
                    expected = truth[0].status if truth else "rejected"
                    assert seen["status"] == expected, (cid, seen["status"], expected)
                orders, fills = ib_truth(sim)
                assert_invariants(tally, "ibkr", f"random fault sequence (seed {seed})", journal, orders, fills,
                                  client_order_ids=cids)
            sim.check_ledger()
        finally:
            await ex.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_capital_random_fault_sequence(seed: int, tmp_path: Path, tally: Any) -> None:
    rng = random.Random(seed)
    journal_path = tmp_path / "journal.sqlite"
    sim = CapitalSimulator(port=0, seed=seed, rate_limits="off")
    sim.start()
    ex = CapitalTrader(capital_config(sim, journal_path))
    cids: list[str] = []
    try:
        await ex.load_markets()
        for step in range(6):
            cid = f"seq{seed}-{step}"
            cids.append(cid)
            fault = rng.choice(CAPITAL_FAULTS)
            side = rng.choice(["buy", "sell"])  # netting: later deals reduce or flip earlier ones
            if fault == "drop_before":
                sim.faults.drop(method="POST", path="/positions")
            elif fault == "drop_after":
                sim.faults.drop(after=True, method="POST", path="/positions")
            elif fault == "confirm_500":
                sim.faults.fail(500, method="GET", path="/confirms", times=2)
            elif fault == "confirm_drop":
                sim.faults.drop(after=True, method="GET", path="/confirms")
            elif fault == "429":
                sim.faults.too_many_requests(method="POST", path="/positions")
            elif fault == "expire":
                sim.faults.expire_session(method="POST", path="/positions")
            result = await _attempt(ex.create_order("AAPL/USD", "market", side, rng.choice([1, 2, 3]), None,
                                                    {"clientOrderId": cid}))
            assert isinstance(result, (ccxt.BaseError, dict)), result
            sim.faults.clear()
            await ex.supervisor.wait_ready(10)
            if rng.random() < 0.5:
                sim.advance(60)
        await ex.reconcile_journal()
        with OrderJournal(journal_path, exchange="capitalcom", account=sim.accounts[0]) as journal:
            orders, fills = capital_truth(sim, journal)
            truth = {o.client_order_id: o for o in orders}
            for cid in cids:
                try:
                    seen = await ex.fetch_order(cid, "AAPL/USD")
                except ccxt.OrderNotFound:  # never reached the books: not shown with any status
                    assert cid not in truth and journal.get(cid).never_received, cid
                    continue
                expected = truth[cid].status if cid in truth else "rejected"
                assert seen["status"] == expected, (cid, seen["status"], expected)
            assert len(capital_placements(sim)) == len(truth)
            assert_invariants(tally, "capitalcom", f"random fault sequence (seed {seed})", journal, orders, fills,
                              client_order_ids=cids, extra_duplicates=len(capital_unowned(sim, journal)))
        sim.check_books()
    finally:
        await ex.close()
        sim.stop()


async def _attempt(call: Any) -> Any:
    try:
        return await call
    except ccxt.BaseError as error:
        return error
    finally:
        await asyncio.sleep(0)  # let journal writes the adapter scheduled with call_soon land
