"""The IB fault matrix: every way a TWS connection fails around an order, driven by the fake TWS.

Each scenario runs an unmodified-bot flow through the async ccxt API (``ccxt_ibkr.async_support``)
against ``ib_sim``, injects one fault, waits on the adapter's own connection events (never sleeps),
and then asserts the four invariants of :mod:`normalization.runtime.invariants`:

* no duplicate order at the broker (one IB order per clientOrderId / ``orderRef``);
* every fill recorded exactly once in the journal, with its commission;
* the bot saw either a correct order or a ccxt exception;
* journal and broker agree (nothing left ``sent_unknown``).

Waiting without races: a drop is followed by a reconnect that may complete before the test looks,
so scenarios wait on ``supervisor.reconnects`` growing, or hold the "gateway" down by marking the
clientId busy (TWS answers 326) until the test has made its calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest

from ccxt_ibkr._ib import ib_lib
from ccxt_ibkr.async_support import IBTrader
from ccxt_ibkr.sim import ACKED, BEFORE, BOOKED, IBSimulator
from ccxt_ibkr.sim.testing import eventually
from normalization.runtime.journal import OrderJournal
from normalization.runtime.supervisor import CONNECTED, DISCONNECTED, MAINTENANCE, OUTAGE

from .brokers import (
    IB_ACCOUNT,
    assert_bot_saw_a_correct_order_or_an_exception,
    assert_invariants,
    ib_options,
    ib_orders_with_ref,
    ib_truth,
    outcome,
)

CLIENT_ID = 7
FAIL_FAST = 1.0  # seconds: a call during an outage must fail well before any request timeout


@pytest.fixture
async def exchange(ib_sim: IBSimulator, journal_path: Path) -> AsyncIterator[IBTrader]:
    ex = IBTrader({"options": ib_options(ib_sim, journal_path, CLIENT_ID)})
    try:
        await ex.load_markets()
        yield ex
    finally:
        ib_sim.mark_client_id_in_use(CLIENT_ID, False)
        await ex.close()


@pytest.fixture
def journal(journal_path: Path, exchange: IBTrader) -> Iterator[OrderJournal]:
    """The test's own view of the journal file (a second connection, as another process would have)."""
    with OrderJournal(journal_path, exchange="ibkr", account=IB_ACCOUNT) as view:
        yield view






async def reconnected(ex: IBTrader, before: int, timeout: float = 10.0) -> None:
    """Wait until the adapter has reconnected (again) and reconciled."""
    await ex.supervisor.wait_for(
        lambda s: s.reconnects > before and s.state == CONNECTED and not s.healing, timeout
    )


async def held_down(ex: IBTrader, sim: IBSimulator, states: tuple[str, ...] = (DISCONNECTED,)) -> None:
    """Drop the connection and keep the gateway refusing this clientId until ``released``."""
    sim.mark_client_id_in_use(CLIENT_ID)
    sim.drop_client(CLIENT_ID)
    await ex.supervisor.wait_for(lambda s: s.state in states and s.attempts >= 1, 10)


async def check(tally: Any, name: str, sim: IBSimulator, journal: OrderJournal, cids: list[str]) -> None:
    # The adapter journals ids and status with call_soon right after create_order returns (off the
    # call's latency); one turn of the loop lets those writes land before we compare.
    await asyncio.sleep(0)
    try:  # commission reports follow their executions asynchronously: give them a (bounded) moment
        await eventually(lambda: all(f.fee_cost is not None for cid in cids for f in journal.fills(cid)), timeout=3)
    except TimeoutError:
        pass  # reported below as missing_fees
    for cid in cids:
        assert len(ib_orders_with_ref(sim, cid)) <= 1, f"{cid} placed more than once"
    orders, fills = ib_truth(sim)
    assert_invariants(tally, "ibkr", name, journal, orders, fills, client_order_ids=cids)
    sim.check_ledger()


async def fetched(ex: IBTrader, cid: str) -> dict[str, Any]:
    return await ex.fetch_order(cid, "AAPL/USD", {"clientOrderId": cid})


