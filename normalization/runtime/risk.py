"""Pre-trade limits on the order path: configuration from options / environment, and the gate.

The rules themselves are pure (:mod:`normalization.risk`); this module reads them from
``options['risk']`` and the environment and, for each order, gathers only the facts the configured
rules need -- a quote, the position, the open-order count, today's order count -- through the
adapter's :class:`RiskSources`, then raises ``InvalidOrder`` naming every rule broken. With no limit
configured the gate returns at once: the order path asks nothing more.

Environment: ``CCXT_BROKERS_RISK`` holds the ``options['risk']`` dict as JSON, and one variable per
key overrides it (``CCXT_BROKERS_RISK_MAX_ORDER_NOTIONAL=50000``, ``CCXT_BROKERS_RISK_DENY_SYMBOLS=
GME/USD,AMC/USD``, per-symbol maps as JSON). ``options['risk']`` wins key by key.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from normalization.arguments import check_number
from normalization.risk import (
    KINDS,
    RISK_KEYS,
    OrderFacts,
    PerSymbol,
    RiskLimits,
    collar_breach,
    exposure_breaches,
    instrument_kinds,
    needs,
    reduces,
    refusal,
)
from normalization.runtime.factory import ConfigError

__all__ = ["RISK_ENV", "RISK_ENV_PREFIX", "DAY_MS", "RiskGate", "RiskSources", "risk_limits"]

RISK_ENV = "CCXT_BROKERS_RISK"
RISK_ENV_PREFIX = "CCXT_BROKERS_RISK_"
DAY_MS = 86_400_000



def risk_limits(exchange_id: str, option: Any = None, env: Mapping[str, str] | None = None) -> RiskLimits:
    """The limits of ``options['risk']`` merged over the environment's, checked (``ConfigError``)."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = dict(_from_env(exchange_id, env))
    if option is not None:
        if not isinstance(option, Mapping):
            raise ConfigError(f"{exchange_id} options['risk'] must be a dict of limits such as "
                              f"{{'maxOrderNotional': 50000}}, got {type(option).__name__}")
        merged.update(option)
    values: dict[str, Any] = {}
    for key, raw in merged.items():
        if key not in RISK_KEYS:
            raise ConfigError(f"{exchange_id} risk limit {key!r} is unknown; the keys are {', '.join(RISK_KEYS)}")
        if raw is None:
            continue
        attr, kind = RISK_KEYS[key]
        values[attr] = _READERS[kind](exchange_id, key, raw)
    limits = RiskLimits(**values)
    if limits.notional_currency is not None and limits.max_order_notional is None:
        raise ConfigError(f"{exchange_id} risk: notionalCurrency names the currency of maxOrderNotional; set "
                          "maxOrderNotional too")
    clash = (limits.allow_symbols or frozenset()) & limits.deny_symbols
    if clash:
        raise ConfigError(f"{exchange_id} risk: {', '.join(sorted(clash))} both allowed (allowSymbols) and denied "
                          "(denySymbols)")
    return limits


def _from_env(exchange_id: str, env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    text = (env.get(RISK_ENV) or "").strip()
    if text:
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{RISK_ENV} is not JSON ({exc}); expected e.g. "
                              '\'{"maxOrderNotional": 50000}\'') from None
        if not isinstance(parsed, dict):
            raise ConfigError(f"{RISK_ENV} must hold a JSON object of limits, got {type(parsed).__name__}")
        out.update(parsed)
    by_name = {_env_name(key): key for key in RISK_KEYS}
    for name, value in env.items():
        if not name.startswith(RISK_ENV_PREFIX) or not str(value).strip():
            continue
        key = by_name.get(name)
        if key is None:
            raise ConfigError(f"{name} is not a risk limit; use one of {', '.join(sorted(by_name))}")
        out[key] = _env_value(name, str(value).strip(), RISK_KEYS[key][1])
    return out


