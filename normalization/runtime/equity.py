"""Equity and PnL in the account's base currency (or any other), valued with the broker's own quotes.

Why: an IB account whose base currency is AUD and that holds USD stocks must report its equity the way
IB's statement does -- in AUD, converted at IB's FX quotes, not a third party's -- and a runner that
sizes positions or draws an equity curve wants one number in one currency whichever broker it is on.
ccxt's balance has no such number (it lists each currency and each holding separately), so this
module computes it from the balance and adds it to ``balance["info"]``.

How equity is counted (documented because brokers differ):

- **cash**: every balance entry that is a currency (``total - debt``), converted at the broker's FX
  mid through :class:`~normalization.runtime.fx.FxConverter` (cached for ``options["fxTtl"]`` seconds,
  60 by default, so a balance call does not cost an FX request each time; after the TTL the rate is
  refreshed on the next use);
- **holdings**, three models, chosen by the adapter (class attribute ``equity_holdings``):
  ``"market"`` (IB cash equities): the shares were paid for out of cash, so they count at their market
  value, quantity x the broker's mark (the position's ``markPrice``, else the ticker's mid);
  ``"none"``: the account's cash figure is already its equity, positions add nothing;
  ``"pnl"`` (CFDs, Capital.com): a CFD is a margin position, its notional is not cash -- only the
  positions' unrealized PnL counts, on top of the cash the broker reports (Capital: ``deposit``, so
  equity = ``deposit + profitLoss``, the broker's own two figures). Such an adapter names its cash
  (hook ``balance_cash``): the base currencies its balance shows for open CFDs (``EUR`` of an EUR/USD
  CFD) are exposures, never cash;
- **PnL**: the positions' unrealized PnL, each converted from its market's currency.

The adapters use :class:`BaseCurrencyMixin` (first in the bases) or call :func:`enrich_balance` at the
end of their ``fetch_balance``; bots call ``await exchange.fetch_equity("EUR")`` or
:func:`account_equity`. Nothing here imports a broker library.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import ccxt

from ..arguments import check_fetch
from .fx import FxConverter

__all__ = [
    "FIAT_CURRENCIES",
    "HoldingsModel",
    "Valuation",
    "BaseCurrencyMixin",
    "account_equity",
    "account_equity_sync",
    "base_currency_of",
    "enrich_balance",
    "fx_for",
    "mid_price",
    "value_balance",
]

HoldingsModel = Literal["market", "none", "pnl"]

#: Codes that are money even where no market quotes in them (a currency that is only ever a cash
#: balance). Everything that is the quote or settle currency of some market counts as money too.
FIAT_CURRENCIES = frozenset(
    "USD EUR GBP JPY AUD CAD CHF NZD SEK NOK DKK HKD SGD CNH CNY KRW INR MXN ZAR PLN CZK HUF ILS TRY "
    "BRL RUB THB TWD SAR AED".split()
)
_BALANCE_META = frozenset({"info", "free", "used", "total", "debt", "timestamp", "datetime"})
_NOT_LISTED = (ccxt.BadSymbol, ccxt.BadRequest, ccxt.NotSupported, LookupError)

# One FxConverter per exchange instance: its cache is the point.
_FX: weakref.WeakKeyDictionary[Any, FxConverter] = weakref.WeakKeyDictionary()


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def mid_price(ticker: Mapping[str, Any] | None) -> float | None:
    """The mid of bid and ask when both are quoted, else last, else close; ``None`` without a price.

    Mid, because that is what the broker marks positions and converts currencies at (IB's
    NetLiquidation uses it), and because it does not flatter a long or a short side.
    """
    if not ticker:
        return None
    bid, ask = ticker.get("bid"), ticker.get("ask")
    if bid is not None and ask is not None and float(bid) > 0 and float(ask) > 0:
        return (float(bid) + float(ask)) / 2
    for key in ("last", "close"):
        value = ticker.get(key)
        if value is not None and float(value) > 0:
            return float(value)
    return None


def fx_for(exchange: Any) -> FxConverter:
    """The exchange's FX converter, quoting ``BASE/QUOTE`` with the exchange's own ``fetch_ticker``.

    A pair the broker does not list (``BadSymbol`` and friends) is "no such pair" to the converter,
    which then tries the inverse or goes through USD; network errors propagate.
    """
    converter = _FX.get(exchange)
    if converter is None:
        ttl = float((getattr(exchange, "options", None) or {}).get("fxTtl", 60.0))

        async def quote(base: str, quote_ccy: str) -> float | None:
            try:
                ticker = await _maybe(exchange.fetch_ticker(f"{base}/{quote_ccy}"))
            except _NOT_LISTED:
                return None
            return mid_price(ticker)

        converter = FxConverter(quote, ttl_seconds=ttl)
        _FX[exchange] = converter
    return converter


def _money_codes(exchange: Any) -> set[str]:
    codes = set(FIAT_CURRENCIES)
    for market in (getattr(exchange, "markets", None) or {}).values():
        for key in ("quote", "settle"):
            if market.get(key):
                codes.add(str(market[key]))
    return codes


def _amount(entry: Any) -> float:
    if not isinstance(entry, Mapping):
        return 0.0
    total = float(entry.get("total") or 0.0)
    debt = float(entry.get("debt") or 0.0)
    return total - debt


def base_currency_of(exchange: Any, balance: Mapping[str, Any] | None = None) -> str:
    """The account's base currency: ``options["baseCurrency"]``, else the ``currency`` the broker put in
    the balance's ``info``, else the only cash currency held, else USD."""
    options = getattr(exchange, "options", None) or {}
    if options.get("baseCurrency"):
        return str(options["baseCurrency"]).upper()
    info = (balance or {}).get("info")
    if isinstance(info, Mapping):
        for key in ("baseCurrency", "currency"):
            if isinstance(info.get(key), str) and info[key]:
                return info[key].upper()
    money = _money_codes(exchange)
    held = [c for c, e in (balance or {}).items() if c not in _BALANCE_META and c in money and _amount(e)]
    return held[0] if len(held) == 1 else "USD"


