"""The Capital.com fault matrix: 429, 5xx, expired sessions and connections dropped mid-request.

Capital has no client order id (capital-api.md §4): the journal maps our clientOrderId to the
``dealReference``, and a deal whose answer was lost must be found again, never re-sent. Each scenario
drives the async ccxt API against ``capital_sim``, injects one fault with ``capital_sim.faults``,
waits for the adapter to be connected and reconciled (``supervisor.wait_ready``, event-driven), then
asserts the invariants: no duplicate deal (and no deal the journal does not own), every fill once
with its fee (0: Capital is spread-only), the bot saw a correct order or a ccxt exception, and the
journal agrees with the broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest

from ccxt_capital.async_support import CapitalTrader
from ccxt_capital.sim import CapitalSimulator
from normalization.runtime.journal import OrderJournal

from .brokers import (
    assert_bot_saw_a_correct_order_or_an_exception,
    assert_invariants,
    capital_config,
    capital_placements,
    capital_truth,
    capital_unowned,
    eventually,
    outcome,
)

pytestmark = pytest.mark.capital_sim(rate_limits="off")



@pytest.fixture
async def exchange(capital_sim: CapitalSimulator, journal_path: Path) -> AsyncIterator[CapitalTrader]:
    ex = CapitalTrader(capital_config(capital_sim, journal_path))
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


@pytest.fixture
def journal(journal_path: Path, exchange: CapitalTrader, capital_sim: CapitalSimulator) -> Iterator[OrderJournal]:
    account = capital_sim.accounts[0]
    with OrderJournal(journal_path, exchange="capitalcom", account=account) as view:
        yield view






async def settled(ex: CapitalTrader) -> None:
    """Connected and reconciled: any reconnect the fault caused has run its healing hooks."""
    await ex.supervisor.wait_ready(10)


async def check(tally: Any, name: str, sim: CapitalSimulator, journal: OrderJournal, cids: list[str]) -> None:
    # The adapter journals a settled deal's ids, fills and status right after create_order returns (off
    # the call's latency); one turn of the loop lets those writes land before we compare.
    await asyncio.sleep(0)
    orders, fills = capital_truth(sim, journal)
    unowned = capital_unowned(sim, journal)
    assert_invariants(tally, "capitalcom", name, journal, orders, fills, client_order_ids=cids,
                      extra_duplicates=len(unowned))
    sim.check_books()


async def buy(ex: CapitalTrader, cid: str, amount: float = 1) -> Any:
    return await outcome(ex.create_order("AAPL/USD", "market", "buy", amount, None, {"clientOrderId": cid}))


# ----------------------------------------------------------------------------- broker answers


async def test_429_on_placement_books_nothing_or_places_once(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    capital_sim.faults.too_many_requests(method="POST", path="/positions")
    result = await buy(exchange, "cap-429")
    deals = len(capital_placements(capital_sim))
    if isinstance(result, ccxt.BaseError):
        assert isinstance(result, ccxt.RateLimitExceeded), result
        assert deals == 0
    else:
        assert result["status"] == "closed" and deals == 1
    await settled(exchange)
    await check(tally, "429 on placement", capital_sim, journal, ["cap-429"])


async def test_5xx_on_placement_is_resolved_without_a_duplicate(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    capital_sim.faults.fail(503, "error.service.unavailable", method="POST", path="/positions")
    result = await buy(exchange, "cap-503")
    assert_bot_saw_a_correct_order_or_an_exception(result, "cap-503", None)
    if isinstance(result, ccxt.BaseError):
        assert isinstance(result, ccxt.ExchangeNotAvailable), result
    await settled(exchange)
    assert capital_placements(capital_sim) == {}
    row = journal.get("cap-503")
    assert row is None or row.state == "rejected"
    await check(tally, "5xx on placement", capital_sim, journal, ["cap-503"])


async def test_5xx_on_the_confirm_after_booking_is_adopted(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    capital_sim.faults.fail(500, method="GET", path="/confirms", times=2)
    result = await buy(exchange, "cap-confirm-500")
    assert_bot_saw_a_correct_order_or_an_exception(result, "cap-confirm-500", "closed")
    await settled(exchange)
    order = await exchange.fetch_order("cap-confirm-500", "AAPL/USD")
    assert order["status"] == "closed" and order["filled"] == 1
    assert len(capital_placements(capital_sim)) == 1
    await check(tally, "5xx on confirm after booking", capital_sim, journal, ["cap-confirm-500"])


async def test_expired_session_on_placement_is_sent_once(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    capital_sim.faults.expire_session(method="POST", path="/positions")  # 401: not booked
    order = await buy(exchange, "cap-401")
    assert not isinstance(order, ccxt.BaseError), order
    assert order["status"] == "closed" and len(capital_placements(capital_sim)) == 1
    capital_sim.faults.expire_sessions_now()  # and once more between two calls
    assert (await exchange.fetch_order("cap-401", "AAPL/USD"))["status"] == "closed"
    await settled(exchange)
    await check(tally, "expired session", capital_sim, journal, ["cap-401"])


# ------------------------------------------------------------------------ dropped mid-request


async def test_dropped_before_booking_is_marked_never_received_and_placed_again_once(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    capital_sim.faults.drop(method="POST", path="/positions")
    result = await buy(exchange, "cap-drop-before")
    assert_bot_saw_a_correct_order_or_an_exception(result, "cap-drop-before", None)
    await settled(exchange)
    assert capital_placements(capital_sim) == {}
    row = journal.get("cap-drop-before")
    assert row is not None and row.never_received, row
    with pytest.raises(ccxt.OrderNotFound, match="never reached"):
        await exchange.fetch_order("cap-drop-before", "AAPL/USD")
    again = await buy(exchange, "cap-drop-before")  # provably never received: placed again, once
    assert not isinstance(again, ccxt.BaseError) and again["status"] == "closed"
    third = await buy(exchange, "cap-drop-before")
    assert not isinstance(third, ccxt.BaseError) and third["id"] == again["id"]
    assert len(capital_placements(capital_sim)) == 1
    await check(tally, "dropped before booking", capital_sim, journal, ["cap-drop-before"])


async def test_dropped_after_booking_is_found_and_adopted(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    capital_sim.faults.drop(after=True, method="POST", path="/positions")
    result = await buy(exchange, "cap-drop-after", 2)
    assert_bot_saw_a_correct_order_or_an_exception(result, "cap-drop-after", "closed")
    await settled(exchange)
    order = await exchange.fetch_order("cap-drop-after", "AAPL/USD")
    assert order["status"] == "closed" and order["filled"] == 2
    again = await buy(exchange, "cap-drop-after", 2)  # the bot retries: it gets the first order back
    assert not isinstance(again, ccxt.BaseError) and again["status"] == "closed"
    assert len(capital_placements(capital_sim)) == 1
    await check(tally, "dropped after booking", capital_sim, journal, ["cap-drop-after"])


async def test_working_order_dropped_after_booking_then_cancelled(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    quote = capital_sim.quote("AAPL")
    price = round(quote.bid * 0.8, 2)
    capital_sim.faults.drop(after=True, method="POST", path="/workingorders")
    result = await outcome(
        exchange.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "cap-limit-drop"})
    )
    assert_bot_saw_a_correct_order_or_an_exception(result, "cap-limit-drop", "open")
    await settled(exchange)
    assert (await exchange.fetch_order("cap-limit-drop", "AAPL/USD"))["status"] == "open"
    canceled = await exchange.cancel_order("cap-limit-drop", "AAPL/USD")
    assert canceled["status"] == "canceled"
    assert len(capital_placements(capital_sim)) == 1
    await check(tally, "working order dropped after booking", capital_sim, journal, ["cap-limit-drop"])


async def test_dropped_confirm_read_is_retried_safely(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    capital_sim.faults.drop(after=True, method="GET", path="/confirms")
    order = await buy(exchange, "cap-confirm-drop")
    assert_bot_saw_a_correct_order_or_an_exception(order, "cap-confirm-drop", "closed")
    await settled(exchange)
    assert (await exchange.fetch_order("cap-confirm-drop", "AAPL/USD"))["status"] == "closed"
    assert len(capital_placements(capital_sim)) == 1
    await check(tally, "connection dropped on confirm read", capital_sim, journal, ["cap-confirm-drop"])


async def test_refused_connections_book_nothing_and_the_same_id_places_once_when_back(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    # The broker's front door shuts (its books stay): the kept-alive connection is cut and new ones are
    # refused. A refused connection proves the deal never left, so the adapter may try it again (once,
    # inside create_order) and the bot may retry the same clientOrderId later: it is placed exactly once.
    await exchange.fetch_balance()  # a kept-alive connection to cut
    capital_sim.go_down()
    result = await buy(exchange, "cap-refused")
    assert isinstance(result, ccxt.NetworkError), result
    row = journal.get("cap-refused")
    assert row is not None and row.state == "rejected", row
    assert capital_placements(capital_sim) == {}
    await exchange.supervisor.wait_for(lambda s: s.state != "connected", 5)
    capital_sim.come_back()
    await settled(exchange)
    again = await buy(exchange, "cap-refused")
    assert not isinstance(again, ccxt.BaseError) and again["status"] == "closed", again
    assert len(capital_placements(capital_sim)) == 1
    assert (await buy(exchange, "cap-refused"))["id"] == again["id"]  # a third call is the same order
    assert len(capital_placements(capital_sim)) == 1
    await check(tally, "connections refused on placement", capital_sim, journal, ["cap-refused"])


async def test_calls_fail_fast_while_reconnecting(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    # Every request dropped: the adapter loses the broker, fails fast, and recovers once it answers.
    capital_sim.faults.drop(path="/", times=1_000)
    first = await outcome(exchange.fetch_balance())
    assert isinstance(first, ccxt.NetworkError), first
    await exchange.supervisor.wait_for(lambda s: s.state != "connected", 5)
    second = await outcome(buy(exchange, "cap-outage"))
    assert isinstance(second, ccxt.NetworkError), second
    capital_sim.faults.clear()
    await settled(exchange)
    assert capital_placements(capital_sim) == {}
    order = await buy(exchange, "cap-after-outage")
    assert not isinstance(order, ccxt.BaseError) and order["status"] == "closed"
    await check(tally, "broker unreachable, then back", capital_sim, journal, ["cap-outage", "cap-after-outage"])


async def test_slow_broker_calls_are_bounded_and_a_slow_deal_is_never_doubled(
    capital_sim: CapitalSimulator, journal_path: Path, tally: Any
) -> None:
    config = capital_config(capital_sim, journal_path, reconcileGraceMs=30_000)  # the deal may still be booking
    config["timeout"] = 300
    ex = CapitalTrader(config)
    try:
        await ex.load_markets()
        capital_sim.faults.slow(1.0, method="GET", path="/accounts", times=2)
        started = time.monotonic()
        with pytest.raises(ccxt.RequestTimeout):
            await ex.fetch_balance()
        assert time.monotonic() - started < 1.5, "a slow broker must not hold a bot past its timeout"
        capital_sim.faults.slow(1.0, method="POST", path="/positions")  # booked after we gave up waiting
        result = await buy(ex, "cap-slow")
        assert_bot_saw_a_correct_order_or_an_exception(result, "cap-slow", "closed")
        await eventually(lambda: len(capital_placements(capital_sim)) == 1, timeout=5)
        await ex.supervisor.wait_ready(10)
        again = await buy(ex, "cap-slow")  # the bot retries the same clientOrderId: the first order comes back
        assert_bot_saw_a_correct_order_or_an_exception(again, "cap-slow", "closed")
        order = await ex.fetch_order("cap-slow", "AAPL/USD")
        assert order["status"] == "closed" and order["filled"] == 1
        assert len(capital_placements(capital_sim)) == 1, "a deal whose answer was late is never sent twice"
        with OrderJournal(journal_path, exchange="capitalcom", account=capital_sim.accounts[0]) as journal:
            await check(tally, "slow broker (timeouts)", capital_sim, journal, ["cap-slow"])
    finally:
        await ex.close()


async def test_a_failing_data_feed_never_blocks_a_cancel(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    quote = capital_sim.quote("AAPL")
    working = await exchange.create_order("AAPL/USD", "limit", "buy", 1, round(quote.bid * 0.8, 2),
                                          {"clientOrderId": "cap-feed"})
    capital_sim.faults.fail(503, "error.service.unavailable", method="GET", path="/prices", times=1_000)
    failures: list[BaseException] = []
    for _ in range(12):  # the market-data breaker opens after a few failures and then fails fast
        result = await outcome(exchange.fetch_ohlcv("AAPL/USD", "1m", limit=5))
        assert isinstance(result, ccxt.ExchangeNotAvailable), result
        failures.append(result)
    assert any("circuit breaker" in str(e) for e in failures), "repeated data failures must open the breaker"
    served = sum(r.times for r in capital_sim.faults.armed)
    assert served > 1_000 - 12, "an open breaker must stop sending market-data requests to the broker"
    canceled = await exchange.cancel_order(working["id"], "AAPL/USD")
    assert canceled["status"] == "canceled"
    order = await buy(exchange, "cap-feed-buy")
    assert not isinstance(order, ccxt.BaseError) and order["status"] == "closed"
    await check(tally, "failing data feed, then cancel", capital_sim, journal, ["cap-feed", "cap-feed-buy"])


async def test_cancel_dropped_after_it_was_applied(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    quote = capital_sim.quote("AAPL")
    working = await exchange.create_order("AAPL/USD", "limit", "buy", 1, round(quote.bid * 0.8, 2),
                                          {"clientOrderId": "cap-cancel"})
    capital_sim.faults.drop(after=True, method="DELETE", path="/workingorders")  # deleted; the answer is lost
    result = await outcome(exchange.cancel_order(working["id"], "AAPL/USD"))
    assert_bot_saw_a_correct_order_or_an_exception(result, "cap-cancel", "canceled")
    await settled(exchange)
    assert capital_sim.working_orders() == []
    again = await outcome(exchange.cancel_order(working["id"], "AAPL/USD"))  # the bot retries the cancel
    assert_bot_saw_a_correct_order_or_an_exception(again, "cap-cancel", "canceled")
    assert (await exchange.fetch_order("cap-cancel", "AAPL/USD"))["status"] == "canceled"
    await check(tally, "cancel dropped after it was applied", capital_sim, journal, ["cap-cancel"])


async def test_a_reconnect_closes_breakers_opened_by_the_drop(
    exchange: CapitalTrader, capital_sim: CapitalSimulator, journal: OrderJournal, tally: Any
) -> None:
    capital_sim.faults.drop(method="GET", path="/accounts", times=100)  # every request in flight dies
    results = await asyncio.gather(*(outcome(exchange.fetch_balance()) for _ in range(8)))
    assert all(isinstance(r, ccxt.NetworkError) for r in results), results
    capital_sim.faults.clear()
    await settled(exchange)
    # The reconnect proved the broker reachable: failures counted during the drop must not fail calls now.
    assert isinstance(await exchange.fetch_balance(), dict)
    order = await buy(exchange, "cap-after-drop")
    assert not isinstance(order, ccxt.BaseError) and order["status"] == "closed"
    await check(tally, "breakers after a reconnect", capital_sim, journal, ["cap-after-drop"])
