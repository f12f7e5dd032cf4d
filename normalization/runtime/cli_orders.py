"""The command line's order commands: ``place``, ``validate``, ``cancel-all``, ``panic``.

Why a module of its own: an order on the command line comes two ways -- flags, or the JSON a bot
would pass to ccxt's ``create_order`` (``--json`` / ``--json-file``, the same six keys, anything
else refused) -- and is checked the same way whichever way it came, by the market's precision and
limits, the pre-trade limits (:mod:`normalization.risk`) and priced with the broker's fee schedule
(``calculate_fee``).

``validate`` never connects: it reads the markets a connected command cached
(:mod:`normalization.runtime.market_cache`, or ``--markets-file``); a market order is valued at
``--ref-price`` when given. Limits that need the broker (the position, open orders, today's count,
the price collar without ``--ref-price``) are listed as ``unchecked``, never passed silently.
``place --dry-run`` does the same, and connects only for what the cache cannot give: the markets
when none are cached, a quote for a market order without ``--ref-price``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ccxt

from normalization.risk import OrderFacts, collar_breach, converts, exposure_breaches, instrument_kinds, refusal

from .controls import kill_switch
from .market_cache import load_markets_file, markets_cache_path
from .risk import risk_limits

__all__ = ["ORDER_KEYS", "add_order_parsers", "order_from_json"]

#: The keys of ccxt's create_order, the only ones ``--json`` accepts.
ORDER_KEYS = ("symbol", "type", "side", "amount", "price", "params")
#: Flags that build an order; with ``--json`` they would be a second, conflicting source.
_ORDER_FLAGS = ("order_type", "price", "trigger_price", "stop_loss", "take_profit", "tif", "client_order_id",
                "reduce_only", "param")
#: Rules that need the broker's state (validate lists them as unchecked).
_BROKER_RULES = {"max_position_amount": "maxPositionAmount", "max_open_orders": "maxOpenOrders",
                 "max_orders_per_day": "maxOrdersPerDay"}


def add_order_parsers(add: Callable[..., argparse.ArgumentParser], positive: Any, key_value: Any,
                      usage_error: type[Exception]) -> None:
    for name, handler, help_text in (
        ("place", _cmd_place, "place an order; with --dry-run it is validated and priced but never sent"),
        ("validate", _cmd_place, "validate and price an order from cached markets, without connecting"),
    ):
        p = add(name, handler, help_text)
        p.add_argument("symbol", nargs="?", metavar="SYMBOL")
        p.add_argument("side", nargs="?", choices=("buy", "sell"))
        p.add_argument("amount", nargs="?", type=positive, help="in base units (shares, contracts, lots)")
        p.add_argument("--type", dest="order_type", default=None, choices=("market", "limit", "stop", "stop-limit"))
        p.add_argument("--price", type=positive, help="limit price")
        p.add_argument("--trigger-price", type=positive, help="stop trigger price")
        p.add_argument("--stop-loss", type=positive, help="attached stop-loss trigger price")
        p.add_argument("--take-profit", type=positive, help="attached take-profit price")
        p.add_argument("--tif", choices=("GTC", "DAY", "IOC", "FOK", "PO"), help="time in force")
        p.add_argument("--client-order-id", help="idempotency key; placing it twice returns the first")
        p.add_argument("--reduce-only", action="store_true")
        p.add_argument("--param", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                       help="extra ccxt params (value parsed as JSON when it can be); repeatable")
        p.add_argument("--json", dest="order_json", metavar="JSON",
                       help='the order as create_order takes it: {"symbol", "type", "side", "amount", "price", '
                            '"params"}')
        p.add_argument("--json-file", dest="order_json_file", metavar="FILE", help="the same JSON, from a file")
        p.add_argument("--ref-price", type=positive, help="value a market order at this price (no quote asked)")
        p.add_argument("--markets-file", help="cached markets to check against (default: the markets cache)")
        p.set_defaults(dry_run=name == "validate", offline=name == "validate", usage_error=usage_error)
        if name == "place":
            p.add_argument("--dry-run", action="store_true", help="validate and price only, never send")
    p = add("cancel-all", _cmd_cancel_all, "cancel every working order (this client's; --all-clients: all)")
    p.add_argument("--symbol", help="only this symbol's orders")
    p.add_argument("--all-clients", action="store_true",
                   help="IB: every order of the account, whichever client placed it (reqGlobalCancel)")
    p = add("panic", _cmd_panic, "kill switch: cancel every working order, then close every position")
    p.add_argument("--all-clients", action="store_true", help="IB: cancel other clients' orders too")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="how long to wait for a kill switch already running on the account (default 60; "
                        "0: report it at once)")


# -- the order, from flags or JSON -----------------------------------------------------------------


def order_from_json(text: str, source: str, usage_error: type[Exception]) -> dict[str, Any]:
    """A create_order call as JSON, checked: an object with ccxt's keys only, typed."""
    try:
        order = json.loads(text)
    except json.JSONDecodeError as exc:
        raise usage_error(f"{source}: not JSON ({exc})") from None
    if not isinstance(order, dict):
        raise usage_error(f"{source}: expected a JSON object with the keys {', '.join(ORDER_KEYS)}")
    unknown = sorted(set(order) - set(ORDER_KEYS))
    if unknown:
        raise usage_error(f"{source}: unknown key(s) {', '.join(unknown)}; create_order takes {', '.join(ORDER_KEYS)}"
                          " (broker options go in params)")
    missing = [k for k in ("symbol", "type", "side", "amount") if order.get(k) is None]
    if missing:
        raise usage_error(f"{source}: missing {', '.join(missing)}")
    if not isinstance(order["symbol"], str) or not isinstance(order["type"], str):
        raise usage_error(f"{source}: symbol and type are strings")
    if order["side"] not in ("buy", "sell"):
        raise usage_error(f"{source}: side is 'buy' or 'sell', not {order['side']!r}")
    for key in ("amount", "price"):
        value = order.get(key)
        if value is None and key == "price":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise usage_error(f"{source}: {key} must be a positive number, not {value!r}")
    params = order.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise usage_error(f"{source}: params must be an object")
    return {"symbol": order["symbol"], "type": order["type"], "side": order["side"], "amount": float(order["amount"]),
            "price": None if order.get("price") is None else float(order["price"]), "params": dict(params)}


