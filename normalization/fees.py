"""Commissions as ccxt fee dicts.

IB charges per share with a floor and a cap, which ccxt cannot express as a rate; the adapter
reports IB's real commission reports in ``fee``, and these functions are the same rules the
simulator charges and the dry-run pricer quotes. Capital.com CFDs are spread-only: fee 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccxt.base.types import Fee


def fee_dict(cost: float | None, currency: str | None, rate: float | None = None) -> Fee:
    fee: Fee = {"cost": cost, "currency": currency}
    if rate is not None:
        fee["rate"] = rate
    return fee


@dataclass(frozen=True)
class FixedRate:
    """IB Pro fixed pricing for US stocks (USD 0.005/share, min 1.00, max 1% of value)."""

    per_share: float = 0.005
    minimum: float = 1.00
    max_fraction: float = 0.01
    currency: str = "USD"

    def commission(self, quantity: float, price: float) -> float:
        """Floor first, then cap: a tiny order pays at most 1% of its value, as IB documents."""
        quantity, value = abs(quantity), abs(quantity * price)
        if quantity == 0:
            return 0.0
        cost = max(quantity * self.per_share, self.minimum)
        return round(min(cost, value * self.max_fraction), 8)


#: IB Pro tiered US stock schedule: (monthly shares up to, USD per share).
IB_TIERS: tuple[tuple[float, float], ...] = (
    (300_000, 0.0035),
    (3_000_000, 0.0020),
    (20_000_000, 0.0015),
    (100_000_000, 0.0010),
    (float("inf"), 0.0005),
)


@dataclass(frozen=True)
class Tiered:
    """IB Pro tiered pricing (broker commission only; exchange and regulatory fees excluded)."""

    minimum: float = 0.35
    max_fraction: float = 0.01
    currency: str = "USD"

    def per_share(self, monthly_volume: float) -> float:
        for ceiling, rate in IB_TIERS:
            if monthly_volume < ceiling:
                return rate
        return IB_TIERS[-1][1]

    def commission(self, quantity: float, price: float, monthly_volume: float = 0.0) -> float:
        quantity, value = abs(quantity), abs(quantity * price)
        if quantity == 0:
            return 0.0
        cost = max(quantity * self.per_share(monthly_volume), self.minimum)
        return round(min(cost, value * self.max_fraction), 8)


@dataclass(frozen=True)
class ValueRate:
    """Commission as a fraction of trade value with a minimum: IB FX (0.2 bp, min USD 2) and crypto."""

    fraction: float
    minimum: float
    currency: str = "USD"

    def commission(self, quantity: float, price: float) -> float:
        value = abs(quantity * price)
        if value == 0:
            return 0.0
        return round(max(value * self.fraction, self.minimum), 8)


@dataclass(frozen=True)
class PerContract:
    """Futures: a flat amount per contract (IB ES: USD 0.85)."""

    per_contract: float = 0.85
    currency: str = "USD"

    def commission(self, quantity: float, price: float) -> float:
        return round(abs(quantity) * self.per_contract, 8)


IB_FIXED = FixedRate()
IB_TIERED = Tiered()
IB_FX = ValueRate(fraction=0.00002, minimum=2.0)
IB_CRYPTO = ValueRate(fraction=0.0018, minimum=1.75)
IB_FUTURES = PerContract()


def ib_schedule(sec_type: str) -> FixedRate | ValueRate | PerContract:
    """The fixed-rate schedule the simulator charges and the dry-run pricer quotes."""
    return {"CASH": IB_FX, "CRYPTO": IB_CRYPTO, "FUT": IB_FUTURES}.get(sec_type.upper(), IB_FIXED)


def ib_fixed_fee(quantity: float, price: float, sec_type: str = "STK") -> Fee:
    schedule = ib_schedule(sec_type)
    return fee_dict(schedule.commission(quantity, price), schedule.currency)


def capital_fee(currency: str) -> Fee:
    """Capital.com CFDs: the cost is in the spread, so each fill's fee is zero."""
    return fee_dict(0.0, currency, 0.0)
