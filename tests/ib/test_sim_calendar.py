"""Sessions from the real exchange calendars (exchange_calendars): bars, hours and held orders.

Dates used: Monday 2025-06-09 (ordinary), Thanksgiving 2025-11-27 (NYSE closed) and the
following Friday (NYSE half day, close 13:00 New York).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("ibapi")

from ibapi.order import Order  # noqa: E402

from ccxt_ibkr.sim import IBSimulator  # noqa: E402

from .ibapi_driver import IbapiApp, stock  # noqa: E402

NY = ZoneInfo("America/New_York")
#: Wednesday 2025-12-03 15:00 UTC: the whole Thanksgiving week is history.
LATER = dt.datetime(2025, 12, 3, 15, tzinfo=dt.timezone.utc).timestamp()


def _ny(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=NY).timestamp()


@pytest.fixture(scope="module")
def sim() -> Iterator[IBSimulator]:
    with IBSimulator(port=0, start=LATER) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def app(sim: IBSimulator) -> Iterator[IbapiApp]:
    client = IbapiApp().start(sim.port, client_id=5)
    yield client
    client.stop()


def _bars(app: IbapiApp, req_id: int, contract, end: str, duration: str, size: str, rth: int, fmt: int = 1):
    mark = app.mark()
    app.reqHistoricalData(req_id, contract, end, duration, size, "TRADES", rth, fmt, False, [])
    done = app.wait_for(lambda c: c.name in {"historicalDataEnd", "error"} and c.args[0] == req_id, after=mark)
    assert done.name == "historicalDataEnd", done
    return [c.args[1] for c in app.since(mark, "historicalData") if c.args[0] == req_id]


def test_daily_bar_is_the_regular_session_of_its_minute_bars(app: IbapiApp) -> None:
    day = _bars(app, 1, stock("NVDA"), "20250610 00:00:00 US/Eastern", "1 D", "1 day", 0)
    assert [b.date for b in day] == ["20250609"]
    minutes = _bars(app, 2, stock("NVDA"), "20250609 16:00:00 US/Eastern", "23400 S", "1 min", 1)
    assert minutes[0].date.startswith("20250609 09:30:00") and minutes[-1].date.startswith("20250609 15:59:00")
    assert len(minutes) == 390
    bar = day[0]
    assert bar.open == minutes[0].open and bar.close == minutes[-1].close
    assert bar.high == max(m.high for m in minutes) and bar.low == min(m.low for m in minutes)
    assert bar.volume == sum(m.volume for m in minutes)


def test_rth_hourly_bars_start_at_the_open(app: IbapiApp) -> None:
    bars = _bars(app, 3, stock("AAPL"), "20250609 16:00:00 US/Eastern", "1 D", "1 hour", 1)
    times = [b.date.split()[1] for b in bars]
    assert times == ["09:30:00", "10:00:00", "11:00:00", "12:00:00", "13:00:00", "14:00:00", "15:00:00"]
    sydney = _bars(app, 4, stock("CBA", "SMART", "AUD"), "20250610 16:00:00 Australia/Sydney", "1 D", "1 hour", 1)
    assert sydney[0].date == "20250610 10:00:00 Australia/Sydney"
    assert sydney[-1].date == "20250610 15:00:00 Australia/Sydney"


def test_holiday_has_no_bars_and_half_day_ends_at_one(app: IbapiApp) -> None:
    days = _bars(app, 5, stock("AAPL"), "20251129 00:00:00 US/Eastern", "5 D", "1 day", 1)
    assert [b.date for b in days] == ["20251124", "20251125", "20251126", "20251128"]
    friday = _bars(app, 6, stock("AAPL"), "20251128 20:00:00 US/Eastern", "1 D", "30 mins", 1)
    assert friday[0].date.split()[1] == "09:30:00" and friday[-1].date.split()[1] == "12:30:00"
    extended = _bars(app, 7, stock("AAPL"), "20251128 20:00:00 US/Eastern", "1 D", "1 hour", 0)
    assert extended[0].date.split()[1] == "04:00:00" and extended[-1].date.split()[1] == "16:00:00"


def test_contract_hours_come_from_the_calendar(sim: IBSimulator, app: IbapiApp) -> None:
    sim_at = _ny("2025-11-26 12:00")
    with IBSimulator(port=0, start=sim_at) as early:
        client = IbapiApp().start(early.port, client_id=6)
        try:
            mark = client.mark()
            client.reqContractDetails(8, stock("AAPL"))
            details = client.wait_for(lambda c: c.name == "contractDetails", after=mark).args[1]
        finally:
            client.stop()
    liquid = details.liquidHours.split(";")
    assert "20251127:CLOSED" in liquid
    assert "20251128:0930-20251128:1300" in liquid
    assert "20251128:0400-20251128:1700" in details.tradingHours.split(";")


def test_order_on_a_holiday_is_held_until_the_next_session() -> None:
    with IBSimulator(port=0, start=_ny("2025-11-27 11:00")) as sim:
        client = IbapiApp().start(sim.port, client_id=7)
        try:
            order = Order()
            order.action = "BUY"
            order.totalQuantity = Decimal(1)
            order.orderType = "MKT"
            mark = client.mark()
            client.reqIds(1)
            order_id = client.wait_for(lambda c: c.name == "nextValidId", after=mark).args[0]
            client.placeOrder(order_id, stock("AAPL"), order)
            warning = client.wait_for(lambda c: c.name == "error" and c.args[0] == order_id, after=mark)
            assert warning.args[2] == 399 and "2025-11-28 09:30:00" in warning.args[3]
            status = client.wait_for(lambda c: c.name == "orderStatus" and c.args[0] == order_id, after=mark)
            assert status.args[1] == "PreSubmitted"
            mark = client.mark()
            sim.set_time(_ny("2025-11-28 09:31"))
            filled = client.wait_for(lambda c: c.name == "orderStatus" and c.args[0] == order_id
                                     and c.args[1] == "Filled", after=mark)
            assert filled.args[2] == Decimal(1)
        finally:
            client.stop()
