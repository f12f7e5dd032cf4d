"""Pre-trade limits: the rules and their configuration, pure (no I/O), the same at both brokers.

Why here: a fat-finger order must be refused the same way at IB and at Capital.com, before it is
journaled or sent, with a message that names the rule and the numbers -- and a bot must be able to
close what it holds whatever the limits say. The adapters gather what a rule needs (a quote, the
position, counts) only when that rule is configured (:mod:`normalization.runtime.risk`); this module
decides.

Configuration (``options['risk']`` and the environment) is read by
:func:`normalization.runtime.risk.risk_limits`; a bad value fails at construction, naming the key.

The keys (all optional):

========================  ==========================================================================
``maxOrderNotional``      amount x price x contract size, in the market's quote currency; a number
                          or ``{"AAPL/USD": 20000, "*": 50000}`` (``*``: every other symbol)
``notionalCurrency``      the currency ``maxOrderNotional`` is written in (``"USD"``): an order quoted
                          in another is converted at the broker's FX quote, refused if none is known
``maxOrderAmount``        the order's amount (same forms)
``maxPositionAmount``     the absolute position after the order fills (same forms)
``allowSymbols``          only these symbols may be traded
``denySymbols``           these symbols may not be traded
``allowTypes``            instrument kinds: ccxt's ``market['type']`` (spot, swap, future, option) or
                          the instrument's own kind (stock, forex, crypto, cfd, future, option, index,
                          commodity)
``maxOpenOrders``         open orders at the broker (the new one included)
``maxOrdersPerDay``       orders placed since midnight UTC (the new one included), from the journal
``priceCollarPct``        a limit price further than this percentage from the last quote is refused
========================  ==========================================================================

Closing comes first: an order that only reduces a position (``reduceOnly``, or opposite to the
position and no larger than it) passes every rule but the price collar. Exposure, symbol, kind and
count limits exist to stop a bot from adding risk; refusing the way out would add it. The collar
still applies: a closing limit price far from the market is a typing error all the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import ccxt

__all__ = [
    "RISK_KEYS",
    "OrderFacts",
    "PerSymbol",
    "RiskLimits",
    "collar_breach",
    "exposure_breaches",
    "instrument_kinds",
    "last_quote",
    "touch_price",
    "needs",
    "reduces",
    "refusal",
]

#: The option keys, to the attribute of :class:`RiskLimits` and how a value is read.
RISK_KEYS: Mapping[str, tuple[str, str]] = {
    "maxOrderNotional": ("max_order_notional", "per_symbol"),
    "maxOrderAmount": ("max_order_amount", "per_symbol"),
    "maxPositionAmount": ("max_position_amount", "per_symbol"),
    "allowSymbols": ("allow_symbols", "names"),
    "denySymbols": ("deny_symbols", "names"),
    "allowTypes": ("allow_types", "kinds"),
    "maxOpenOrders": ("max_open_orders", "count"),
    "maxOrdersPerDay": ("max_orders_per_day", "count"),
    "priceCollarPct": ("price_collar_pct", "percent"),
    "notionalCurrency": ("notional_currency", "currency"),
}

#: Instrument kinds a market may carry, from the broker's own classification (IB secType, Capital
#: instrument type); every Capital.com market is also a ``cfd``.
IB_KINDS = {"STK": "stock", "CASH": "forex", "CRYPTO": "crypto", "CFD": "cfd", "FUT": "future", "OPT": "option",
            "IND": "index", "CMDTY": "commodity", "FOP": "option", "WAR": "option", "BOND": "bond", "FUND": "fund"}
CAPITAL_KINDS = {"SHARES": "stock", "CURRENCIES": "forex", "CRYPTOCURRENCIES": "crypto", "INDICES": "index",
                 "COMMODITIES": "commodity"}
KINDS = frozenset({"spot", "swap", "future", "option", "stock", "forex", "crypto", "cfd", "index", "commodity",
                   "bond", "fund"})


@dataclass(frozen=True)
class PerSymbol:
    """A limit for every symbol (``default``) with per-symbol overrides."""

    default: float | None = None
    by_symbol: Mapping[str, float] = field(default_factory=dict)

    def get(self, symbol: str) -> float | None:
        return self.by_symbol.get(symbol, self.default)


@dataclass(frozen=True)
class RiskLimits:
    """The configured limits; ``None`` / empty means "no such limit"."""

    max_order_notional: PerSymbol | None = None
    max_order_amount: PerSymbol | None = None
    max_position_amount: PerSymbol | None = None
    allow_symbols: frozenset[str] | None = None
    deny_symbols: frozenset[str] = frozenset()
    allow_types: frozenset[str] | None = None
    max_open_orders: int | None = None
    max_orders_per_day: int | None = None
    price_collar_pct: float | None = None
    notional_currency: str | None = None  # maxOrderNotional's currency; None: each market's quote currency

    @property
    def active(self) -> bool:
        """Whether any rule is configured (if not, the order path asks nothing more)."""
        return any(getattr(self, f.name) for f in fields(self))

    def as_options(self) -> dict[str, Any]:
        """The limits spelled as ``options['risk']`` (for logs and the CLI)."""
        out: dict[str, Any] = {}
        for key, (attr, _) in RISK_KEYS.items():
            value = getattr(self, attr)
            if not value:
                continue
            if isinstance(value, PerSymbol):
                value = value.default if not value.by_symbol else {
                    **value.by_symbol, **({"*": value.default} if value.default is not None else {})}
            elif isinstance(value, frozenset):
                value = sorted(value)
            out[key] = value
        return out


@dataclass(frozen=True)
class OrderFacts:
    """What the rules look at. ``None`` means "not gathered": a rule that needs it fails closed.

    ``price``: the limit price (or the trigger of a stop), ``None`` for a market order; ``quote``:
    the last traded price (or mid) when gathered; ``position``: the signed position in the market;
    ``open_orders`` / ``orders_today``: the counts *before* this order; ``notional_rate``: the
    broker's FX rate from the quote currency to ``notionalCurrency`` when that differs.
    """

    symbol: str
    kinds: frozenset[str]
    side: str
    amount: float
    price: float | None = None
    limit_price: float | None = None
    contract_size: float = 1.0
    quote_currency: str | None = None
    reduce_only: bool = False
    notional_rate: float | None = None  # units of ``notionalCurrency`` per unit of the quote currency
    quote: float | None = None
    position: float | None = None
    open_orders: int | None = None
    orders_today: int | None = None


# ------------------------------------------------------------------------------------ markets


def instrument_kinds(market: Mapping[str, Any]) -> frozenset[str]:
    """Every kind ``allowTypes`` may name for ``market``: its ccxt type and the broker's own kind."""
    kinds = {str(market.get("type") or "spot")}
    info = market.get("info") or {}
    sec_type = info.get("secType") if isinstance(info, Mapping) else None
    if sec_type:
        kinds.add(IB_KINDS.get(str(sec_type).upper(), str(sec_type).lower()))
    instrument = info.get("instrument") if isinstance(info, Mapping) else None
    if isinstance(instrument, Mapping) and instrument.get("type"):
        kinds.add("cfd")
        kinds.add(CAPITAL_KINDS.get(str(instrument["type"]).upper(), str(instrument["type"]).lower()))
    return frozenset(kinds)