def _holding_market(exchange: Any, code: str, base_ccy: str) -> Mapping[str, Any] | None:
    """The market a holding is priced in: its spot market, the one quoted in the base currency first."""
    candidates = [
        m
        for m in (getattr(exchange, "markets", None) or {}).values()
        if m.get("base") == code and not m.get("contract") and m.get("expiry") is None
    ]
    if not candidates:
        return None
    candidates.sort(key=lambda m: (m.get("quote") != base_ccy, str(m.get("symbol"))))
    return candidates[0]


@dataclass
class Valuation:
    """What a balance is worth in ``currency``; every figure is in that currency."""

    currency: str
    cash: float = 0.0
    holdings: float = 0.0
    unrealized_pnl: float | None = None
    equity: float = 0.0
    values: dict[str, float] = field(default_factory=dict)  # per balance code, in `currency`
    rates: dict[str, float] = field(default_factory=dict)  # `currency` per unit of each currency
    unvalued: list[str] = field(default_factory=list)  # holdings without a market price

    def as_info(self) -> dict[str, Any]:
        return {
            "baseCurrency": self.currency,
            "equity": self.equity,
            "cash": self.cash,
            "holdingsValue": self.holdings,
            "unrealizedPnl": self.unrealized_pnl,
            "valuesInBase": dict(self.values),
            "fxRates": dict(self.rates),
            "unvalued": list(self.unvalued),
        }


async def _positions_pnl(
    exchange: Any, positions: Sequence[Mapping[str, Any]], currency: str, fx: FxConverter, rates: dict[str, float]
) -> float:
    total = 0.0
    markets = getattr(exchange, "markets", None) or {}
    for position in positions:
        pnl = position.get("unrealizedPnl")
        if pnl is None:
            continue
        market = markets.get(position.get("symbol")) or {}
        ccy = str(market.get("settle") or market.get("quote") or currency)
        rate = await fx.rate(ccy, currency)
        rates[ccy] = rate
        total += float(pnl) * rate
    return total