def _env_name(key: str) -> str:
    snake = "".join("_" + c if c.isupper() else c.upper() for c in key)
    return RISK_ENV_PREFIX + snake


def _env_value(name: str, text: str, kind: str) -> Any:
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{name}={text!r} is not JSON ({exc})") from None
    if kind in ("names", "kinds"):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _number(exchange_id: str, key: str, raw: Any) -> float:
    return check_number(raw, f"risk limit {key}", exchange_id, error=ConfigError)


def _per_symbol(exchange_id: str, key: str, raw: Any) -> PerSymbol:
    if isinstance(raw, Mapping):
        default = None
        by_symbol: dict[str, float] = {}
        for symbol, value in raw.items():
            if not isinstance(symbol, str) or not symbol.strip():
                raise ConfigError(f"{exchange_id} risk limit {key} keys must be symbols such as 'AAPL/USD' or '*'")
            number = _number(exchange_id, f"{key}[{symbol!r}]", value)
            if symbol.strip() == "*":
                default = number
            else:
                by_symbol[symbol.strip()] = number
        return PerSymbol(default, by_symbol)
    return PerSymbol(_number(exchange_id, key, raw))


def _names(exchange_id: str, key: str, raw: Any) -> frozenset[str]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        raise ConfigError(f"{exchange_id} risk limit {key} must be a list of symbols, got {raw!r}")
    names = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{exchange_id} risk limit {key} must hold symbols such as 'AAPL/USD', got {item!r}")
        names.append(item.strip())
    return frozenset(names)


def _kinds(exchange_id: str, key: str, raw: Any) -> frozenset[str]:
    kinds = frozenset(name.lower() for name in _names(exchange_id, key, raw))
    unknown = sorted(kinds - KINDS)
    if unknown:
        raise ConfigError(f"{exchange_id} risk limit {key}: unknown instrument kind {unknown[0]!r}; use "
                          f"{', '.join(sorted(KINDS))}")
    return kinds


def _count(exchange_id: str, key: str, raw: Any) -> int:
    number = _number(exchange_id, key, raw)
    if not number.is_integer():
        raise ConfigError(f"{exchange_id} risk limit {key} must be a whole number, got {raw!r}")
    return int(number)


def _percent(exchange_id: str, key: str, raw: Any) -> float:
    number = _number(exchange_id, key, raw)
    if number >= 100:
        raise ConfigError(f"{exchange_id} risk limit {key} is a percentage below 100, got {raw!r}")
    return number


def _currency(exchange_id: str, key: str, raw: Any) -> str:
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if not (2 <= len(code) <= 10 and code.isascii() and code.isalnum()):
        raise ConfigError(f"{exchange_id} risk limit {key} must be a currency code such as 'USD', got {raw!r}")
    return code


_READERS = {"per_symbol": _per_symbol, "names": _names, "kinds": _kinds, "count": _count, "percent": _percent,
            "currency": _currency}


# ------------------------------------------------------------------------------------ the gate


class RiskSources(Protocol):
    """What an adapter answers for the gate; each is asked only when a configured rule needs it."""

    async def risk_quote(self, market: Mapping[str, Any]) -> float | None:
        """The last traded price (else the bid/ask mid) of ``market``."""

    async def risk_position(self, market: Mapping[str, Any]) -> float:
        """The signed position held in ``market`` (0 when flat)."""

    async def risk_open_orders(self) -> int:
        """How many orders are open at the broker for this account."""

    async def risk_orders_today(self) -> int:
        """How many orders were placed since midnight UTC (the journal counts them)."""

    # Optional: ``risk_fx_rate(base, quote)`` -> units of ``quote`` per ``base`` or None. Without it the
    # gate converts with the adapter's own tickers (normalization.runtime.equity.fx_for: direct, inverse
    # or through USD, cached for options['fxTtl']).


