"""CapitalTrader's session, limiter and failure handling on the simulated clock, sync and async:
lazy login, refresh before the 10-minute expiry, one re-login on 401 (reads repeated, writes only
when proven unbooked), lost answers never re-sent, 429 / 5xx / timeouts mapped, no secret leaks,
demo by default and live only with the double opt-in."""

from __future__ import annotations

import asyncio
import json
import logging

import ccxt
import httpx
import pytest

import ccxt_capital
from ccxt_capital.async_support import CapitalTrader as AsyncCapitalTrader
from ccxt_capital.transport import DEMO_HOST, LIVE_HOST
from normalization.runtime.settle import ReconciliationPending
from tests import conformance

from .trader_fixtures import Face, booked, face_fixture, face_kind_fixture, make_face_fixture  # noqa: F401

pytestmark = pytest.mark.capital_sim(rate_limits="sim")


async def test_login_is_lazy_and_reused(face_kind: str, make_face, capital_sim) -> None:
    ex = make_face(face_kind)
    try:
        assert capital_sim.broker.sessions.sessions == {}  # constructing logs nothing in
        await ex.call("load_markets")
        await ex.call("fetch_ticker", "AAPL/USD")
        await ex.call("fetch_balance")
        assert ex.wire.stats["logins"] == 1 and len(capital_sim.broker.sessions.sessions) == 1
    finally:
        await ex.close()


async def test_session_is_refreshed_before_the_ten_minute_expiry(face: Face, capital_sim) -> None:
    stats = face.wire.stats
    logins = stats["logins"]
    capital_sim.advance(300)  # 5 minutes idle: the session is still good
    await face.call("fetch_ticker", "AAPL/USD")
    assert stats["logins"] == logins
    capital_sim.advance(570)  # 9.5 minutes idle: log in again *before* the broker would refuse
    await face.call("fetch_ticker", "AAPL/USD")
    assert stats["logins"] == logins + 1 and stats["proactive_relogins"] == 1
    capital_sim.advance(700)  # past the broker's expiry: still no 401, we logged in first
    await face.call("fetch_balance")
    assert stats["proactive_relogins"] == 2 and stats["relogins_on_401"] == 0


async def test_keep_alive_pings_an_idle_session(face: Face, capital_sim) -> None:
    assert await face.call("keep_alive") is False  # fresh: nothing to do
    capital_sim.advance(560)
    assert await face.call("keep_alive") is True
    logins = face.wire.stats["logins"]
    capital_sim.advance(100)
    await face.call("fetch_ticker", "AAPL/USD")
    assert face.wire.stats["logins"] == logins  # 100 s after the ping: no new login needed


async def test_a_read_meeting_401_logs_in_once_and_is_repeated(face: Face, capital_sim) -> None:
    capital_sim.faults.expire_sessions_now()  # the broker forgot us early
    ticker = await face.call("fetch_ticker", "AAPL/USD")
    conformance.check_ticker(face.exchange, ticker, "AAPL/USD")
    assert face.wire.stats["relogins_on_401"] == 1


async def test_a_deal_meeting_401_is_verified_unbooked_then_sent_once(face: Face, capital_sim) -> None:
    capital_sim.faults.expire_session(method="POST", path="/positions")
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 2)
    assert order["status"] == "closed" and face.wire.stats["relogins_on_401"] == 1
    [position] = capital_sim.positions()
    assert position.size == 2


async def test_a_cancel_meeting_401_is_verified_then_repeated(face: Face, capital_sim) -> None:
    order = await face.call("create_order", "AAPL/USD", "limit", "buy", 1, 100.0)
    capital_sim.faults.expire_session(method="DELETE", path="/workingorders")
    canceled = await face.call("cancel_order", order["id"])
    assert canceled["status"] == "canceled" and capital_sim.working_orders() == []


async def test_a_deal_whose_answer_is_lost_is_resolved_not_resent(face: Face, capital_sim) -> None:
    capital_sim.faults.drop(after=True, method="POST", path="/positions")
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 3, None, {"clientOrderId": "lost-1"})
    conformance.check_order(face.exchange, order, "AAPL/USD")
    assert order["status"] == "closed" and order["clientOrderId"] == "lost-1" and order["id"].startswith("o_")
    [position] = capital_sim.positions()
    # The position's own reference is p_<dealId>; the deal that opened it is the order's o_ reference.
    assert position.size == 3 and position.deal_reference == "p_" + position.deal_id
    confirm = capital_sim.broker.dealer.confirms[order["id"]].payload
    assert any(d["dealId"] == position.deal_id for d in confirm["affectedDeals"])


