"""Commissions as ccxt fee dicts: IB's published schedules, Capital.com's spread-only pricing.

IB charges per share (or per value) with a floor and a cap per order, which ccxt cannot express
as one rate, so the schedule is data here and the arithmetic one function. The adapter quotes
``calculate_fee`` / dry runs from it, the simulator charges each fill from it (cumulative per
order, as IB applies minimums per order), so an estimate and the charge agree by construction;
real fills still carry IB's own commission reports in ``fee``.

Figures: IBKR Pro, as published on interactivebrokers.com (pricing/commissions-stocks.php,
commissions-stocks-europe.php, the Asia-Pacific stock page, the spot-currency page ``f=49818``),
checked December 2026. Only IB's own commission: exchange, clearing and regulatory fees that the
tiered plan passes through are not included (``info`` of a quote says so).

- US stocks, fixed: USD 0.005/share, min 1.00, max 1% of trade value. Tiered: 0.0035 / 0.0020 /
  0.0015 / 0.0010 / 0.0005 per share by monthly shares (300k, 3M, 20M, 100M), min 0.35, max 1%.
- Canada, fixed: CAD 0.01/share, min 1.00, max 0.5%. Tiered: 0.008 / 0.005 / 0.004 / 0.003, min 1.00.
- Europe (IB SmartRouting), fixed: 0.05% of value, min EUR 3.00, no maximum. Tiered: 0.05% / 0.03% /
  0.02% / 0.015% by monthly EUR value (50M, 100M, 500M), min 1.25, max 29.00.
- Australia (ASX), fixed: 0.08% of value, min AUD 6.00. Tiered: 0.08% / 0.05% / 0.03% / 0.025% /
  0.015% by monthly AUD value (3M, 30M, 100M, 300M), min 5.00 / 4.00 / 3.00 / 2.00 / 1.00.
- Spot FX (IDEALPRO): 0.20 bp of trade value, min USD 2.00 (or its equivalent); tiered 0.15 / 0.10 /
  0.08 bp above USD 1bn / 2bn / 5bn a month with min 1.50 / 1.25 / 1.00.
- Crypto (PAXOS): 0.18% of value, min USD 1.75, max 1%. Futures (CME): USD 0.85 per contract.

A venue is looked up as ``SECTYPE:EXCHANGE``, then ``SECTYPE:CURRENCY``, then ``SECTYPE``; options
may replace or add any entry (:func:`ib_schedule_table`). Capital.com CFDs: no commission, the cost
is in the spread; holding overnight costs funding, reported apart (never folded into a fill's fee).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ccxt.base.types import Fee

FIXED = "fixed"
TIERED = "tiered"
PLANS = (FIXED, TIERED)


def fee_dict(cost: float | None, currency: str | None, rate: float | None = None) -> Fee:
    fee: Fee = {"cost": cost, "currency": currency}
    if rate is not None:
        fee["rate"] = rate
    return fee


@dataclass(frozen=True)
class Tier:
    """One volume band: up to ``ceiling`` of monthly volume, ``rate`` (per unit or of value) and a minimum."""

    ceiling: float
    rate: float
    minimum: float


@dataclass(frozen=True)
class Schedule:
    """One venue's commission rule, per order.

    ``per_unit`` (per share / contract) or ``fraction`` (of trade value), then the floor
    ``minimum``, then the caps ``max_fraction`` (of value) and ``maximum``: IB floors first, so a
    tiny order pays at most its cap. ``currency`` ``None`` charges in the instrument's currency.
    ``usd_minimum``: the floor is stated in USD and charged in the instrument's currency (IB FX,
    "USD 2.00 or equivalent"), so the caller passes ``usd_rate`` (instrument currency per USD).
    ``tiers`` replace the rate and the floor by monthly volume (``tier_basis``: ``units`` or ``value``).
    """

    per_unit: float = 0.0
    fraction: float = 0.0
    minimum: float = 0.0
    max_fraction: float | None = None
    maximum: float | None = None
    currency: str | None = None
    usd_minimum: bool = False
    tiers: tuple[Tier, ...] = ()
    tier_basis: str = "units"

    def band(self, monthly_volume: float) -> tuple[float, float]:
        """(rate, minimum) at this month's volume so far; the plain rate without tiers."""
        for tier in self.tiers:
            if monthly_volume < tier.ceiling:
                return tier.rate, tier.minimum
        if self.tiers:
            return self.tiers[-1].rate, self.tiers[-1].minimum
        return (self.per_unit or self.fraction), self.minimum

    def commission(self, quantity: float, price: float, multiplier: float = 1.0,
                   monthly_volume: float = 0.0, usd_rate: float = 1.0) -> float:
        return self.for_value(quantity, quantity * price * multiplier, monthly_volume, usd_rate)

    def for_value(self, quantity: float, value: float, monthly_volume: float = 0.0, usd_rate: float = 1.0) -> float:
        """The commission of an order of ``quantity`` units worth ``value`` (instrument currency)."""
        quantity, value = abs(quantity), abs(value)
        if quantity == 0:
            return 0.0
        rate, minimum = self.band(monthly_volume)
        cost = quantity * rate if self.per_unit else value * rate
        cost = max(cost, minimum * (usd_rate if self.usd_minimum else 1.0))
        if self.max_fraction is not None:
            cost = min(cost, value * self.max_fraction)
        if self.maximum is not None:
            cost = min(cost, self.maximum)
        return round(cost, 8)

    def describe(self) -> dict[str, Any]:
        """The schedule as plain data (``fetch_trading_fees``' ``info``)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tiers"}
        if self.tiers:
            out["tiers"] = [{"upTo": t.ceiling, "rate": t.rate, "minimum": t.minimum} for t in self.tiers]
        return out


INF = float("inf")

IB_FIXED_SCHEDULES: dict[str, Schedule] = {
    "STK:USD": Schedule(per_unit=0.005, minimum=1.00, max_fraction=0.01),
    "STK:CAD": Schedule(per_unit=0.01, minimum=1.00, max_fraction=0.005),
    "STK:EUR": Schedule(fraction=0.0005, minimum=3.00),
    "STK:AUD": Schedule(fraction=0.0008, minimum=6.00),
    "CASH": Schedule(fraction=0.00002, minimum=2.00, usd_minimum=True),
    "CRYPTO": Schedule(fraction=0.0018, minimum=1.75, max_fraction=0.01),
    "FUT": Schedule(per_unit=0.85),
}

IB_TIERED_SCHEDULES: dict[str, Schedule] = {
    "STK:USD": Schedule(per_unit=0.0035, minimum=0.35, max_fraction=0.01, tiers=(
        Tier(300_000, 0.0035, 0.35), Tier(3_000_000, 0.0020, 0.35), Tier(20_000_000, 0.0015, 0.35),
        Tier(100_000_000, 0.0010, 0.35), Tier(INF, 0.0005, 0.35))),
    "STK:CAD": Schedule(per_unit=0.008, minimum=1.00, max_fraction=0.005, tiers=(
        Tier(300_000, 0.008, 1.00), Tier(3_000_000, 0.005, 1.00), Tier(20_000_000, 0.004, 1.00),
        Tier(INF, 0.003, 1.00))),
    "STK:EUR": Schedule(fraction=0.0005, minimum=1.25, maximum=29.00, tier_basis="value", tiers=(
        Tier(50_000_000, 0.0005, 1.25), Tier(100_000_000, 0.0003, 1.25), Tier(500_000_000, 0.0002, 1.25),
        Tier(INF, 0.00015, 1.25))),
    "STK:AUD": Schedule(fraction=0.0008, minimum=5.00, tier_basis="value", tiers=(
        Tier(3_000_000, 0.0008, 5.00), Tier(30_000_000, 0.0005, 4.00), Tier(100_000_000, 0.0003, 3.00),
        Tier(300_000_000, 0.00025, 2.00), Tier(INF, 0.00015, 1.00))),
    "CASH": Schedule(fraction=0.00002, minimum=2.00, usd_minimum=True, tier_basis="value", tiers=(
        Tier(1e9, 0.00002, 2.00), Tier(2e9, 0.000015, 1.50), Tier(5e9, 0.00001, 1.25), Tier(INF, 0.000008, 1.00))),
    "CRYPTO": IB_FIXED_SCHEDULES["CRYPTO"],
    "FUT": IB_FIXED_SCHEDULES["FUT"],
}

IB_SCHEDULES: dict[str, dict[str, Schedule]] = {FIXED: IB_FIXED_SCHEDULES, TIERED: IB_TIERED_SCHEDULES}


def ib_schedule_table(plan: str = FIXED, overrides: Mapping[str, Any] | None = None) -> dict[str, Schedule]:
    """The venue table of ``plan``, with ``overrides`` applied: ``{"STK:EUR": {"minimum": 4.0}}``
    changes fields of an entry (or adds one from scratch: ``{"STK:GBP": {"fraction": 0.0005, ...}}``)."""
    if plan not in IB_SCHEDULES:
        raise ValueError(f"IB commission plan must be one of {PLANS}, not {plan!r}")
    table = dict(IB_SCHEDULES[plan])
    for key, change in (overrides or {}).items():
        if isinstance(change, Schedule):
            table[key.upper()] = change
            continue
        if not isinstance(change, Mapping):
            raise ValueError(f"fee override {key!r} must be a dict of Schedule fields, not {change!r}")
        known = {f.name for f in fields(Schedule)} - {"tiers"}
        unknown = set(change) - known
        if unknown:
            raise ValueError(f"fee override {key!r}: unknown field(s) {sorted(unknown)}; use {sorted(known)}")
        table[key.upper()] = replace(table.get(key.upper(), Schedule()), **change)
    return table


def venue_keys(sec_type: str, currency: str = "", exchange: str = "") -> list[str]:
    """Most specific first: ``STK:IBIS``, ``STK:EUR``, ``STK``."""
    sec = sec_type.upper()
    specific = (f"{sec}:{exchange.upper()}" if exchange else "", f"{sec}:{currency.upper()}" if currency else "")
    return [k for k in (*specific, sec) if k]


def find_schedule(table: Mapping[str, Schedule], sec_type: str, currency: str = "",
                  exchange: str = "") -> Schedule | None:
    for key in venue_keys(sec_type, currency, exchange):
        if key in table:
            return table[key]
    return None


def ib_commission(sec_type: str, currency: str, quantity: float, price: float, *, multiplier: float = 1.0,
                  exchange: str = "", plan: str = FIXED, monthly_volume: float = 0.0, usd_rate: float = 1.0,
                  table: Mapping[str, Schedule] | None = None) -> Fee:
    """IB's commission for one order of ``quantity`` at ``price``, as a ccxt fee dict (``rate``: of value).

    Raises ``LookupError`` for a venue without a schedule: an estimate of 0 would read as "free"."""
    schedule = find_schedule(table if table is not None else IB_SCHEDULES[plan], sec_type, currency, exchange)
    if schedule is None:
        raise LookupError(f"no IB commission schedule for {':'.join(venue_keys(sec_type, currency, exchange)[:1])}")
    cost = schedule.commission(quantity, price, multiplier, monthly_volume, usd_rate)
    value = abs(quantity * price * multiplier)
    return fee_dict(cost, schedule.currency or currency, cost / value if value else None)


# -- the names earlier code and tests use -----------------------------------------------------------

IB_FIXED = IB_FIXED_SCHEDULES["STK:USD"]
IB_TIERED = IB_TIERED_SCHEDULES["STK:USD"]
IB_FX = IB_FIXED_SCHEDULES["CASH"]
IB_CRYPTO = IB_FIXED_SCHEDULES["CRYPTO"]
IB_FUTURES = IB_FIXED_SCHEDULES["FUT"]


def ib_schedule(sec_type: str, currency: str = "USD") -> Schedule:
    """The fixed-plan schedule of a security type (US stocks for an unknown one)."""
    return find_schedule(IB_FIXED_SCHEDULES, sec_type, currency) or IB_FIXED


def ib_fixed_fee(quantity: float, price: float, sec_type: str = "STK") -> Fee:
    return fee_dict(ib_schedule(sec_type).commission(quantity, price), "USD")


def capital_fee(currency: str) -> Fee:
    """Capital.com CFDs: the cost is in the spread, so each fill's fee is zero."""
    return fee_dict(0.0, currency, 0.0)


