"""The runtime wired into both adapters, end to end against the simulators.

- OHLCV through the on-disk cache: a re-run asks the simulator nothing (counted *at the simulator*),
  results equal an uncached download, DST is crossed, the forming bar is served but never stored, and
  a month is resampled from cached daily bars where the broker has no monthly bars.
- Equity in the base currency: an AUD-based IB account holding a USD stock, checked against a figure
  computed by hand from the simulator's own quotes (and against the simulator's NetLiquidation).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from ccxt_ibkr.sim.testing import running_simulator
from normalization.runtime.factory import config_from_env, create_exchange

from .conftest import Counter, runner_classes, sim_sleep

H = 3_600_000
D = 24 * H
NY = ZoneInfo("America/New_York")


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp() * 1000)


def ib_exchange(sim: Any, monkeypatch: pytest.MonkeyPatch, client_id: int, **options: Any) -> Any:
    """The sync IB exchange a runner gets from ``create_exchange()`` with ``ACTIVE_EXCHANGE=IB``."""
    monkeypatch.setenv("ACTIVE_EXCHANGE", "IB")
    monkeypatch.setenv("IB_PORT", str(sim.port))
    monkeypatch.setenv("IB_CLIENT_ID", str(client_id))
    sync_cls, async_cls = runner_classes("IB")
    config = config_from_env("IB")
    config["options"].update(options)
    return create_exchange(config=config, registry={"IB": (sync_cls, async_cls)})


def capital_exchange(sim: Any, tmp_path: Path, **options: Any) -> Any:
    """The sync Capital.com exchange from the factory, on the simulator's clock."""
    env = {"CAPITAL_API_KEY": sim.api_key, "CAPITAL_LOGIN": sim.identifier, "CAPITAL_PASSWORD": sim.password}
    config = config_from_env("CAPITAL", env)
    config["options"].update(
        {
            "baseUrl": sim.base_url,
            "clock": sim.clock.now,
            "sleep": sim_sleep(sim),
            "journal": str(tmp_path / "capital-journal.sqlite"),
            **options,
        }
    )
    sync_cls, async_cls = runner_classes("CAPITAL")
    return create_exchange("CAPITAL", config, registry={"CAPITAL": (sync_cls, async_cls)})


# -- IB ---------------------------------------------------------------------------------------------