def _order_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    kind = args.order_type or "market"
    unified = "limit" if kind in ("limit", "stop-limit") else "market"
    if unified == "limit" and args.price is None:
        raise ccxt.ArgumentsRequired(f"a {kind} order needs --price")
    if kind in ("stop", "stop-limit") and args.trigger_price is None:
        raise ccxt.ArgumentsRequired(f"a {kind} order needs --trigger-price")
    if unified == "market" and args.price is not None:
        raise ccxt.BadRequest("--price applies to limit orders; use --type limit or stop-limit")
    params: dict[str, Any] = dict(args.param)
    if args.client_order_id:
        params["clientOrderId"] = args.client_order_id
    if args.tif:
        params["timeInForce"] = args.tif
    if args.trigger_price is not None:
        params["triggerPrice"] = args.trigger_price
    if args.stop_loss is not None:
        params["stopLoss"] = {"triggerPrice": args.stop_loss}
    if args.take_profit is not None:
        params["takeProfit"] = {"triggerPrice": args.take_profit}
    if args.reduce_only:
        params["reduceOnly"] = True
    return {"symbol": args.symbol, "type": unified, "side": args.side, "amount": args.amount, "price": args.price,
            "params": params}


def requested_order(args: argparse.Namespace) -> dict[str, Any]:
    """The order the command line asks for: from ``--json`` / ``--json-file``, or from the flags."""
    error = args.usage_error
    if args.order_json is not None or args.order_json_file is not None:
        if args.order_json is not None and args.order_json_file is not None:
            raise error("give the order once: --json or --json-file")
        given = [a for a in ("symbol", "side", "amount") if getattr(args, a) is not None]
        given += ["--" + f.replace("_", "-") for f in _ORDER_FLAGS if getattr(args, f) not in (None, False, [])]
        if given:
            raise error(f"with --json the order comes from the JSON only; drop {', '.join(given)}")
        if args.order_json_file is not None:
            try:
                text = Path(args.order_json_file).read_text()
            except OSError as exc:
                raise error(f"--json-file {args.order_json_file}: {exc}") from None
            return order_from_json(text, f"--json-file {args.order_json_file}", error)
        return order_from_json(args.order_json, "--json", error)
    missing = [a.upper() for a in ("symbol", "side", "amount") if getattr(args, a) is None]
    if missing:
        raise error(f"{args.command}: {', '.join(missing)} required (or the order as --json)")
    return _order_from_flags(args)