async def test_a_deal_that_may_not_have_arrived_has_no_status_until_settled_then_places_once(
        face: Face, capital_sim) -> None:
    capital_sim.faults.drop(after=False, method="POST", path="/positions")
    with pytest.raises(ccxt.RequestTimeout, match="outcome is unknown"):  # no status the broker never confirmed
        await face.call("create_order", "AAPL/USD", "market", "buy", 3, None, {"clientOrderId": "gone-1"})
    await face.call("wait_ready", 5)  # the lost connection is re-established and the journal reconciled
    assert face.impl.supervisor.reconnects == 1
    face.impl.options["reconcileWait"] = 0.2
    # Inside the reconciliation grace the deal may still be on its way: an honest "pending", nothing sent.
    with pytest.raises(ReconciliationPending):
        await face.call("create_order", "AAPL/USD", "market", "buy", 3, None, {"clientOrderId": "gone-1"})
    with pytest.raises(ReconciliationPending):
        await face.call("fetch_order", "gone-1")
    assert capital_sim.positions() == []
    capital_sim.advance(120)  # past the grace: absent from the books, so provably never received
    again = await face.call("create_order", "AAPL/USD", "market", "buy", 3, None, {"clientOrderId": "gone-1"})
    assert again["status"] == "closed" and again["clientOrderId"] == "gone-1" and again["id"].startswith("o_")
    third = await face.call("create_order", "AAPL/USD", "market", "buy", 3, None, {"clientOrderId": "gone-1"})
    assert third["id"] == again["id"] and len(capital_sim.positions()) == 1  # placed again exactly once


async def test_a_timed_out_deal_is_found_later(make_face, capital_sim) -> None:
    ex = make_face("async")
    ex.exchange.timeout = 300  # ms
    try:
        await ex.call("load_markets")
        capital_sim.faults.slow(0.6, method="POST", path="/positions")
        with pytest.raises(ccxt.RequestTimeout):
            await ex.call("create_order", "AAPL/USD", "market", "buy", 4, None, {"clientOrderId": "slow-1"})
        for _ in range(100):  # the simulator books it when its (wall-clock) delay is over
            if booked(capital_sim)["positions"]:
                break
            await asyncio.sleep(0.02)
        found = await ex.call("fetch_order", "slow-1")
        assert found["status"] == "closed" and found["id"].startswith("o_") and found["filled"] == 4
        assert len(capital_sim.positions()) == 1
    finally:
        await ex.close()


async def test_pending_confirms_are_polled_within_a_bound(face: Face, capital_sim) -> None:
    capital_sim.faults.pending_confirms(polls=3)
    quick = await face.call("create_order", "AAPL/USD", "market", "buy", 1)
    assert quick["status"] == "closed"
    capital_sim.faults.pending_confirms(seconds=60)
    start = capital_sim.clock.now()
    slow = await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "slowconf"})
    assert slow["status"] == "open" and slow["id"].startswith("o_")
    assert 10 <= capital_sim.clock.now() - start < 15  # confirmTimeout (10 s) on the simulated clock
    capital_sim.advance(60)
    assert (await face.call("fetch_order", slow["id"]))["status"] == "closed"


async def test_the_limiter_keeps_a_burst_inside_the_broker_limits(face: Face, capital_sim) -> None:
    start = capital_sim.clock.now()
    for _ in range(25):
        await face.call("fetch_ticker", "AAPL/USD")
    for _ in range(4):
        await face.call("create_order", "EUR/USD", "market", "buy", 1000)
    assert capital_sim.clock.now() - start >= 2.0  # it waited (on the simulated clock) instead of a 429
    assert sum(p.size for p in capital_sim.positions()) == 4000  # one position per deal, as at Capital


async def test_without_the_limiter_the_broker_answers_429(make_face, capital_sim) -> None:
    ex = make_face("async", pacing=False, orderTimeout=0)
    try:
        await ex.call("load_markets")
        await ex.call("create_order", "EUR/USD", "market", "buy", 1000)
        with pytest.raises(ccxt.RateLimitExceeded, match="error.too-many.requests"):
            await ex.call("create_order", "EUR/USD", "market", "buy", 1000)  # same instant: 1 deal / 0.1 s
        assert len(capital_sim.positions()) == 1
    finally:
        await ex.close()