async def value_balance(
    exchange: Any,
    balance: Mapping[str, Any],
    currency: str,
    *,
    holdings: HoldingsModel = "market",
    positions: Sequence[Mapping[str, Any]] | None = None,
    unrealized_pnl: float | None = None,
    fx: FxConverter | None = None,
    cash: Mapping[str, float] | None = None,
) -> Valuation:
    """Value a ccxt balance in ``currency`` (see the module docstring for what counts).

    ``positions`` (ccxt positions) supply the marks of holdings and the unrealized PnL; with
    ``holdings="pnl"`` the PnL is the holdings' whole contribution. ``unrealized_pnl`` (already in
    ``currency``) is the broker's own figure where it reports one, and wins over the positions'.
    ``cash`` (per currency) is the broker's own cash where it says which it is: then no balance entry
    counts as cash (a margin account's balance lists CFD exposures under currency codes).
    """
    currency = currency.upper()
    fx = fx or fx_for(exchange)
    money = _money_codes(exchange)
    out = Valuation(currency)
    # The broker's own mark of a position (IB's portfolio marketPrice) costs no request; a ticker
    # snapshot can take IB seconds per instrument, so it is only the fallback.
    marks = {
        str(p["symbol"]): float(p["markPrice"])
        for p in positions or ()
        if p.get("symbol") and p.get("markPrice") is not None and float(p["markPrice"]) > 0
    }
    for code, amount in (cash or {}).items():
        rate = await fx.rate(code, currency)
        out.rates[code] = rate
        out.values[code] = float(amount) * rate
        out.cash += float(amount) * rate
    for code, entry in balance.items():
        if code in _BALANCE_META:
            continue
        amount = _amount(entry)
        if not amount:
            continue
        if cash is not None and (code in money or holdings != "market"):
            continue  # the broker named its cash; the rest are exposures
        if code in money:
            rate = await fx.rate(code, currency)
            out.rates[code] = rate
            out.values[code] = amount * rate
            out.cash += amount * rate
            continue
        if holdings != "market":
            continue
        market = _holding_market(exchange, code, currency)
        price = None
        if market is not None:
            price = marks.get(market["symbol"])
            if price is None:
                price = mid_price(await _maybe(exchange.fetch_ticker(market["symbol"])))
        if market is None or price is None:
            out.unvalued.append(code)
            continue
        quote = str(market.get("quote"))
        rate = await fx.rate(quote, currency)
        out.rates[quote] = rate
        value = amount * price * float(market.get("contractSize") or 1.0) * rate
        out.values[code] = value
        out.holdings += value
    if unrealized_pnl is not None:
        out.unrealized_pnl = float(unrealized_pnl)
    elif positions is not None:
        out.unrealized_pnl = await _positions_pnl(exchange, positions, currency, fx, out.rates)
    pnl_part = (out.unrealized_pnl or 0.0) if holdings == "pnl" else 0.0
    out.equity = out.cash + out.holdings + pnl_part
    return out