def last_quote(ticker: Mapping[str, Any]) -> float | None:
    """The price a limit is collared against and a market order valued at: last, else close, else mid."""
    for name in ("last", "close"):
        value = ticker.get(name)
        if value:
            return float(value)
    bid, ask = ticker.get("bid"), ticker.get("ask")
    return (float(bid) + float(ask)) / 2 if bid and ask else None


def touch_price(ticker: Mapping[str, Any], side: str) -> float | None:
    """What a market order would fill at now: the ask for a buy, the bid for a sell (else the last quote)."""
    touch = ticker.get("ask") if side == "buy" else ticker.get("bid")
    return float(touch) if touch else last_quote(ticker)


# ------------------------------------------------------------------------------------ the rules


def reduces(facts: OrderFacts) -> bool:
    """Whether the order only takes risk off: reduce-only, or against the position and within it."""
    if facts.reduce_only:
        return True
    held = facts.position
    if not held:
        return False
    against = (held > 0 and facts.side == "sell") or (held < 0 and facts.side == "buy")
    return against and facts.amount <= abs(held) * (1 + 1e-12)


def converts(limits: RiskLimits, facts: OrderFacts) -> bool:
    """Whether the order's notional must be converted to ``notionalCurrency`` (its quote currency differs)."""
    target = limits.notional_currency
    return target is not None and (facts.quote_currency or "").upper() != target


def needs(limits: RiskLimits, facts: OrderFacts) -> set[str]:
    """The facts the configured rules need for this order: ``quote``, ``position``, ``open_orders``,
    ``orders_today``, ``fx``. (``position`` is asked lazily, see :func:`exposure_breaches`.)"""
    wanted: set[str] = set()
    if limits.price_collar_pct is not None and facts.limit_price is not None:
        wanted.add("quote")
    notional = limits.max_order_notional is not None and limits.max_order_notional.get(facts.symbol) is not None
    if notional and facts.price is None:
        wanted.add("quote")
    if notional and converts(limits, facts):
        wanted.add("fx")
    if limits.max_position_amount is not None and limits.max_position_amount.get(facts.symbol) is not None:
        wanted.add("position")
    if limits.max_open_orders is not None:
        wanted.add("open_orders")
    if limits.max_orders_per_day is not None:
        wanted.add("orders_today")
    return wanted