# ----------------------------------------------------------------------------- connection drops


async def test_dropped_before_send_fails_fast_and_the_retry_places_once(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    await held_down(exchange, ib_sim)
    started = time.monotonic()
    result = await outcome(exchange.create_order("AAPL/USD", "market", "buy", 10, None, {"clientOrderId": "ib-pre"}))
    assert isinstance(result, ccxt.NetworkError), result
    assert time.monotonic() - started < FAIL_FAST
    assert ib_orders_with_ref(ib_sim, "ib-pre") == []
    row = journal.get("ib-pre")
    assert row is None or row.state == "rejected", "an unsent order must not be left for reconciliation to guess"
    before = exchange.supervisor.reconnects
    ib_sim.mark_client_id_in_use(CLIENT_ID, False)
    await reconnected(exchange, before)
    # The bot retries with the same clientOrderId: provably never sent, so it is placed now, once.
    order = await exchange.create_order("AAPL/USD", "market", "buy", 10, None, {"clientOrderId": "ib-pre"})
    assert order["status"] == "closed" and order["filled"] == 10
    await check(tally, "dropped before send", ib_sim, journal, ["ib-pre"])


async def test_lost_in_transit_is_marked_never_received_and_placed_again_once(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    ib_sim.drop_on_order(BEFORE, order_ref="ib-transit")
    before = exchange.supervisor.reconnects
    result = await outcome(
        exchange.create_order("AAPL/USD", "limit", "buy", 10, 150.0, {"clientOrderId": "ib-transit"})
    )
    assert isinstance(result, ccxt.BaseError), "IB never answered: no status may be shown"
    await reconnected(exchange, before)
    assert ib_orders_with_ref(ib_sim, "ib-transit") == []
    row = journal.get("ib-transit")
    assert row is not None and row.never_received and "absent" in (row.reason or "")
    with pytest.raises(ccxt.OrderNotFound, match="never reached IB"):
        await fetched(exchange, "ib-transit")
    # Provably never received: the bot's retry of the same clientOrderId reaches IB, exactly once.
    again = await exchange.create_order("AAPL/USD", "limit", "buy", 10, 150.0, {"clientOrderId": "ib-transit"})
    assert again["status"] == "open" and again["clientOrderId"] == "ib-transit"
    third = await exchange.create_order("AAPL/USD", "limit", "buy", 10, 150.0, {"clientOrderId": "ib-transit"})
    assert third["id"] == again["id"]
    assert len(ib_orders_with_ref(ib_sim, "ib-transit")) == 1
    await exchange.cancel_order(again["id"])
    await check(tally, "dropped after send, before booking", ib_sim, journal, ["ib-transit"])


async def test_dropped_after_send_before_ack_is_adopted_with_its_fill(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    ib_sim.drop_on_order(BOOKED, order_ref="ib-booked")  # booked and filled; the client hears nothing
    before = exchange.supervisor.reconnects
    result = await outcome(exchange.create_order("AAPL/USD", "market", "buy", 10, None, {"clientOrderId": "ib-booked"}))
    assert_bot_saw_a_correct_order_or_an_exception(result, "ib-booked", "closed")
    await reconnected(exchange, before)
    order = await fetched(exchange, "ib-booked")
    assert order["status"] == "closed" and order["filled"] == 10
    row = journal.get("ib-booked")
    assert row is not None and row.state == "closed" and row.perm_id
    await check(tally, "dropped after send, before ack", ib_sim, journal, ["ib-booked"])


async def test_dropped_after_ack_keeps_the_working_order_and_can_cancel_it(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    ib_sim.drop_on_order(ACKED, order_ref="ib-acked")
    before = exchange.supervisor.reconnects
    result = await outcome(
        exchange.create_order("AAPL/USD", "limit", "buy", 10, 100.0, {"clientOrderId": "ib-acked"})
    )
    assert_bot_saw_a_correct_order_or_an_exception(result, "ib-acked", "open")
    await reconnected(exchange, before)
    assert (await fetched(exchange, "ib-acked"))["status"] == "open"
    canceled = await exchange.cancel_order("ib-acked", "AAPL/USD", {"clientOrderId": "ib-acked"})
    assert canceled["status"] == "canceled"
    await check(tally, "dropped after ack", ib_sim, journal, ["ib-acked"])


async def test_dropped_between_two_partial_fills_records_each_fill_once(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    ib_sim.set_liquidity(4, symbol="AAPL")
    first = await exchange.create_order("AAPL/USD", "market", "buy", 10, None, {"clientOrderId": "ib-partial"})
    assert first["status"] == "open" and first["filled"] == 4
    await held_down(exchange, ib_sim)
    ib_sim.advance(60)  # the second partial fill happens while we are away
    before = exchange.supervisor.reconnects
    ib_sim.mark_client_id_in_use(CLIENT_ID, False)
    await reconnected(exchange, before)
    ib_sim.advance(60)  # the last one arrives live
    await eventually(lambda: (journal.get("ib-partial") or first).state == "closed")  # type: ignore[union-attr]
    order = await fetched(exchange, "ib-partial")
    assert order["status"] == "closed" and order["filled"] == 10
    await check(tally, "dropped between two partial fills", ib_sim, journal, ["ib-partial"])
    # Commissions arrive after their fills (DESIGN §4); once the journal has them, so does the bot.
    trades = await exchange.fetch_my_trades("AAPL/USD")
    assert sorted(t["amount"] for t in trades) == [2, 4, 4]
    commissions = {e.exec_id: e.commission for e in ib_sim.executions()}  # IB fixed: min 1.00 per order
    assert [t["fee"] for t in trades] == [{"cost": commissions[t["id"]], "currency": "USD"} for t in trades]
    assert len({t["id"] for t in trades}) == 3


async def test_dropped_before_the_commission_report_still_books_the_fee(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    ib_sim.drop_commission_reports(1)  # the execution arrives; its commissionReport never does
    exchange.options["commissionWait"] = 0.0  # do not wait for a report that will not come
    order = await exchange.create_order("AAPL/USD", "market", "buy", 10, None, {"clientOrderId": "ib-fee"})
    assert order["status"] == "closed"
    (fill,) = journal.fills("ib-fee")
    assert fill.fee_cost is None, "the fee cannot be known yet"
    before = exchange.supervisor.reconnects
    ib_sim.drop_client(CLIENT_ID)  # the connection dies before the report
    await reconnected(exchange, before)
    (fill,) = journal.fills("ib-fee")
    assert fill.fee_cost == 1.0 and fill.fee_currency == "USD"
    (trade,) = await exchange.fetch_my_trades("AAPL/USD")
    assert trade["fee"] == {"cost": 1.0, "currency": "USD"}
    await check(tally, "dropped before the commission report", ib_sim, journal, ["ib-fee"])


# --------------------------------------------------------------------- gateway and IB-side events


async def test_gateway_restart_is_maintenance_then_reconciles(
    ib_sim: IBSimulator, journal_path: Path, tally: Any
) -> None:
    options = ib_options(ib_sim, journal_path, CLIENT_ID, maintenanceWindows=["00:00-23:59:59.999999 UTC"])
    ex = IBTrader({"options": options})
    try:
        await ex.load_markets()
        working = await ex.create_order("AAPL/USD", "limit", "buy", 10, 100.0, {"clientOrderId": "ib-restart"})
        assert working["status"] == "open"
        ib_sim.mark_client_id_in_use(CLIENT_ID)  # the gateway comes back slowly: this client is refused
        ib_sim.restart_gateway()
        await ex.supervisor.wait_for(lambda s: s.state == MAINTENANCE and s.attempts >= 1, 10)
        started = time.monotonic()
        for call in (
            ex.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "ib-during"}),
            ex.fetch_ticker("AAPL/USD"),
            ex.cancel_order("ib-restart", "AAPL/USD", {"clientOrderId": "ib-restart"}),
        ):
            with pytest.raises(ccxt.OnMaintenance):
                await call
        assert time.monotonic() - started < FAIL_FAST
        before = ex.supervisor.reconnects
        ib_sim.mark_client_id_in_use(CLIENT_ID, False)
        await reconnected(ex, before)
        assert (await ex.fetch_order("ib-restart", "AAPL/USD", {"clientOrderId": "ib-restart"}))["status"] == "open"
        with OrderJournal(journal_path, exchange="ibkr", account=IB_ACCOUNT) as journal:
            await check(tally, "gateway restart", ib_sim, journal, ["ib-restart"])
            assert journal.get("ib-during") is None
    finally:
        ib_sim.mark_client_id_in_use(CLIENT_ID, False)
        await ex.close()


async def test_1100_fails_fast_and_1101_resubscribes_and_reconciles(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    contract = ib_lib.Contract(conId=int(exchange.market("AAPL/USD")["id"]), exchange="SMART")
    ticker = exchange.transport.stream(contract)
    assert ticker is not None

    def subscriptions() -> int:
        return sum(len(s.mkt) for s in ib_sim.sessions if s.client_id == CLIENT_ID and s.ready and not s.closed)

    await eventually(lambda: subscriptions() == 1)
    working = await exchange.create_order("AAPL/USD", "limit", "buy", 10, 100.0, {"clientOrderId": "ib-1100"})
    ib_sim.start_outage()
    await exchange.supervisor.wait_for(lambda s: s.state == OUTAGE, 5)
    started = time.monotonic()
    for call in (
        exchange.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "ib-in-outage"}),
        exchange.fetch_ticker("AAPL/USD"),
        exchange.cancel_order(working["id"], "AAPL/USD"),
    ):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await call
    assert time.monotonic() - started < FAIL_FAST
    assert ib_orders_with_ref(ib_sim, "ib-in-outage") == []
    ib_sim.end_outage(data_lost=True)  # 1101: every market-data line was dropped
    await exchange.supervisor.wait_for(lambda s: s.state == CONNECTED and not s.healing, 5)
    await eventually(lambda: subscriptions() == 1)
    assert (await exchange.fetch_ticker("AAPL/USD"))["symbol"] == "AAPL/USD"
    await check(tally, "1100 then 1101", ib_sim, journal, ["ib-1100"])


async def test_1102_reconciles_fills_that_happened_during_the_outage(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    ib_sim.set_liquidity(4, symbol="AAPL")
    first = await exchange.create_order("AAPL/USD", "market", "buy", 10, None, {"clientOrderId": "ib-1102"})
    assert first["filled"] == 4
    ib_sim.start_outage()
    await exchange.supervisor.wait_for(lambda s: s.state == OUTAGE, 5)
    ib_sim.advance(120)  # the rest fills while IB's side is away
    ib_sim.end_outage(data_lost=False)  # 1102: data maintained, but executions must be re-checked
    await exchange.supervisor.wait_for(lambda s: s.state == CONNECTED and not s.healing, 5)
    exchange.supervisor.ensure_usable("execution")
    order = await fetched(exchange, "ib-1102")
    assert order["status"] == "closed" and order["filled"] == 10
    await check(tally, "1100 then 1102", ib_sim, journal, ["ib-1102"])


async def test_client_id_in_use_fails_at_once_then_connects(
    ib_sim: IBSimulator, journal_path: Path, tally: Any
) -> None:
    ib_sim.mark_client_id_in_use(CLIENT_ID)
    ex = IBTrader({"options": ib_options(ib_sim, journal_path, CLIENT_ID, connectTimeout=10.0)})
    try:
        started = time.monotonic()
        with pytest.raises(ccxt.AuthenticationError, match="326|clientId"):
            await ex.load_markets()
        assert time.monotonic() - started < 5.0, "326 must not cost the whole connect timeout"
        ib_sim.mark_client_id_in_use(CLIENT_ID, False)
        await ex.load_markets(reload=True)
        order = await ex.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "ib-326"})
        assert order["status"] == "closed"
        with OrderJournal(journal_path, exchange="ibkr", account=IB_ACCOUNT) as journal:
            await check(tally, "clientId in use (326)", ib_sim, journal, ["ib-326"])
    finally:
        ib_sim.mark_client_id_in_use(CLIENT_ID, False)
        await ex.close()


async def test_same_client_order_id_twice_is_one_order(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    first = await exchange.create_order("AAPL/USD", "limit", "buy", 3, 100.0, {"clientOrderId": "ib-twice"})
    second = await exchange.create_order("AAPL/USD", "limit", "buy", 3, 100.0, {"clientOrderId": "ib-twice"})
    assert second["id"] == first["id"] and second["status"] == "open"
    await check(tally, "same clientOrderId placed twice", ib_sim, journal, ["ib-twice"])


async def test_slow_gateway_every_call_is_bounded_and_nothing_is_resent(
    ib_sim: IBSimulator, journal_path: Path, tally: Any
) -> None:
    options = ib_options(ib_sim, journal_path, CLIENT_ID, requestTimeout=0.3, orderTimeout=0.3, commissionWait=0.0)
    ex = IBTrader({"options": options})
    try:
        await ex.load_markets()
        ib_sim.delay_replies(1.0, client_id=CLIENT_ID)  # TWS answers, but each message a second late
        started = time.monotonic()
        with pytest.raises(ccxt.RequestTimeout):
            await ex.fetch_ticker("AAPL/USD")
        assert time.monotonic() - started < 1.0, "a slow gateway must not hold a bot past requestTimeout"
        result = await outcome(ex.create_order("AAPL/USD", "limit", "buy", 2, 100.0, {"clientOrderId": "ib-slow"}))
        assert_bot_saw_a_correct_order_or_an_exception(result, "ib-slow", "open")
        again = await outcome(ex.create_order("AAPL/USD", "limit", "buy", 2, 100.0, {"clientOrderId": "ib-slow"}))
        assert_bot_saw_a_correct_order_or_an_exception(again, "ib-slow", "open")
        ib_sim.delay_replies(0.0)
        with OrderJournal(journal_path, exchange="ibkr", account=IB_ACCOUNT) as journal:
            await eventually(lambda: (row := journal.get("ib-slow")) is not None and not row.unresolved, timeout=5)
            await check(tally, "slow gateway (replies delayed)", ib_sim, journal, ["ib-slow"])
    finally:
        ib_sim.delay_replies(0.0)
        await ex.close()


async def test_two_bots_share_one_journal_without_resolving_each_other(
    exchange: IBTrader, ib_sim: IBSimulator, journal_path: Path, journal: OrderJournal, tally: Any
) -> None:
    working = await exchange.create_order("AAPL/USD", "limit", "buy", 4, 100.0, {"clientOrderId": "ib-bot-a"})
    other = IBTrader({"options": ib_options(ib_sim, journal_path, CLIENT_ID + 1)})  # a second bot process
    try:
        await other.load_markets()  # connects and reconciles the shared journal
        row = journal.get("ib-bot-a")
        assert row is not None and row.state == "open", "bot B must not resolve bot A's live order"
        again = await other.create_order("AAPL/USD", "limit", "buy", 4, 100.0, {"clientOrderId": "ib-bot-a"})
        assert again["status"] == "open" and str(again["info"].get("permId") or again["id"]) in (
            str(working["info"].get("permId")), working["id"])
        assert len(ib_orders_with_ref(ib_sim, "ib-bot-a")) == 1
        mine = await other.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "ib-bot-b"})
        assert mine["status"] == "closed"
    finally:
        await other.close()
    await check(tally, "two bots share one journal", ib_sim, journal, ["ib-bot-a", "ib-bot-b"])


async def test_10349_warning_never_turns_a_live_order_canceled(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    ib_sim.warn_next_order()  # 10349 "TIF set to DAY": ib_async 2.x marks the trade Cancelled; it is live
    order = await exchange.create_order("AAPL/USD", "limit", "buy", 3, 100.0, {"clientOrderId": "ib-10349"})
    assert order["status"] == "open"
    assert (await fetched(exchange, "ib-10349"))["status"] == "open"
    before = exchange.supervisor.reconnects
    ib_sim.drop_client(CLIENT_ID)  # and a reconnect's reconciliation agrees
    await reconnected(exchange, before)
    assert (await fetched(exchange, "ib-10349"))["status"] == "open"
    await check(tally, "10349 informational warning on a live order", ib_sim, journal, ["ib-10349"])


async def test_cancel_lost_in_transit_leaves_the_truth_and_a_retry_cancels(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    await exchange.create_order("AAPL/USD", "limit", "buy", 3, 100.0, {"clientOrderId": "ib-cancel"})
    before = exchange.supervisor.reconnects
    ib_sim.drop_after_messages(1, client_id=CLIENT_ID, direction="in")  # the cancel never reaches TWS
    result = await outcome(exchange.cancel_order("ib-cancel", "AAPL/USD", {"clientOrderId": "ib-cancel"}))
    assert_bot_saw_a_correct_order_or_an_exception(result, "ib-cancel", "open")
    await reconnected(exchange, before)
    assert (await fetched(exchange, "ib-cancel"))["status"] == "open", "the order is still working at IB"
    canceled = await exchange.cancel_order("ib-cancel", "AAPL/USD", {"clientOrderId": "ib-cancel"})
    assert canceled["status"] == "canceled"
    await check(tally, "cancel lost in transit", ib_sim, journal, ["ib-cancel"])


async def test_pending_cancel_that_fills_across_a_drop_ends_closed(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    exchange.options["orderTimeout"] = 0.3  # the cancel will not be confirmed: do not wait long for it
    ib_sim.set_liquidity(4, symbol="AAPL")
    first = await exchange.create_order("AAPL/USD", "market", "buy", 10, None, {"clientOrderId": "ib-pcancel"})
    assert first["filled"] == 4
    ib_sim.hold_cancels()  # TWS answers PendingCancel; the order may still fill (ib-protocol.md §5)
    result = await outcome(exchange.cancel_order("ib-pcancel", "AAPL/USD", {"clientOrderId": "ib-pcancel"}))
    assert_bot_saw_a_correct_order_or_an_exception(result, "ib-pcancel", "closed")
    await held_down(exchange, ib_sim)
    ib_sim.advance(120)  # the rest fills while the cancel is pending and we are away
    before = exchange.supervisor.reconnects
    ib_sim.mark_client_id_in_use(CLIENT_ID, False)
    await reconnected(exchange, before)
    ib_sim.release_cancels()
    order = await fetched(exchange, "ib-pcancel")
    assert order["status"] == "closed" and order["filled"] == 10, "a cancel that lost the race is not a cancel"
    await check(tally, "PendingCancel, then filled across a drop", ib_sim, journal, ["ib-pcancel"])


async def test_reconnect_restores_market_data_streams(exchange: IBTrader, ib_sim: IBSimulator) -> None:
    contract = ib_lib.Contract(conId=int(exchange.market("AAPL/USD")["id"]), exchange="SMART")
    exchange.transport.stream(contract)

    def lines() -> int:
        return sum(len(s.mkt) for s in ib_sim.sessions if s.client_id == CLIENT_ID and s.ready and not s.closed)

    await eventually(lambda: lines() == 1)
    before = exchange.supervisor.reconnects
    ib_sim.drop_client(CLIENT_ID)  # a new session starts with no market-data lines at all
    await reconnected(exchange, before)
    await eventually(lambda: lines() == 1)


async def test_reconnecting_during_an_ib_outage_stays_an_outage(
    exchange: IBTrader, ib_sim: IBSimulator, journal: OrderJournal, tally: Any
) -> None:
    ib_sim.start_outage()
    await exchange.supervisor.wait_for(lambda s: s.state == OUTAGE, 5)
    before = exchange.supervisor.reconnects
    ib_sim.drop_client(CLIENT_ID)  # the new session hears 1100 again right after the handshake
    await exchange.supervisor.wait_for(lambda s: s.reconnects > before and s.state == OUTAGE and not s.healing, 10)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await exchange.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "ib-still-out"})
    assert ib_orders_with_ref(ib_sim, "ib-still-out") == []
    ib_sim.end_outage(data_lost=True)
    await exchange.supervisor.wait_for(lambda s: s.state == CONNECTED and not s.healing, 5)
    order = await exchange.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "ib-back"})
    assert order["status"] == "closed"
    await check(tally, "reconnect during an IB outage", ib_sim, journal, ["ib-still-out", "ib-back"])