class RiskGate:
    """The configured limits of one exchange object, checked before an order is journaled or sent."""

    def __init__(self, exchange_id: str, limits: RiskLimits) -> None:
        self.exchange_id = exchange_id
        self.limits = limits

    @classmethod
    def from_options(cls, exchange_id: str, options: Mapping[str, Any],
                     env: Mapping[str, str] | None = None) -> RiskGate:
        return cls(exchange_id, risk_limits(exchange_id, options.get("risk"), env))

    @property
    def active(self) -> bool:
        return self.limits.active

    async def check(self, sources: RiskSources, market: Mapping[str, Any], side: str, amount: float,
                    price: float | None, limit_price: float | None, reduce_only: bool, *,
                    edit: bool = False) -> None:
        """Refuse the order (``InvalidOrder`` naming the rules and numbers) or return.

        ``price``: the price the order is valued at (its limit, else its trigger), ``None`` for a market
        order (the quote values it then); ``limit_price``: the limit the collar compares. ``edit``: an
        order already placed, changed: its new size and price meet the exposure limits and the collar,
        while the symbol, kind and count rules, met when it was placed, are not asked again."""
        limits = self.limits
        if edit:
            limits = replace(limits, allow_symbols=None, deny_symbols=frozenset(), allow_types=None,
                             max_open_orders=None, max_orders_per_day=None)
        if not limits.active:
            return
        facts = OrderFacts(
            symbol=market["symbol"], kinds=instrument_kinds(market), side=side, amount=amount, price=price,
            limit_price=limit_price, contract_size=float(market.get("contractSize") or 1.0),
            quote_currency=market.get("quote"), reduce_only=reduce_only,
        )
        facts = await self._gather(sources, market, facts, needs(limits, facts))
        breaches = exposure_breaches(limits, facts)
        if breaches and not reduce_only and facts.position is None:
            # Only now is the position worth asking for: a closing order passes whatever it breaks.
            facts = replace(facts, position=await sources.risk_position(market))
            breaches = exposure_breaches(limits, facts)
        if breaches and reduces(facts):
            breaches = []
        collar = collar_breach(limits, facts)
        if collar is not None:
            breaches.insert(0, collar)
        if breaches:
            raise refusal(self.exchange_id, facts, breaches)

    async def _gather(self, sources: RiskSources, market: Mapping[str, Any], facts: OrderFacts,
                      wanted: set[str]) -> OrderFacts:
        if not wanted:
            return facts
        asks: dict[str, Any] = {}
        if "quote" in wanted:
            asks["quote"] = sources.risk_quote(market)
        if "position" in wanted:
            asks["position"] = sources.risk_position(market)
        if "open_orders" in wanted:
            asks["open_orders"] = sources.risk_open_orders()
        if "orders_today" in wanted:
            asks["orders_today"] = sources.risk_orders_today()
        if "fx" in wanted:
            target = str(self.limits.notional_currency)
            asks["notional_rate"] = _fx_rate(sources, str(facts.quote_currency or "").upper(), target)
        return replace(facts, **dict(zip(asks, await asyncio.gather(*asks.values()), strict=True)))


async def _fx_rate(sources: Any, base: str, quote: str) -> float | None:
    """The broker's rate from ``base`` to ``quote`` for maxOrderNotional, ``None`` when none is known (the
    order is then refused, naming the pair: a limit that cannot be evaluated fails closed)."""
    from normalization.runtime.fx import FxRateUnavailable

    if not base:
        return None
    ask = getattr(sources, "risk_fx_rate", None)
    try:
        if ask is not None:
            return await ask(base, quote)
        from normalization.runtime.equity import fx_for

        return await fx_for(sources).rate(base, quote)
    except FxRateUnavailable:
        return None


def start_of_day_ms(now_ms: int) -> int:
    """Midnight UTC of ``now_ms``: maxOrdersPerDay counts from there."""
    return now_ms - now_ms % DAY_MS
