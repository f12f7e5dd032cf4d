"""Pure pieces of the simulator: wire codec, fee schedule, ledger invariants, sessions."""

from __future__ import annotations

import asyncio
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccxt_ibkr._ib import ib_lib
from ccxt_ibkr.sim import IBSimulator, Ledger, default_instruments, order_fee
from ccxt_ibkr.sim.catalogue import Catalogue
from ccxt_ibkr.sim.server import DEFAULT_START
from ccxt_ibkr.sim.testing import connect, wait_until
from ccxt_ibkr.sim.wire import (
    UNSET_DOUBLE,
    Fields,
    ProtocolError,
    encode_fields,
    fmt_size,
    read_frame,
    split_payload,
)

CATALOGUE = Catalogue(default_instruments(DEFAULT_START))
AAPL = CATALOGUE.find("AAPL")
ES = [i for i in CATALOGUE if i.sec_type == "FUT"][1]
EUR = CATALOGUE.find("EUR", "CASH", "USD")
BTC = CATALOGUE.find("BTC", "CRYPTO")


def test_encode_and_split_round_trip() -> None:
    frame = encode_fields([3, "AAPL", 1.5, True, None, 10])
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert split_payload(frame[4:]) == ["3", "AAPL", "1.5", "1", "", "10"]


def test_sizes_depend_on_version() -> None:
    assert fmt_size(100.0, 157) == "100" and fmt_size(0.5, 178) == "0.5" and fmt_size(100.0, 178) == "100"


def test_fields_reader_accepts_both_unset_spellings() -> None:
    f = Fields(["", "1.7976931348623157e+308", "2147483647", "1", "x"])
    assert f.float() is None and f.float() is None and f.int(7) == 7 and f.bool() is True
    with pytest.raises(ProtocolError):
        f.int()
    assert UNSET_DOUBLE > 1e300


async def test_read_frame_rejects_oversized() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolError):
        await read_frame(reader)


def test_fee_schedule() -> None:
    assert order_fee(AAPL, 10, 1_900) == 1.0  # minimum
    assert order_fee(AAPL, 1_000, 190_000) == 5.0  # per share
    assert order_fee(CATALOGUE.find("KO"), 1, 65) == 0.65  # 1% cap below the minimum
    assert order_fee(ES, 3, 3 * 5500 * 50) == pytest.approx(2.55)
    assert order_fee(EUR, 20_000, 21_600) == 2.0
    assert order_fee(BTC, 1, 60_000) == pytest.approx(108.0)
    # IB's fixed plan (normalization.fees): ASX minimum AUD 6.00 (5.00 is the tiered plan's), Europe no cap
    assert order_fee(CATALOGUE.find("CBA", "STK", "AUD"), 10, 1_200) == 6.0
    assert order_fee(CATALOGUE.find("SAP", "STK", "EUR"), 1_000, 190_000) == pytest.approx(95.0)


fills = st.lists(
    st.tuples(
        st.sampled_from([AAPL, ES, EUR, BTC]),
        st.sampled_from(["BOT", "SLD"]),
        st.integers(min_value=1, max_value=500),
        st.floats(min_value=0.5, max_value=2.0),
    ),
    min_size=1,
    max_size=30,
)


@given(fills)
def test_ledger_adds_up_after_every_fill(sequence) -> None:
    ledger = Ledger()
    for inst, side, qty, scale in sequence:
        if inst is BTC:
            qty = qty / 100
        price = round(inst.start_price * scale / inst.min_tick) * inst.min_tick
        fee = order_fee(inst, qty, qty * price * inst.mult)
        ledger.apply_fill(inst, side, qty, price, fee)
        ledger.check_invariants()
    assert sum(ledger.commissions.values()) > 0


def test_ledger_realized_matches_hand_computation() -> None:
    ledger = Ledger()
    ledger.apply_fill(AAPL, "BOT", 10, 100.0, 1.0)
    result = ledger.apply_fill(AAPL, "SLD", 5, 110.0, 1.0)
    assert result.realized == pytest.approx(5 * 110 - 1 - 5 * 100.1)
    assert ledger.positions[AAPL.con_id].avg_cost == pytest.approx(100.1)


def test_sessions() -> None:
    hours = AAPL.hours
    assert hours.is_open(DEFAULT_START, liquid=True)
    assert not hours.is_open(DEFAULT_START + 6 * 3600, liquid=True)  # 16:00 New York
    assert hours.is_open(DEFAULT_START + 6 * 3600, liquid=False)  # after-hours session
    assert not hours.is_open(DEFAULT_START + 4 * 86400, liquid=False)  # Saturday
    assert BTC.hours.is_open(DEFAULT_START + 4 * 86400, liquid=True)


async def test_async_context_manager_in_the_test_loop() -> None:
    async with IBSimulator(port=0, seed=3) as sim:
        ib = await connect(sim, client_id=9)
        try:
            (aapl,) = await ib.qualifyContractsAsync(ib_lib.Stock("AAPL", "SMART", "USD"))
            ticker = ib.reqMktData(aapl)
            await wait_until(ib, lambda: ticker.bid == ticker.bid and ticker.bid > 0)
            sim.advance(300)  # runs inline on this loop
            quote = sim.quote("AAPL", "STK", "USD")
            await wait_until(ib, lambda: ticker.bid == quote.bid)
        finally:
            ib.disconnect()