# -- checks ---------------------------------------------------------------------------------------


def _limit(market: Mapping[str, Any], kind: str, bound: str) -> float | None:
    value = ((market.get("limits") or {}).get(kind) or {}).get(bound)
    return None if value is None else float(value)


def _check_limits(market: Mapping[str, Any], kind: str, value: float | None, what: str) -> None:
    if value is None:
        return
    lo, hi = _limit(market, kind, "min"), _limit(market, kind, "max")
    if lo is not None and value < lo:
        raise ccxt.InvalidOrder(f"{market.get('symbol')}: {what} {value} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ccxt.InvalidOrder(f"{market.get('symbol')}: {what} {value} is above the maximum {hi}")


def _to_precision(fn: Callable[[str, float], Any], symbol: str, value: float | None) -> float | None:
    if value is None:
        return None
    result = float(fn(symbol, value))
    if result <= 0:
        raise ccxt.InvalidOrder(f"{symbol}: {value} rounds to {result} at the market's precision")
    return result


def _on_grid(exchange: Any, market: Mapping[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    """The order with its amount and prices on the market's grid, within its limits."""
    symbol = market["symbol"]
    precision = market.get("precision") or {}
    out = {**order, "symbol": symbol, "params": dict(order["params"])}
    if precision.get("amount") is not None:
        out["amount"] = _to_precision(exchange.amount_to_precision, symbol, order["amount"])
    if precision.get("price") is not None:
        grid = exchange.price_to_precision
        out["price"] = _to_precision(grid, symbol, order["price"])
        params = out["params"]
        for key in ("triggerPrice", "stopPrice"):
            if isinstance(params.get(key), (int, float)):
                params[key] = _to_precision(grid, symbol, params[key])
        for leg in ("stopLoss", "takeProfit"):
            if isinstance(params.get(leg), dict) and isinstance(params[leg].get("triggerPrice"), (int, float)):
                params[leg] = {**params[leg], "triggerPrice": _to_precision(grid, symbol, params[leg]["triggerPrice"])}
    _check_limits(market, "amount", out["amount"], "amount")
    _check_limits(market, "price", out["price"], "price")
    _check_limits(market, "price", _trigger(out), "trigger price")
    return out


def _trigger(order: Mapping[str, Any]) -> float | None:
    params = order.get("params") or {}
    value = params.get("triggerPrice", params.get("stopPrice"))
    return float(value) if isinstance(value, (int, float)) else None


def _risk(exchange: Any, market: Mapping[str, Any], order: Mapping[str, Any], value_at: float | None,
          quote: float | None) -> dict[str, Any]:
    """The pre-trade limits this order can be checked against here; raises InvalidOrder on a breach."""
    limits = risk_limits(exchange.id, (getattr(exchange, "options", None) or {}).get("risk"))
    if not limits.active:
        return {"limits": False}
    unchecked = [key for attr, key in _BROKER_RULES.items() if getattr(limits, attr) is not None]
    limits = dataclasses.replace(limits, **{attr: None for attr in _BROKER_RULES})
    notional = limits.max_order_notional is not None and limits.max_order_notional.get(market["symbol"]) is not None
    if notional and (value_at is None or converts(limits, OrderFacts(
            symbol=market["symbol"], kinds=frozenset(), side=order["side"], amount=order["amount"],
            quote_currency=market.get("quote")))):  # no FX quote offline
        unchecked.append("maxOrderNotional")
        limits = dataclasses.replace(limits, max_order_notional=None)
    if limits.price_collar_pct is not None and order["price"] is not None and quote is None:
        unchecked.append("priceCollarPct")
        limits = dataclasses.replace(limits, price_collar_pct=None)
    facts = OrderFacts(symbol=market["symbol"], kinds=instrument_kinds(market), side=order["side"],
                       amount=order["amount"], price=value_at, limit_price=order["price"],
                       contract_size=float(market.get("contractSize") or 1.0), quote_currency=market.get("quote"),
                       reduce_only=bool(order["params"].get("reduceOnly")), quote=quote)
    breaches = [b for b in (collar_breach(limits, facts), *([] if facts.reduce_only else
                                                           exposure_breaches(limits, facts))) if b]
    if breaches:
        raise refusal(exchange.id, facts, breaches)
    return {"limits": True, "passed": True, "unchecked": unchecked}


# -- commands -------------------------------------------------------------------------------------


def _cached_markets(exchange: Any, args: argparse.Namespace) -> bool:
    """Load the cached markets into ``exchange`` (no connection); False when there are none."""
    path = Path(args.markets_file) if args.markets_file else markets_cache_path(exchange.id)
    markets = load_markets_file(path)
    if markets is None:
        if args.markets_file or args.offline:
            raise args.usage_error(f"no cached markets for {exchange.id} at {path}: run a connected command once "
                                   "(e.g. 'markets' or 'health') to cache them, or pass --markets-file")
        return False
    exchange.set_markets(list(markets.values()))
    return True


def _cmd_place(exchange: Any, args: argparse.Namespace, call: Any) -> Any:
    order = requested_order(args)
    if not args.dry_run:
        call(exchange.load_markets)
        market = exchange.market(order["symbol"])
        order = _on_grid(exchange, market, order)
        value_at = order["price"] if order["price"] is not None else _trigger(order)
        if value_at is not None:
            _check_limits(market, "cost", order["amount"] * value_at * float(market.get("contractSize") or 1), "cost")
        return call(exchange.create_order, order["symbol"], order["type"], order["side"], order["amount"],
                    order["price"], order["params"])
    offline = _cached_markets(exchange, args)
    if not offline:
        call(exchange.load_markets)
    market = exchange.market(order["symbol"])
    order = _on_grid(exchange, market, order)
    ticker = None
    value_at = order["price"] if order["price"] is not None else _trigger(order)
    value_at = value_at if value_at is not None else args.ref_price
    if value_at is None and not args.offline:
        ticker = call(exchange.fetch_ticker, market["symbol"])
        value_at = _touch(ticker, order["side"])
        if value_at is None:
            raise ccxt.ExchangeError(f"{market['symbol']}: no bid/ask/last price to estimate the order with")
    quote = args.ref_price or (ticker or {}).get("last")
    risk = _risk(exchange, market, order, value_at, quote)
    size = float(market.get("contractSize") or 1)
    cost = None if value_at is None else order["amount"] * value_at * size
    _check_limits(market, "cost", cost, "estimated cost")
    fee = None
    if value_at is not None:
        try:
            fee = exchange.calculate_fee(market["symbol"], order["type"], order["side"], order["amount"], value_at)
        except (ccxt.NotSupported, ccxt.ExchangeError, KeyError, TypeError):
            fee = None
    doc: dict[str, Any] = {
        "dryRun": True,
        "sent": False,
        "offline": ticker is None and offline,
        "order": order,
        "estimate": {"price": value_at, "cost": cost, "currency": market.get("quote"),
                     "fee": None if fee is None else fee.get("cost"), "feeCurrency": None if fee is None else
                     fee.get("currency"), "feeDetail": None if fee is None else fee.get("info")},
        "risk": risk,
        "market": {k: market.get(k) for k in ("id", "symbol", "type", "precision", "limits", "contractSize")},
    }
    if ticker is not None:
        doc["ticker"] = {k: ticker.get(k) for k in ("symbol", "timestamp", "datetime", "bid", "ask", "last")}
    return doc


def _touch(ticker: Mapping[str, Any], side: str) -> float | None:
    """What a market order would likely fill at: the touch, else the last price."""
    touch = ticker.get("ask") if side == "buy" else ticker.get("bid")
    for candidate in (touch, ticker.get("last"), ticker.get("close")):
        if candidate is not None and float(candidate) > 0:
            return float(candidate)
    return None


def _require(exchange: Any, capability: str) -> None:
    if not (getattr(exchange, "has", None) or {}).get(capability):
        raise ccxt.NotSupported(f"{getattr(exchange, 'id', 'exchange')} has no {capability}")


def _cmd_cancel_all(exchange: Any, args: argparse.Namespace, call: Any) -> Any:
    _require(exchange, "cancelAllOrders")
    call(exchange.load_markets)
    canceled = call(exchange.cancel_all_orders, args.symbol, {"allClients": True} if args.all_clients else {})
    return {"count": len(canceled), "canceled": canceled}


def _cmd_panic(exchange: Any, args: argparse.Namespace, call: Any) -> Any:
    _require(exchange, "closeAllPositions")
    call(exchange.load_markets)
    params: dict[str, Any] = {"allClients": True} if args.all_clients else {}
    if args.wait is not None:
        params["wait"] = args.wait
    report = call(kill_switch, exchange, params)
    return {"ok": not report["remaining"], **report}
