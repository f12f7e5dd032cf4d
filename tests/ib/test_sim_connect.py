"""Connecting to the fake TWS: handshake, version negotiation, startup sync, several clients,
clientId conflicts and hostile input, each over a real socket."""

from __future__ import annotations

import asyncio

import pytest

from ccxt_ibkr._ib import IB_LIBRARY_NAME
from ccxt_ibkr.sim import IBSimulator
from ccxt_ibkr.sim.rawclient import RawClient
from ccxt_ibkr.sim.testing import connect, eventually
from ccxt_ibkr.sim.wire import negotiate


def test_negotiation_rules() -> None:
    assert negotiate(157, 178) == 178
    assert negotiate(157, 176) == 176
    assert negotiate(100, 225) == 178
    assert negotiate(100, 157) == 157
    assert negotiate(100, 150) is None
    assert negotiate(180, 190) is None


async def test_connect_and_startup_sync(ib_sim: IBSimulator, ib_client) -> None:
    expected = 178 if IB_LIBRARY_NAME == "ib_async" else 176
    assert ib_client.client.serverVersion() == expected
    assert ib_client.managedAccounts() == ["DU1234567"]
    assert ib_client.positions() == []
    assert ib_client.openTrades() == []
    tags = {v.tag for v in ib_client.accountValues()}
    assert {"NetLiquidation", "TotalCashValue", "AvailableFunds", "BuyingPower", "CashBalance"} <= tags
    net = [v for v in ib_client.accountValues() if v.tag == "NetLiquidation" and v.currency == "USD"]
    assert float(net[0].value) == pytest.approx(1_000_000.0)
    when = await ib_client.reqCurrentTimeAsync()
    assert when.timestamp() == pytest.approx(ib_sim.now())
    assert ib_sim.connected_client_ids() == [1]


async def test_account_summary_and_base_currency() -> None:
    with IBSimulator(port=0, seed=1, base_currency="AUD", cash={"AUD": 500_000.0, "USD": 10_000.0}) as sim:
        ib = await connect(sim, client_id=3)
        try:
            rows = await ib.accountSummaryAsync()
            values = {(r.tag, r.currency): r.value for r in rows}
            rate = sim.fx_rate("USD")
            assert float(values[("TotalCashValue", "AUD")]) == pytest.approx(500_000 + 10_000 * rate, abs=0.02)
            assert ("NetLiquidation", "AUD") in values
            ccy_cash = {(v.tag, v.currency): v.value for v in ib.accountValues()}
            assert float(ccy_cash[("CashBalance", "USD")]) == 10_000
            assert float(ccy_cash[("ExchangeRate", "USD")]) == pytest.approx(rate, rel=1e-5)
        finally:
            ib.disconnect()


async def test_req_ids_and_order_ids_persist_per_client(ib_sim: IBSimulator) -> None:
    from ccxt_ibkr._ib import ib_lib

    ib = await connect(ib_sim, client_id=5)
    trade = ib.placeOrder(ib_lib.Stock("AAPL", "SMART", "USD"), ib_lib.LimitOrder("BUY", 1, 100.0))
    await asyncio.wait_for(trade.statusEvent, 5)
    used = trade.order.orderId
    ib.disconnect()
    ib = await connect(ib_sim, client_id=5)
    try:
        assert ib.client.getReqId() > used  # nextValidId continues above ids this client used
    finally:
        ib.disconnect()


async def test_several_clients_at_once(ib_sim: IBSimulator) -> None:
    clients = [await connect(ib_sim, client_id=cid) for cid in (11, 12, 13)]
    try:
        assert sorted(ib_sim.connected_client_ids()) == [11, 12, 13]
        times = await asyncio.gather(*(c.reqCurrentTimeAsync() for c in clients))
        assert len({t for t in times}) == 1
    finally:
        for c in clients:
            c.disconnect()


async def test_client_id_in_use(ib_sim: IBSimulator, ib_client) -> None:
    raw = await RawClient.open(ib_sim.port)
    await raw.handshake(157, 178, 1)
    fields = await raw.read()
    assert fields[:4] == ["4", "2", "-1", "326"]
    assert await raw.closed()
    assert ib_client.isConnected()  # the original holder of clientId 1 is untouched
    assert await ib_client.reqCurrentTimeAsync()


async def test_client_id_in_use_fault(ib_sim: IBSimulator) -> None:
    ib_sim.mark_client_id_in_use(44)
    raw = await RawClient.open(ib_sim.port)
    await raw.handshake(157, 178, 44)
    assert (await raw.read())[3] == "326"
    assert await raw.closed()
    ib_sim.mark_client_id_in_use(44, False)
    ib = await connect(ib_sim, client_id=44)
    ib.disconnect()


@pytest.mark.parametrize("lo,hi,expected", [(157, 178, 178), (157, 176, 176), (100, 157, 157), (100, 225, 178)])
async def test_raw_handshake_versions(ib_sim: IBSimulator, lo: int, hi: int, expected: int) -> None:
    raw = await RawClient.open(ib_sim.port)
    try:
        assert await raw.handshake(lo, hi, 60 + lo % 7) == expected
        seen, valid = await raw.read_until(9)
        assert ["15", "1", "DU1234567"] in seen
        assert valid[:2] == ["9", "1"]
    finally:
        raw.close()


async def test_no_common_version_is_refused(ib_sim: IBSimulator) -> None:
    raw = await RawClient.open(ib_sim.port)
    text = b"v100..150"
    raw.send_raw(b"API\0" + len(text).to_bytes(4, "big") + text)
    assert await raw.closed()


async def test_version_157_sends_integer_sizes(ib_sim: IBSimulator) -> None:
    raw = await RawClient.open(ib_sim.port)
    try:
        await raw.handshake(100, 157, 71)
        await raw.read_until(9)
        contract = ["0", "BTC", "CRYPTO", "", "0.0", "", "", "PAXOS", "", "USD", "", ""]
        raw.send(9, 8, 1, *contract, 0, "", "")
        details = (await raw.read_until(10))[1]
        assert details[1] == "8"  # versioned below 164
        raw.send(1, 11, 2, *contract, 0, "", 1, 0, "")
        _, tick = await raw.read_until(1)
        assert "." not in tick[5]  # size field is an integer below 163
        raw.send(20, 3, *contract, 0, "", "1 hour", "1 D", 0, "TRADES", 1, 0, "")
        _, hist = await raw.read_until(17)
        assert int(hist[4]) > 0 and "." not in hist[5 + 5]
    finally:
        raw.close()


async def test_garbage_is_logged_and_closed_without_disturbing_others(ib_sim: IBSimulator, ib_client) -> None:
    bad = await RawClient.open(ib_sim.port)
    bad.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await bad.closed()
    worse = await RawClient.open(ib_sim.port)
    await worse.handshake(157, 178, 90)
    await worse.read_until(9)
    worse.send_raw(b"\x00\x00\x00\x05abc\xff\x00")  # not a number, not UTF-8
    assert await worse.closed()
    huge = await RawClient.open(ib_sim.port)
    await huge.handshake(157, 178, 91)
    huge.send_raw(b"\x7f\xff\xff\xff")
    assert await huge.closed()
    half = await RawClient.open(ib_sim.port)
    await half.handshake(157, 178, 92)
    half.send_raw(b"\x00\x00\x01\x00" + b"49\x00")  # promises 256 bytes, sends 3, then hangs up
    half.close()
    assert await ib_client.reqCurrentTimeAsync()
    await eventually(lambda: ib_sim.connected_client_ids() == [1])
