"""IBTrader account methods and connection errors, end to end, both faces, through ccxt's validators."""

# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
from __future__ import annotations

import socket
import time

import ccxt
import pytest

from ccxt_ibkr.sim.server import IBSimulator
from ccxt_ibkr.sim.testing import eventually
from tests.conformance import check_balance, check_position, check_trade
from tests.ib.trader_fixtures import (  # noqa: F401 - fixtures
    ex,
    face,
    make_trader,
    run,
    sim,
    trader_sim,
)


async def test_balance_shows_bought_shares_as_base_currency(ex) -> None:
    before = await run(ex.fetch_balance())
    check_balance(ex, before)
    held = before.get("KO", {}).get("total") or 0
    cash = before["USD"]["total"]
    order = await run(ex.create_order("KO/USD", "market", "buy", 10))
    after = await run(ex.fetch_balance())
    check_balance(ex, after)
    assert after["KO"]["total"] == held + 10 and after["KO"]["free"] == held + 10
    spent = order["cost"] + order["fee"]["cost"]
    assert after["USD"]["total"] == pytest.approx(cash - spent, abs=0.02)
    assert after["USD"]["free"] <= after["USD"]["total"]
    await run(ex.create_order("KO/USD", "market", "sell", 10))
    final = await run(ex.fetch_balance())
    assert (final.get("KO", {}).get("total") or 0) == held


async def test_balance_reserves_shares_of_open_sell_orders(ex, sim: IBSimulator) -> None:
    await run(ex.create_order("IBM/USD", "market", "buy", 5))
    ask = sim.quote("IBM").ask
    sell = await run(ex.create_order("IBM/USD", "limit", "sell", 2, round(ask + 20, 2)))
    balance = await run(ex.fetch_balance())
    check_balance(ex, balance)
    assert balance["IBM"]["used"] >= 2 and balance["IBM"]["free"] == balance["IBM"]["total"] - balance["IBM"]["used"]
    await run(ex.cancel_order(sell["id"]))
    await run(ex.create_order("IBM/USD", "market", "sell", 5))


async def test_positions_long_short_and_futures(ex, sim: IBSimulator) -> None:
    future = next(i for i in sim.catalogue if i.sec_type == "FUT" and i.expiry_ts() > sim.now())
    es = f"ES/USD:USD-{future.last_trade_date[2:]}"
    await run(ex.create_order("GOOGL/USD", "market", "buy", 4))
    await run(ex.create_order("TSLA/USD", "market", "sell", 2))
    await run(ex.create_order(es, "market", "buy", 1))
    positions = {p["symbol"]: p for p in await run(ex.fetch_positions())}
    for symbol in ("GOOGL/USD", "TSLA/USD", es):
        check_position(ex, positions[symbol], symbol)
    googl, tsla, fut = positions["GOOGL/USD"], positions["TSLA/USD"], positions[es]
    assert googl["side"] == "long" and googl["contracts"] >= 4 and googl["contractSize"] == 1
    assert tsla["side"] == "short" and tsla["contracts"] >= 2
    assert fut["side"] == "long" and fut["contractSize"] == 50
    assert fut["entryPrice"] == pytest.approx(sim.market.quote(future, sim.now()).ask, rel=0.01)  # avgCost / multiplier
    assert fut["notional"] == pytest.approx(fut["contracts"] * 50 * fut["markPrice"])
    assert fut["marginMode"] == "cross" and fut["leverage"] == 1
    only = await run(ex.fetch_positions([es]))
    assert [p["symbol"] for p in only] == [es]
    await run(ex.close_position("GOOGL/USD"))
    await run(ex.close_position("TSLA/USD"))
    await run(ex.close_position(es))


async def test_my_trades_carry_commissions(ex) -> None:
    order = await run(ex.create_order("META/USD", "market", "buy", 3))
    trades = [t for t in await run(ex.fetch_my_trades("META/USD")) if t["order"] == order["id"]]
    assert trades
    for trade in trades:
        check_trade(ex, trade, "META/USD")
        assert trade["fee"]["currency"] == "USD" and trade["fee"]["cost"] >= 1.0
        assert trade["info"]["orderRef"] == order["clientOrderId"]
    all_trades = await run(ex.fetch_my_trades())
    assert len({t["id"] for t in all_trades}) == len(all_trades)
    await run(ex.create_order("META/USD", "market", "sell", 3))


