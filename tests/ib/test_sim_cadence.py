"""Quote cadence: quotes change between whole minutes at the venue's pace, within the path's range."""

from __future__ import annotations

from ccxt_ibkr.sim import IBSimulator
from ccxt_ibkr.sim.marketdata import MarketData
from ccxt_ibkr.sim.server import DEFAULT_START


def _mids(market: MarketData, inst, start: float, step: float, count: int) -> list[float]:
    return [market.mid(inst, start + i * step) for i in range(count)]


def test_stock_quotes_move_every_250_ms_within_the_minute_range() -> None:
    sim = IBSimulator(port=0)
    inst = sim.instrument("NVDA")
    t0 = DEFAULT_START + 600  # 10:10 New York
    mids = _mids(sim.market, inst, t0, 0.25, 240)
    here, there = sim.market.path(inst).price_at(t0), sim.market.path(inst).price_at(t0 + 60)
    assert mids[0] == here and sim.market.mid(inst, t0 + 60) == there
    assert all(min(here, there) <= m <= max(here, there) for m in mids)
    assert len(set(mids)) > 3 or here == there
    assert all(abs(m / inst.min_tick - round(m / inst.min_tick)) < 1e-9 for m in mids)
    # Within one 250 ms step nothing changes.
    assert sim.market.mid(inst, t0 + 10.0) == sim.market.mid(inst, t0 + 10.2)


def test_fx_quotes_move_faster_and_cadence_is_configurable() -> None:
    fast = IBSimulator(port=0)
    slow = IBSimulator(port=0, cadence={"CASH": 0.0, "STK": 0.0})
    eur = fast.instrument("EUR", "CASH", "USD")
    t0 = DEFAULT_START + 600
    assert len(set(_mids(fast.market, eur, t0 + 20, 0.005, 400))) > 1
    assert len(set(_mids(slow.market, eur, t0 + 1, 0.5, 100))) == 1  # once a minute, the path's own resolution


def test_real_time_ticker_idles_without_subscriptions() -> None:
    sim = IBSimulator(port=0, real_time=True, tick_interval=1.0)
    assert sim._tick_period() == 1.0  # nobody subscribed: one cheap wake-up a second