async def test_a_failing_data_feed_never_blocks_a_cancel(
    ib_sim: IBSimulator, journal_path: Path, tally: Any
) -> None:
    options = ib_options(ib_sim, journal_path, CLIENT_ID, requestTimeout=0.2, orderTimeout=0.2)
    ex = IBTrader({"options": options})
    try:
        await ex.load_markets()
        working = await ex.create_order("AAPL/USD", "limit", "buy", 2, 100.0, {"clientOrderId": "ib-feed"})
        ib_sim.delay_replies(0.5, client_id=CLIENT_ID)  # snapshots time out, again and again
        failures: list[BaseException] = []
        for _ in range(8):
            result = await outcome(ex.fetch_ticker("AAPL/USD"))
            assert isinstance(result, ccxt.NetworkError), result
            failures.append(result)
        assert any("circuit breaker" in str(e) for e in failures), "repeated data failures must open the breaker"
        # The execution side is untouched: the cancel is sent (IB confirms it late, once replies flow again).
        result = await outcome(ex.cancel_order(working["id"], "AAPL/USD"))
        assert not (isinstance(result, ccxt.ExchangeNotAvailable) and "circuit breaker" in str(result)), result
        ib_sim.delay_replies(0.0)
        await eventually(lambda: all(o.status == "Cancelled" for o in ib_orders_with_ref(ib_sim, "ib-feed")))
        with OrderJournal(journal_path, exchange="ibkr", account=IB_ACCOUNT) as journal:
            # IB's late confirmation reaches the adapter (and its journal) once replies flow again.
            await eventually(lambda: (row := journal.get("ib-feed")) is not None and row.state == "canceled")
            assert (await ex.fetch_order(working["id"], "AAPL/USD"))["status"] == "canceled"
            await check(tally, "failing data feed, then cancel", ib_sim, journal, ["ib-feed"])
    finally:
        ib_sim.delay_replies(0.0)
        await ex.close()