async def test_http_errors_map_to_ccxt_exceptions(face: Face, capital_sim) -> None:
    capital_sim.faults.fail(503, "error.service.unavailable", method="GET", path="/accounts")
    with pytest.raises(ccxt.ExchangeNotAvailable, match="503 error.service.unavailable"):
        await face.call("fetch_balance")
    rule = capital_sim.faults.too_many_requests(times=1000, method="GET", path="/markets")
    with pytest.raises(ccxt.RateLimitExceeded):
        await face.call("fetch_ticker", "AAPL/USD")  # 429s for longer than rateLimitWait reach the bot
    rule.times = 0
    capital_sim.faults.too_many_requests(times=3, method="GET", path="/markets")
    assert (await face.call("fetch_ticker", "AAPL/USD"))["symbol"] == "AAPL/USD"  # 429s are waited out
    with pytest.raises(ccxt.OrderNotFound):
        await face.call("cancel_order", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(ccxt.OrderNotFound):
        await face.call("fetch_order", "o_00000000-0000-0000-0000-000000000000")


async def test_read_timeouts_are_bounded(make_face, capital_sim) -> None:
    ex = make_face("async")
    ex.exchange.timeout = 200
    try:
        await ex.call("load_markets")
        capital_sim.faults.slow(0.5, times=2, method="GET", path="/markets")
        with pytest.raises(ccxt.RequestTimeout):
            await ex.call("fetch_ticker", "AAPL/USD")
    finally:
        await ex.close()


@pytest.mark.parametrize("field, value, code", [
    ("password", "wrong-password", "error.invalid.details"),
    ("apiKey", "wrong-key", "error.invalid.api.key"),
])
async def test_wrong_credentials(face_kind: str, make_face, capital_sim, field: str, value: str,
                                 code: str) -> None:
    ex = make_face(face_kind)
    setattr(ex.exchange, field, value)
    setattr(ex.impl, field, value)
    try:
        with pytest.raises(ccxt.AuthenticationError, match=code) as caught:
            await ex.call("load_markets")
        assert value not in str(caught.value)
        assert booked(capital_sim) == {"positions": 0, "orders": 0, "activities": 0, "confirms": 0}
    finally:
        await ex.close()


async def test_missing_credentials_are_named(make_face) -> None:
    ex = make_face("async")
    ex.exchange.password = None
    try:
        with pytest.raises(ccxt.AuthenticationError, match="password"):
            await ex.call("load_markets")
    finally:
        await ex.close()


async def test_secrets_never_leak(face_kind: str, make_face, capital_sim, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ex = make_face(face_kind)
    seen: list[str] = []
    try:
        await ex.call("load_markets")
        cst, token = ex.wire._tokens
        results = [
            await ex.call("fetch_balance"),
            await ex.call("create_order", "AAPL/USD", "market", "buy", 1),
            await ex.call("fetch_positions"),
            await ex.call("fetch_my_trades"),
            await ex.call("fetch_open_orders"),
        ]
        seen.append(json.dumps(results, default=str))
        capital_sim.faults.expire_sessions_now()
        await ex.call("fetch_ticker", "AAPL/USD")  # a 401 and a re-login, logged
        new_cst, new_token = ex.wire._tokens
        ex.exchange.password = ex.impl.password = "not-the-password"
        capital_sim.faults.expire_sessions_now()
        with pytest.raises(ccxt.AuthenticationError) as caught:
            await ex.call("fetch_balance")
        seen += [str(caught.value), repr(caught.value), repr(ex.exchange), str(ex.exchange), repr(ex.wire),
                 caplog.text]
    finally:
        await ex.close()
    secrets = [capital_sim.api_key, capital_sim.password, "not-the-password", cst, token, new_cst, new_token]
    for text in seen:
        for secret in secrets:
            assert secret not in text


def test_demo_by_default_and_live_only_with_both_opt_ins(monkeypatch) -> None:
    monkeypatch.delenv("CCXT_BROKERS_ALLOW_LIVE", raising=False)
    ex = AsyncCapitalTrader({"apiKey": "k", "login": "l", "password": "p"})
    assert ex.urls["api"]["rest"] == DEMO_HOST and ex._host() == DEMO_HOST
    ex.set_sandbox_mode(True)
    assert ex.urls["api"]["rest"] == DEMO_HOST
    with pytest.raises(ccxt.PermissionDenied, match="CCXT_BROKERS_ALLOW_LIVE"):
        ex.set_sandbox_mode(False)
    with pytest.raises(ccxt.PermissionDenied, match="CCXT_BROKERS_ALLOW_LIVE"):
        AsyncCapitalTrader({"options": {"live": True}})
    with pytest.raises(ccxt.PermissionDenied, match="CCXT_BROKERS_ALLOW_LIVE"):
        ccxt_capital.CapitalTrader({"options": {"live": True}})
    monkeypatch.setenv("CCXT_BROKERS_ALLOW_LIVE", "1")
    with pytest.raises(ccxt.PermissionDenied, match="live"):
        ex.set_sandbox_mode(False)  # the environment alone is not enough
    live = AsyncCapitalTrader({"options": {"live": True}})
    assert live.urls["api"]["rest"] == LIVE_HOST and live._host() == LIVE_HOST
    live.set_sandbox_mode(True)
    assert live._host() == DEMO_HOST
    sandbox = ccxt_capital.CapitalTrader({"sandbox": True})
    try:
        assert sandbox.urls["api"]["rest"] == DEMO_HOST
    finally:
        sandbox.close()


async def test_someone_elses_identical_deal_is_never_adopted(face: Face, capital_sim) -> None:
    capital_sim.advance(1)  # one login per second per API key
    async with httpx.AsyncClient(base_url=capital_sim.api_url) as http:
        login = await http.post("/session", headers={"X-CAP-API-KEY": capital_sim.api_key},
                                json={"identifier": capital_sim.identifier, "password": capital_sim.password})
        headers = {"CST": login.headers["CST"], "X-SECURITY-TOKEN": login.headers["X-SECURITY-TOKEN"]}
        await http.post("/positions", headers=headers, json={"epic": "AAPL", "direction": "BUY", "size": 3})
    capital_sim.advance(5)
    capital_sim.faults.drop(after=False, method="POST", path="/positions")
    with pytest.raises(ccxt.RequestTimeout):  # unresolved: not someone else's deal
        await face.call("create_order", "AAPL/USD", "market", "buy", 3, None, {"clientOrderId": "mine-1"})
    await face.call("wait_ready", 5)
    capital_sim.advance(120)
    report = await face.call("reconcile_journal")
    assert report.resolved == [("mine-1", "absent at broker after full sync")]
    assert len(capital_sim.positions()) == 1


async def test_calls_fail_fast_while_the_connection_is_re_established(face: Face, capital_sim) -> None:
    capital_sim.faults.drop(path="/", times=1_000)  # the broker is unreachable
    with pytest.raises(ccxt.NetworkError):
        await face.call("fetch_balance")
    with pytest.raises(ccxt.NetworkError, match="failing fast"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "outage-1"})
    assert booked(capital_sim)["positions"] == 0
    capital_sim.faults.clear()
    await face.call("wait_ready", 5)
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 1)
    assert order["status"] == "closed" and len(capital_sim.positions()) == 1