# -- quotes for a ccxt market (calculate_fee, fetch_trading_fees, dry runs) --------------------------


def ib_commission_options(options: Mapping[str, Any] | None) -> tuple[str, Mapping[str, Schedule], Any]:
    """``options['commissions']`` of the IB adapter: ``{"plan": "fixed"|"tiered", "monthlyVolume": N
    or {"STK:USD": N, ...}, "venues": {"STK:EUR": {"minimum": 4.0}, ...}}`` -> (plan, table, volume)."""
    config = dict((options or {}).get("commissions") or {})
    plan = str(config.get("plan", FIXED)).lower()
    return plan, ib_schedule_table(plan, config.get("venues")), config.get("monthlyVolume", 0.0)


def _usd_rate(market: Mapping[str, Any], price: float, given: Any) -> tuple[float, bool]:
    """Instrument currency per USD for a USD-stated minimum; (rate, exact)."""
    if given is not None:
        return float(given), True
    if market.get("quote") == "USD":
        return 1.0, True
    if market.get("base") == "USD" and price:
        return float(price), True  # USD/JPY at 150: 150 JPY per USD
    return 1.0, False


def ib_quote(market: Mapping[str, Any], amount: float, price: float, takerOrMaker: str = "taker",
             options: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``calculate_fee`` for an IB market: IB's commission for one order, from its schedule.

    ``params``: ``usdRate`` (quote currency per USD, for an FX cross's USD 2.00 minimum),
    ``monthlyVolume`` (tiered plan). Raises ``LookupError`` for a venue without a schedule."""
    params = params or {}
    info = market.get("info") or {}
    sec_type = str(info.get("secType") or "STK")
    currency = str(info.get("currency") or market.get("quote") or "")
    exchange = str(info.get("primaryExchange") or info.get("exchange") or "")
    plan, table, volume = ib_commission_options(options)
    schedule = find_schedule(table, sec_type, currency, exchange)
    if schedule is None:
        raise LookupError(f"no IB commission schedule for {market.get('symbol')} ({sec_type} {currency} {exchange})")
    key = next(k for k in venue_keys(sec_type, currency, exchange) if table.get(k) is schedule)
    monthly = params.get("monthlyVolume", volume.get(key, 0.0) if isinstance(volume, Mapping) else volume)
    multiplier = float(market.get("contractSize") or 1.0)
    rate_usd, exact = _usd_rate(market, price, params.get("usdRate"))
    value = abs(float(amount) * float(price) * multiplier)
    cost = schedule.for_value(float(amount), value, float(monthly or 0.0), rate_usd)
    return {
        "type": takerOrMaker,
        "currency": schedule.currency or currency,
        "rate": cost / value if value else None,
        "cost": cost,
        "info": {"plan": plan, "venue": key, "schedule": schedule.describe(), "value": value,
                 "excludes": "exchange, clearing and regulatory fees" if plan == TIERED else None,
                 "minimumInQuoteApproximate": schedule.usd_minimum and not exact},
    }


def capital_quote(market: Mapping[str, Any], side: str, amount: float, price: float,
                  takerOrMaker: str = "taker") -> dict[str, Any]:
    """``calculate_fee`` for a Capital.com CFD: no commission (the spread is the cost); overnight
    funding is shown apart, per night held, from the market's ``overnightFee`` rates (percent of
    the position's value per day, negative = paid)."""
    details = market.get("info") or {}
    overnight = (details.get("instrument") or {}).get("overnightFee") or details.get("overnightFee") or {}
    value = abs(float(amount) * float(price) * float(market.get("contractSize") or 1.0))
    rate = overnight.get("longRate" if side == "buy" else "shortRate")
    funding = None
    if rate is not None:
        funding = {"ratePercentPerDay": rate, "perNight": round(value * float(rate) / 100.0, 8),
                   "currency": market.get("quote")}
    return {
        "type": takerOrMaker,
        "currency": market.get("quote"),
        "rate": 0.0,
        "cost": 0.0,
        "info": {"pricing": "spread", "value": value, "overnightFunding": funding},
    }