async def test_a_reconnect_closes_breakers_opened_by_the_drop(
    ib_sim: IBSimulator, journal_path: Path, tally: Any
) -> None:
    ex = IBTrader({"options": ib_options(ib_sim, journal_path, CLIENT_ID, requestTimeout=0.5)})
    try:
        await ex.load_markets()
        ib_sim.delay_replies(30.0, client_id=CLIENT_ID)  # requests in flight when the socket dies
        calls = [asyncio.ensure_future(outcome(ex.fetch_positions())) for _ in range(8)]
        await asyncio.sleep(0)  # let them all reach the socket
        before = ex.supervisor.reconnects
        # Drop first (drop_client waits for it), then lift the delay: the other way round, a request the
        # simulator's thread had not read yet would be answered at once and not fail.
        ib_sim.drop_client(CLIENT_ID)
        ib_sim.delay_replies(0.0)
        results = await asyncio.gather(*calls)
        assert all(isinstance(r, ccxt.NetworkError) for r in results), results
        await reconnected(ex, before)
        # The reconnect proved IB reachable: failures counted during the drop must not fail calls now.
        assert isinstance(await ex.fetch_positions(), list)
        order = await ex.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "ib-after-drop"})
        assert order["status"] == "closed"
        with OrderJournal(journal_path, exchange="ibkr", account=IB_ACCOUNT) as journal:
            await check(tally, "breakers after a reconnect", ib_sim, journal, ["ib-after-drop"])
    finally:
        ib_sim.delay_replies(0.0)
        await ex.close()
