"""IB's published commission schedules (normalization.fees) against IB's own worked examples.

Source: interactivebrokers.com pricing pages (stocks: US / Europe / Asia-Pacific; spot currencies),
see the module docstring of normalization.fees.
"""

from __future__ import annotations

import pytest

from normalization import fees


def _market(sec_type: str, currency: str, base: str, quote: str, exchange: str = "", size: float | None = None):
    return {"symbol": f"{base}/{quote}", "base": base, "quote": quote, "contractSize": size,
            "info": {"secType": sec_type, "currency": currency, "primaryExchange": exchange}}


AAPL = _market("STK", "USD", "AAPL", "USD", "NASDAQ")


@pytest.mark.parametrize("shares, price, cost", [(100, 25.0, 1.00), (1000, 25.0, 5.00), (1000, 0.25, 2.50)])
def test_us_fixed_examples(shares: float, price: float, cost: float) -> None:
    quote = fees.ib_quote(AAPL, shares, price)
    assert quote["cost"] == pytest.approx(cost) and quote["currency"] == "USD"
    assert quote["rate"] == pytest.approx(cost / (shares * price))


def test_us_tiered_plan_and_volume() -> None:
    options = {"commissions": {"plan": "tiered", "monthlyVolume": {"STK:USD": 5_000_000}}}
    assert fees.ib_quote(AAPL, 1000, 50.0, options={"commissions": {"plan": "tiered"}})["cost"] == pytest.approx(3.5)
    assert fees.ib_quote(AAPL, 1000, 50.0, options=options)["cost"] == pytest.approx(1.5)
    assert fees.ib_quote(AAPL, 10, 50.0, options={"commissions": {"plan": "tiered"}})["cost"] == pytest.approx(0.35)


def test_other_venues() -> None:
    assert fees.ib_quote(_market("STK", "AUD", "BHP", "AUD", "ASX"), 400, 50.0)["cost"] == pytest.approx(16.0)
    assert fees.ib_quote(_market("STK", "AUD", "WBC", "AUD", "ASX"), 10, 28.0)["cost"] == pytest.approx(6.0)
    assert fees.ib_quote(_market("STK", "EUR", "SAP", "EUR", "IBIS"), 100, 40.0)["cost"] == pytest.approx(3.0)
    assert fees.ib_quote(_market("STK", "EUR", "SAP", "EUR", "IBIS"), 1000, 190.0)["cost"] == pytest.approx(95.0)
    tiered_eu = fees.ib_quote(_market("STK", "EUR", "SAP", "EUR", "IBIS"), 1000, 190.0,
                              options={"commissions": {"plan": "tiered"}})
    assert tiered_eu["cost"] == pytest.approx(29.0)  # the tiered plan's EUR 29 maximum
    assert fees.ib_quote(_market("STK", "CAD", "RY", "CAD", "TSE"), 100, 150.0)["cost"] == pytest.approx(1.0)
    assert fees.ib_quote(_market("FUT", "USD", "ES", "USD", size=50.0), 3, 5500.0)["cost"] == pytest.approx(2.55)


def test_fx_minimum_in_usd() -> None:
    eurusd = _market("CASH", "USD", "EUR", "USD")
    assert fees.ib_quote(eurusd, 100_000, 1.08)["cost"] == pytest.approx(2.16)  # 0.2 bp of USD 108,000
    assert fees.ib_quote(eurusd, 20_000, 1.08)["cost"] == pytest.approx(2.0)
    usdjpy = _market("CASH", "JPY", "USD", "JPY")
    assert fees.ib_quote(usdjpy, 20_000, 150.0)["cost"] == pytest.approx(300.0)  # USD 2.00 in JPY
    eurgbp = _market("CASH", "GBP", "EUR", "GBP")
    quote = fees.ib_quote(eurgbp, 20_000, 0.85, params={"usdRate": 0.79})
    assert quote["cost"] == pytest.approx(1.58) and quote["info"]["minimumInQuoteApproximate"] is False
    assert fees.ib_quote(eurgbp, 20_000, 0.85)["info"]["minimumInQuoteApproximate"] is True


def test_venue_overrides_and_unknown_venues() -> None:
    options = {"commissions": {"venues": {"STK:EUR": {"minimum": 4.0, "fraction": 0.001},
                                          "STK:GBP": {"fraction": 0.0005, "minimum": 3.0}}}}
    assert fees.ib_quote(_market("STK", "EUR", "SAP", "EUR"), 100, 40.0, options=options)["cost"] == pytest.approx(4.0)
    assert fees.ib_quote(_market("STK", "GBP", "VOD", "GBP"), 10, 1.0, options=options)["cost"] == pytest.approx(3.0)
    with pytest.raises(LookupError):
        fees.ib_quote(_market("STK", "GBP", "VOD", "GBP"), 10, 1.0)
    with pytest.raises(ValueError, match="unknown field"):
        fees.ib_schedule_table(overrides={"STK:USD": {"perShare": 1}})
    with pytest.raises(ValueError, match="plan"):
        fees.ib_schedule_table("bundled")


def test_capital_is_spread_only_with_funding_apart() -> None:
    market = {"symbol": "AAPL/USD", "quote": "USD", "info": {"instrument": {"overnightFee": {
        "longRate": -0.0215, "shortRate": -0.0063}}}}
    quote = fees.capital_quote(market, "buy", 10, 200.0)
    assert (quote["cost"], quote["rate"], quote["currency"]) == (0.0, 0.0, "USD")
    assert quote["info"]["overnightFunding"]["perNight"] == pytest.approx(-0.43)