def test_ib_backtest_rerun_asks_the_simulator_nothing_across_dst(
    ib_sim: Any, ib_history_counter: Counter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # 2025-02-24 .. 2025-03-21 spans the US change to summer time on 2025-03-09.
    since, until = ms(2025, 2, 24), ms(2025, 3, 21) - 1
    plain = ib_exchange(ib_sim, monkeypatch, 61)
    try:
        direct = plain.fetch_ohlcv("AAPL/USD", "1h", since, None, {"until": until})
    finally:
        plain.close()
    cached = ib_exchange(ib_sim, monkeypatch, 62, ohlcvCache=str(tmp_path / "bars"))
    try:
        ib_history_counter.reset()
        first = cached.fetch_ohlcv("AAPL/USD", "1h", since, None, {"until": until})
        assert first == direct
        assert ib_history_counter.calls == 1  # 25 days: one "1 M" request, the minimum
        ib_history_counter.reset()
        again = cached.fetch_ohlcv("AAPL/USD", "1h", since, None, {"until": until})
        assert again == first and ib_history_counter.calls == 0
        # the 09:30 New York bar is 14:30 UTC in winter and 13:30 UTC in summer
        stamps = {dt.datetime.fromtimestamp(r[0] / 1000, dt.timezone.utc) for r in first}
        opens = {s.strftime("%H:%M") for s in stamps if s.astimezone(NY).strftime("%H:%M") == "09:00"}
        assert opens == {"14:00", "13:00"}
        assert not {s.astimezone(NY).isoweekday() for s in stamps} & {6, 7}  # no weekend bars, no weekend asks
        ib_history_counter.reset()
        wider = cached.fetch_ohlcv("AAPL/USD", "1h", since - 7 * D, None, {"until": until})
        assert wider[-len(first) :] == first and ib_history_counter.calls == 1  # only the new week is asked
    finally:
        cached.close()


def test_ib_long_download_uses_one_request_per_broker_maximum(
    ib_sim: Any, ib_history_counter: Counter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """IB serves at most "1 M" of hourly bars per request: 100 days is 4 requests, not one more."""
    ex = ib_exchange(ib_sim, monkeypatch, 65, ohlcvCache=str(tmp_path / "bars"))
    try:
        rows = ex.fetch_ohlcv("AAPL/USD", "1h", ms(2025, 1, 1), None, {"until": ms(2025, 4, 11) - 1})
        assert len(rows) > 1000 and ib_history_counter.calls == 4
    finally:
        ex.close()


def test_ib_forming_bar_is_served_but_not_stored(
    ib_sim: Any, ib_history_counter: Counter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ib_sim.advance(30 * 60)  # 14:30 UTC: the 14:00 bar is half built
    ex = ib_exchange(ib_sim, monkeypatch, 63, ohlcvCache=str(tmp_path / "bars"))
    try:
        rows = ex.fetch_ohlcv("AAPL/USD", "1h", None, 5)
        assert len(rows) == 5 and rows[-1][0] == ms(2025, 6, 10, 14)
        stored = pd.concat(pd.read_parquet(p) for p in (tmp_path / "bars").rglob("*.parquet"))
        assert int(stored["timestamp"].max()) == ms(2025, 6, 10, 13)
        ib_sim.advance(45 * 60)  # 15:15: the 14:00 bar is final now
        later = ex.fetch_ohlcv("AAPL/USD", "1h", None, 5)
        final = [r for r in later if r[0] == ms(2025, 6, 10, 14)][0]
        assert final[5] > rows[-1][5]  # the complete bar, not the half one from the cache
    finally:
        ex.close()


def test_ib_aud_account_reports_equity_in_aud_from_ib_quotes(monkeypatch: pytest.MonkeyPatch) -> None:
    with running_simulator(base_currency="AUD", cash={"AUD": 1_000_000.0}) as sim:
        monkeypatch.setenv("IB_BASE_CURRENCY", "AUD")
        ex = ib_exchange(sim, monkeypatch, 64)
        try:
            order = ex.create_order("AAPL/USD", "market", "buy", 100)
            assert order["filled"] == 100
            balance = ex.fetch_balance()
            equity_usd = ex.fetch_equity("USD")
        finally:
            ex.close()
        # By hand, from the simulator's own quotes at the (frozen) simulated time:
        aapl, audusd = sim.quote("AAPL", "STK", "USD"), sim.quote("AUD", "CASH", "USD")
        aapl_mid, aud_in_usd = (aapl.bid + aapl.ask) / 2, (audusd.bid + audusd.ask) / 2
        usd_cash = sim.ledger.cash["USD"]  # minus 100 shares and the commission
        expected = 1_000_000.0 + (usd_cash + 100 * aapl_mid) / aud_in_usd
        info = balance["info"]
        assert info["baseCurrency"] == "AUD"
        assert info["equity"] == pytest.approx(expected, abs=0.05)  # IB reports cash to the cent
        assert info["holdingsValue"] == pytest.approx(100 * aapl_mid / aud_in_usd, rel=1e-9)
        assert info["fxRates"]["USD"] == pytest.approx(1 / aud_in_usd, rel=1e-9)
        assert info["unrealizedPnl"] is not None  # PnL of the position, in AUD
        # ... and the same as what the simulated TWS itself reports as the account's NetLiquidation
        net_liq = sim.ledger.summary(sim.mark)["NetLiquidation"]
        assert info["equity"] == pytest.approx(net_liq, abs=0.05)
        assert equity_usd == pytest.approx(expected * aud_in_usd, abs=0.05)
        assert balance["AAPL"]["total"] == 100  # the ccxt part is what it was


# -- Capital.com ------------------------------------------------------------------------------------


@pytest.mark.capital_sim(rate_limits="sim")
def test_capital_rerun_asks_nothing_and_builds_months_from_cached_days(
    capital_sim: Any, capital_price_counter: Counter, tmp_path: Path
) -> None:
    ex = capital_exchange(capital_sim, tmp_path, ohlcvCache=str(tmp_path / "bars"))
    try:
        since, until = ms(2023, 7, 1), ms(2024, 2, 1) - 1
        capital_price_counter.reset()
        months = ex.fetch_ohlcv("EUR/USD", "1M", since, None, {"until": until})
        assert [r[0] for r in months] == [ms(2023, m, 1) for m in range(7, 13)] + [ms(2024, 1, 1)]
        assert capital_price_counter.calls >= 1
        capital_price_counter.reset()
        days = ex.fetch_ohlcv("EUR/USD", "1d", ms(2023, 9, 1), None, {"until": ms(2023, 10, 1) - 1})
        assert capital_price_counter.calls == 0  # the daily bars the months were built from, already here
        september = [r for r in months if r[0] == ms(2023, 9, 1)][0]
        assert september[1] == days[0][1] and september[4] == days[-1][4]
        assert september[2] == max(r[2] for r in days) and september[3] == min(r[3] for r in days)
        assert ex.fetch_ohlcv("EUR/USD", "1M", since, None, {"until": until}) == months
        assert capital_price_counter.calls == 0
        files = sorted(p.name for p in (tmp_path / "bars").rglob("*.parquet"))
        assert files == ["1d_MID.parquet"]  # months are never stored, so never stored half built
    finally:
        ex.close()


@pytest.mark.capital_sim(rate_limits="sim")
def test_capital_equity_in_another_currency(capital_sim: Any, tmp_path: Path) -> None:
    ex = capital_exchange(capital_sim, tmp_path)
    try:
        ex.create_order("AAPL/USD", "market", "buy", 3)
        balance = ex.fetch_balance()
        equity_eur = ex.fetch_equity("EUR")
    finally:
        ex.close()
    eurusd = capital_sim.quote("EURUSD")
    mid = (eurusd.bid + eurusd.offer) / 2  # what the adapter's ticker shows, from the simulator's own quote
    assert balance["info"]["baseCurrency"] == "USD"
    assert balance["info"]["equity"] == pytest.approx(balance["USD"]["total"])  # balance = deposit + PnL
    assert balance["info"]["unrealizedPnl"] == pytest.approx(balance["info"]["balance"]["profitLoss"], abs=0.01)
    assert equity_eur == pytest.approx(balance["USD"]["total"] / mid, rel=1e-9)
    capital_sim.check_books()