async def enrich_balance(
    exchange: Any,
    balance: dict[str, Any],
    *,
    base_currency: str | None = None,
    holdings: HoldingsModel = "market",
    positions: Sequence[Mapping[str, Any]] | None = None,
    unrealized_pnl: float | None = None,
    cash: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Add the base-currency figures to ``balance["info"]`` and return the balance.

    Keys added: ``baseCurrency``, ``equity``, ``cash``, ``holdingsValue``, ``unrealizedPnl``,
    ``valuesInBase`` (per code), ``fxRates`` (base per unit), ``unvalued``. An ``info`` that is not a
    dict (IB's list of account values) is kept under ``info["accountValues"]``.
    """
    base = (base_currency or base_currency_of(exchange, balance)).upper()
    valuation = await value_balance(
        exchange, balance, base, holdings=holdings, positions=positions, unrealized_pnl=unrealized_pnl, cash=cash
    )
    info = balance.get("info")
    if not isinstance(info, dict):
        info = {} if info is None else {"accountValues": info}
    info.update(valuation.as_info())
    balance["info"] = info
    return balance


async def account_equity(exchange: Any, currency: str | None = None) -> float:
    """Equity in ``currency`` (default the account's base): from an enriched balance when the adapter
    provides one, else valued here (holdings at market)."""
    balance = await _maybe(exchange.fetch_balance())
    info = balance.get("info")
    if isinstance(info, Mapping) and info.get("equity") is not None and info.get("baseCurrency"):
        base, equity = str(info["baseCurrency"]), float(info["equity"])
    else:
        base = base_currency_of(exchange, balance)
        equity = (await value_balance(exchange, balance, base)).equity
    target = (currency or base).upper()
    return equity if target == base else await fx_for(exchange).convert(equity, base, target)


def account_equity_sync(exchange: Any, currency: str | None = None) -> float:
    """:func:`account_equity` for a sync ccxt exchange (the adapters' sync face has ``fetch_equity``)."""
    import asyncio

    return asyncio.run(account_equity(exchange, currency))


class BaseCurrencyMixin:
    """First in an adapter's bases: ``fetch_balance`` gains the base-currency figures in ``info``,
    and ``fetch_equity(currency)`` appears on both faces.

    ``equity_holdings``: ``"market"`` (holdings bought with cash, e.g. IB stocks), ``"none"`` (the cash
    figure is already equity: Capital.com) or ``"pnl"`` (CFDs whose cash excludes open PnL).

    Optional adapter hooks, each saving a request or a guess:

    - ``async def account_base_currency(self) -> str | None``: the base currency as the broker reports
      it (``options["baseCurrency"]`` overrides it);
    - ``def balance_unrealized_pnl(self, balance) -> float | None``: the broker's own open PnL from the
      raw balance, in the base currency. Without it, models ``"market"`` and ``"pnl"`` read the
      positions (``fetch_positions``) for marks and PnL; ``"none"`` asks for nothing more;
    - ``def balance_cash(self, balance) -> Mapping[str, float] | None``: the account's cash per currency
      as the broker counts it (Capital: ``deposit``); the balance's other entries are then exposures.

    ``fetch_balance({"equity": False})`` skips all of it. The model is read from the adapter's own
    ``equity_holdings`` attribute (default ``"market"``), so an adapter class can declare it even though
    the mixin comes first in the composed class.
    """

    async def fetch_balance(self, params: dict[str, Any] = {}) -> dict[str, Any]:
        _, _, _, params = check_fetch(getattr(self, "id", "exchange"), "fetch_balance", params=params)
        params = dict(params)
        wanted = params.pop("equity", True) is not False
        balance = await super().fetch_balance(params)  # type: ignore[misc]
        if not wanted:
            return balance
        exchange: Any = self
        base = None
        if not (exchange.options or {}).get("baseCurrency"):
            hook = getattr(exchange, "account_base_currency", None)
            base = await _maybe(hook()) if callable(hook) else None
        positions = pnl = None
        pnl_hook = getattr(exchange, "balance_unrealized_pnl", None)
        if callable(pnl_hook):
            pnl = pnl_hook(balance)
        cash_hook = getattr(exchange, "balance_cash", None)
        cash = cash_hook(balance) if callable(cash_hook) else None
        holdings: HoldingsModel = getattr(exchange, "equity_holdings", "market")
        if holdings != "none" and pnl is None and (getattr(exchange, "has", {}) or {}).get("fetchPositions"):
            positions = await exchange.fetch_positions()
        return await enrich_balance(
            exchange,
            balance,
            base_currency=base,
            holdings=holdings,
            positions=positions,
            unrealized_pnl=pnl,
            cash=cash,
        )

    async def fetch_equity(self, currency: str | None = None, params: dict[str, Any] = {}) -> float:
        """Account equity in ``currency`` (default: the account's base currency)."""
        return await account_equity(self, currency)