async def test_commission_filled_in_later_when_ib_reports_it(make_trader, sim: IBSimulator) -> None:
    ex = make_trader(commissionWait=0.05)
    await run(ex.load_markets())
    sim.drop_commission_reports(1)
    order = await run(ex.create_order("SPY/USD", "market", "buy", 1))
    trades = [t for t in await run(ex.fetch_my_trades("SPY/USD")) if t["order"] == order["id"]]
    assert trades and all(t["fee"] is None or t["fee"]["cost"] is None for t in trades)
    check_trade(ex, trades[0], "SPY/USD")
    await run(ex.create_order("SPY/USD", "market", "sell", 1))


# ---------------------------------------------------------------------------------------- connection


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_connection_refused_is_exchange_not_available(make_trader) -> None:
    ex = make_trader(port=_free_port())
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await run(ex.fetch_time())
    status = await run(ex.fetch_status())
    assert status["status"] == "error"


async def test_client_id_in_use_fails_fast_and_clearly(make_trader, sim: IBSimulator) -> None:
    sim.mark_client_id_in_use(4242)
    try:
        ex = make_trader(clientId=4242, connectTimeout=5.0)
        started = time.monotonic()
        with pytest.raises(ccxt.AuthenticationError, match="clientId"):
            await run(ex.fetch_time())
        assert time.monotonic() - started < 2.0  # 326 detected: no waiting out the connect timeout
    finally:
        sim.mark_client_id_in_use(4242, in_use=False)


async def test_reconnects_after_a_dropped_connection(ex, sim: IBSimulator) -> None:
    await run(ex.fetch_time())
    supervisor = (ex.impl if hasattr(ex, "impl") else ex).supervisor
    before = supervisor.reconnects
    client_id = ex.options["clientId"]
    sim.mark_client_id_in_use(client_id)  # hold the "gateway" down until the bot has seen it
    sim.drop_client(client_id)
    try:
        await eventually(lambda: supervisor.state == "disconnected" and supervisor.attempts >= 1)
        started = time.monotonic()
        with pytest.raises(ccxt.NetworkError):  # fails fast while reconnecting: nothing is sent
            await run(ex.create_order("AAPL/USD", "market", "buy", 1))
        assert time.monotonic() - started < 1.0
    finally:
        sim.mark_client_id_in_use(client_id, in_use=False)
    await eventually(lambda: supervisor.reconnects > before and supervisor.state == "connected"
                     and not supervisor.healing)
    assert await run(ex.fetch_time()) == int(sim.now() * 1000)
    assert client_id in sim.connected_client_ids()


async def test_connect_explicitly(ex, sim: IBSimulator) -> None:
    await run(ex.connect())
    assert ex.options["clientId"] in sim.connected_client_ids()


async def test_a_failing_data_feed_opens_its_breaker_but_orders_still_go(make_trader, sim: IBSimulator) -> None:
    ex = make_trader(requestTimeout=0.1, orderTimeout=2.0, breaker={"failureThreshold": 2, "resetTimeout": 60})
    await run(ex.load_markets())
    client_id = ex.options["clientId"]
    sim.delay_replies(0.3, client_id=client_id)  # every answer arrives after the request timeout
    try:
        errors = []
        for _ in range(3):
            with pytest.raises(ccxt.NetworkError) as raised:
                await run(ex.fetch_ticker("AAPL/USD"))
            errors.append(str(raised.value))
        assert "circuit breaker" in errors[-1] and "market data" in errors[-1]
    finally:
        sim.delay_replies(0.0)
    order = await run(ex.create_order("AAPL/USD", "market", "buy", 1))  # the execution breaker is closed
    assert order["status"] == "closed"
    await run(ex.create_order("AAPL/USD", "market", "sell", 1))