def collar_breach(limits: RiskLimits, facts: OrderFacts) -> str | None:
    """``priceCollarPct``: the limit price against the last quote (applies to closing orders too)."""
    pct = limits.price_collar_pct
    if pct is None or facts.limit_price is None:
        return None
    if not facts.quote:
        return (f"priceCollarPct {pct:g}%: no quote for {facts.symbol} to compare the limit price "
                f"{facts.limit_price:g} with")
    away = abs(facts.limit_price - facts.quote) / facts.quote * 100
    if away > pct + 1e-9:
        return (f"priceCollarPct: limit price {facts.limit_price:g} is {away:.2f}% from the last quote "
                f"{facts.quote:g} for {facts.symbol}, more than {pct:g}%")
    return None


def exposure_breaches(limits: RiskLimits, facts: OrderFacts) -> list[str]:
    """Every rule but the collar that the order breaks, as messages naming the rule and the numbers.

    The caller lets an order through anyway when it :func:`reduces` the position (asking the position
    only then, when no rule needs it otherwise)."""
    out: list[str] = []
    symbol = facts.symbol
    if limits.allow_symbols is not None and symbol not in limits.allow_symbols:
        out.append(f"allowSymbols: {symbol} is not in the allowed symbols ({', '.join(sorted(limits.allow_symbols))})")
    if symbol in limits.deny_symbols:
        out.append(f"denySymbols: {symbol} is denied")
    if limits.allow_types is not None and not facts.kinds & limits.allow_types:
        out.append(f"allowTypes: {symbol} is {'/'.join(sorted(facts.kinds))}, not one of the allowed kinds "
                   f"({', '.join(sorted(limits.allow_types))})")
    cap = limits.max_order_amount.get(symbol) if limits.max_order_amount else None
    if cap is not None and facts.amount > cap * (1 + 1e-12):
        out.append(f"maxOrderAmount: amount {facts.amount:g} {symbol} exceeds the limit {cap:g}")
    cap = limits.max_order_notional.get(symbol) if limits.max_order_notional else None
    if cap is not None:
        out.extend(_notional_breach(limits, facts, cap))
    cap = limits.max_position_amount.get(symbol) if limits.max_position_amount else None
    if cap is not None:
        if facts.position is None:
            out.append(f"maxPositionAmount {cap:g}: the position in {symbol} is unknown")
        else:
            after = facts.position + (facts.amount if facts.side == "buy" else -facts.amount)
            if abs(after) > cap * (1 + 1e-12):
                out.append(f"maxPositionAmount: position {facts.position:g} {symbol} would become {after:g}, beyond "
                           f"the limit {cap:g}")
    if limits.max_open_orders is not None:
        count = facts.open_orders
        if count is None or count + 1 > limits.max_open_orders:
            shown = "unknown" if count is None else str(count)
            out.append(f"maxOpenOrders: {shown} open orders, one more would exceed the limit {limits.max_open_orders}")
    if limits.max_orders_per_day is not None:
        count = facts.orders_today
        if count is None or count + 1 > limits.max_orders_per_day:
            shown = "unknown" if count is None else str(count)
            out.append(f"maxOrdersPerDay: {shown} orders placed today (UTC), one more would exceed the limit "
                       f"{limits.max_orders_per_day}")
    return out


def _notional_breach(limits: RiskLimits, facts: OrderFacts, cap: float) -> list[str]:
    """``maxOrderNotional``: the order's value in the limit's currency (converted when it names one)."""
    symbol = facts.symbol
    price = facts.price if facts.price is not None else facts.quote
    quote_ccy = facts.quote_currency or ""
    target = limits.notional_currency if converts(limits, facts) else None
    ccy = f" {target or quote_ccy}" if (target or quote_ccy) else ""
    if not price:
        return [f"maxOrderNotional {cap:g}{ccy}: no price or quote for {symbol} to value the order with"]
    notional = facts.amount * price * (facts.contract_size or 1.0)
    how = f"{facts.amount:g} x {price:g}"
    if target is not None:
        if not facts.notional_rate:
            return [f"maxOrderNotional {cap:g}{ccy}: no FX rate from {quote_ccy or '?'} to {target} known to value "
                    "the order with"]
        notional *= facts.notional_rate
        how += f" {quote_ccy} at {facts.notional_rate:g} {target}/{quote_ccy}"
    if notional > cap * (1 + 1e-12):
        return [f"maxOrderNotional: notional {notional:,.2f}{ccy} ({how}) exceeds the limit {cap:,.2f}{ccy} "
                f"for {symbol}"]
    return []


def refusal(exchange_id: str, facts: OrderFacts, breaches: list[str]) -> ccxt.InvalidOrder:
    """The exception for a refused order: every rule broken, with its numbers."""
    what = f"{facts.side} {facts.amount:g} {facts.symbol}"
    return ccxt.InvalidOrder(f"{exchange_id} risk limit refused {what}: " + "; ".join(breaches))