async def test_a_failing_price_feed_opens_its_breaker_but_never_blocks_orders(face: Face, capital_sim) -> None:
    working = await face.call("create_order", "AAPL/USD", "limit", "buy", 1, 100.0)
    capital_sim.faults.fail(503, "error.service.unavailable", method="GET", path="/prices", times=100)
    errors = []
    for _ in range(7):
        with pytest.raises(ccxt.ExchangeNotAvailable) as caught:
            await face.call("fetch_ohlcv", "AAPL/USD", "1m", None, 5)
        errors.append(str(caught.value))
    assert "circuit breaker" in errors[-1] and sum(r.times for r in capital_sim.faults.armed) == 95
    assert face.impl.breakers.market_data.state == "open" and face.impl.breakers.execution.state == "closed"
    assert (await face.call("cancel_order", working["id"]))["status"] == "canceled"
    assert (await face.call("create_order", "AAPL/USD", "market", "buy", 1))["status"] == "closed"


async def test_a_429_on_placement_books_nothing_and_the_same_id_may_try_again(face: Face, capital_sim) -> None:
    rule = capital_sim.faults.too_many_requests(1000, method="POST", path="/positions")
    with pytest.raises(ccxt.RateLimitExceeded):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "busy-1"})
    assert capital_sim.positions() == []
    rule.times = 0
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "busy-1"})
    assert order["status"] == "closed" and order["clientOrderId"] == "busy-1"
    again = await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "busy-1"})
    assert again["id"] == order["id"] and len(capital_sim.positions()) == 1


async def test_a_5xx_on_placement_is_looked_up_before_it_is_called_refused(face: Face, capital_sim) -> None:
    capital_sim.faults.fail(503, "error.service.unavailable", method="POST", path="/positions")
    with pytest.raises(ccxt.ExchangeNotAvailable, match="503"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "down-1"})
    journal = await face.journal()
    assert journal.get("down-1").state == "rejected" and capital_sim.positions() == []
    with pytest.raises(ccxt.ExchangeNotAvailable):  # not retried under the same id: it might have been booked
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "down-1"})
    assert capital_sim.positions() == []
