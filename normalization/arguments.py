"""The arguments of every unified method, checked once for both brokers before anything is sent.

Why one layer: a bot's call must mean the same thing at IB and at Capital.com, and a bad call must fail
the same way at both -- with a ccxt exception that names the argument -- before it is journaled or
reaches a broker. Before this layer each adapter read its params its own way: IB read
``reduceOnly="true"`` as absent, Capital read ``"false"`` as true, a ``stopLoss`` that was not a dict
was dropped, and ``takeProfitPrice`` silently replaced an order's type and price.

The rules, in the order a call meets them:

- **types**: ``symbol`` a non-empty string (``BadSymbol``); ``amount`` / ``price`` finite numbers
  > 0 (``InvalidOrder``); ``since`` / ``limit`` whole numbers in range and ``params`` a dict
  (``BadRequest``); an order ``id`` a non-empty string or integer (``BadRequest``).
- **flags** (``reduceOnly``, ``postOnly``, ...): ``True`` / ``False``, ``"true"`` / ``"false"``,
  ``1`` / ``0``; anything else is ``BadRequest``, never a guess.
- **one meaning per order**: ``stopPrice`` is ccxt's older name of ``triggerPrice``; a standalone
  ``stopLossPrice`` is a stop order triggered there (``triggerPrice``), a standalone
  ``takeProfitPrice`` a limit order resting there -- at both brokers. Two params that would say
  different things (``triggerPrice`` and ``stopLossPrice`` at two levels, ``stopLoss`` and
  ``stopLossPrice``, a limit ``price`` and a ``takeProfitPrice``) are ``InvalidOrder`` naming both.
- **protective orders** (``stopLoss`` / ``takeProfit``): a dict with a positive finite
  ``triggerPrice`` (``price`` for a take-profit), an optional ``amount`` no larger than the entry's.
- **unknown params**: a broker's own order field (IB ``Order`` attributes, Capital deal-body fields:
  the adapter passes their names and types) goes through; anything else is ``BadRequest`` naming it,
  since an ignored param is an order other than the one the caller asked for.

Pure: no I/O, no broker imports; market-dependent checks (precision, limits) stay in the adapters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ccxt.base.errors import ArgumentsRequired, BadRequest, BadSymbol, DuplicateOrderId, InvalidOrder

__all__ = [
    "FLAG_PARAMS",
    "OHLCV_MAX_LIMIT",
    "MAX_SINCE_MS",
    "OrderRules",
    "check_create_order",
    "check_repeat",
    "check_edit_order",
    "check_edit_target",
    "check_fetch",
    "check_close_position",
    "check_order_ref",
    "check_id",
    "check_limit",
    "check_number",
    "check_params",
    "check_since",
    "check_symbol",
    "check_symbols",
    "check_optional_symbol",
    "parse_flag",
    "order_type",
    "differences",
]

#: Later than any bar a broker can hold (year 2200): beyond it ``since`` is a unit mistake (µs, ns).
MAX_SINCE_MS = 7_258_118_400_000
#: A bigger ``limit`` is a mistake rather than a request (the adapters cap what they fetch lower).
MAX_LIMIT = 10**9
#: Most bars one ``fetch_ohlcv`` call returns (README); a bigger ``limit`` is capped to it, as ccxt exchanges cap
#: theirs. Longer histories are ranges (``since`` + ``params['until']``), which the OHLCV cache splits.
OHLCV_MAX_LIMIT = 10_000

#: Params that are booleans wherever they appear.
FLAG_PARAMS = frozenset({"reduceOnly", "postOnly", "guaranteedStop", "outsideRth", "useRTH", "ownOrdersOnly",
                         "trailingStop", "hedged", "equity", "transmit"})

#: ccxt's unified create_order params that both adapters understand.
UNIFIED_ORDER_PARAMS = frozenset({
    "clientOrderId", "clientOid", "newClientOrderId", "triggerPrice", "stopPrice", "stopLossPrice",
    "takeProfitPrice", "stopLoss", "takeProfit", "reduceOnly", "postOnly", "timeInForce",
    "trailingAmount", "trailingPercent", "trailingTriggerPrice",
})

#: ccxt's spellings of the order types, to (kind, needs a trigger).
ORDER_TYPES: Mapping[str, str] = {
    "market": "market", "limit": "limit",
    "stop": "stop", "stop_market": "stop", "stopmarket": "stop", "stop-market": "stop",
    "stop_limit": "stop_limit", "stoplimit": "stop_limit", "stop-limit": "stop_limit",
}


@dataclass(frozen=True)
class OrderRules:
    """What one broker accepts on top of ccxt's unified order params.

    ``extra_params``: the adapter's own documented params (``goodTillDate``, ``outsideRth`` ...), with
    the types each accepts; ``broker_fields``: the broker's own order fields passed through as given
    (IB ``Order`` attributes, Capital deal-body fields), with their types; ``reserved``: broker fields
    the unified arguments set, so a param cannot override them behind the caller's back.
    """

    exchange_id: str
    extra_params: Mapping[str, tuple[type, ...]] = field(default_factory=dict)
    broker_fields: Mapping[str, tuple[type, ...]] = field(default_factory=dict)
    reserved: frozenset[str] = frozenset()
    broker_name: str = "broker"


# ---------------------------------------------------------------------------------------- scalars


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_symbol(symbol: object, exchange_id: str, method: str) -> str:
    """A unified symbol: a non-empty string (the market lookup then decides whether it exists)."""
    if symbol is None:
        raise ArgumentsRequired(f"{exchange_id} {method}() requires a symbol argument")
    if not isinstance(symbol, str) or not symbol.strip():
        raise BadSymbol(f"{exchange_id} {method}() symbol must be a non-empty string such as 'AAPL/USD', "
                        f"got {_show(symbol)}")
    return symbol


def check_optional_symbol(symbol: object, exchange_id: str, method: str) -> str | None:
    return None if symbol is None else check_symbol(symbol, exchange_id, method)


def check_params(params: object, exchange_id: str, method: str) -> dict[str, Any]:
    """``params`` as a fresh dict with string keys (``None`` is an empty dict, as in ccxt)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise BadRequest(f"{exchange_id} {method}() params must be a dict, got {_show(params)}")
    for key in params:
        if not isinstance(key, str):
            raise BadRequest(f"{exchange_id} {method}() params keys must be strings, got {_show(key)}")
    return params


def check_number(value: object, what: str, exchange_id: str, error: type[Exception] = InvalidOrder) -> float:
    """A finite number > 0 (numeric strings too, as ccxt accepts them); booleans are not numbers."""
    number: float | None = None
    if _is_number(value):
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:  # an int beyond float range
            number = None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise error(f"{exchange_id} {what} must be a positive finite number, got {_show(value)}")
    return number


def _whole(value: object, what: str, exchange_id: str, low: int, high: int) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    if number is None or not low <= number <= high:
        raise BadRequest(f"{exchange_id} {what} must be a whole number from {low} to {high}, got {_show(value)}")
    return number


def check_since(since: object, exchange_id: str, what: str = "since") -> int | None:
    """A ms timestamp from 0 (1970) to :data:`MAX_SINCE_MS`, or ``None``."""
    return None if since is None else _whole(since, what, exchange_id, 0, MAX_SINCE_MS)


def check_limit(limit: object, exchange_id: str) -> int | None:
    """A count >= 1, or ``None``."""
    return None if limit is None else _whole(limit, "limit", exchange_id, 1, MAX_LIMIT)


def check_id(id: object, exchange_id: str, method: str) -> str:
    """An order id as the adapters store it: a non-empty string (an integer id is accepted and spelled)."""
    if id is None:
        raise ArgumentsRequired(f"{exchange_id} {method}() requires an order id")
    if isinstance(id, int) and not isinstance(id, bool):
        return str(id)
    if not isinstance(id, str) or not id.strip() or len(id) > 200:
        raise BadRequest(f"{exchange_id} {method}() id must be a non-empty order id string, got {_show(id)}")
    return id


def parse_flag(value: object, name: str, exchange_id: str) -> bool:
    """A boolean param read strictly: ``"false"`` is False and ``"no"`` is an error, never True."""
    if value is True or value is False:
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"{exchange_id} params['{name}'] must be True or False (or 'true' / 'false', 1 / 0), "
                     f"got {_show(value)}")


def order_type(type: object, exchange_id: str) -> str:
    """ccxt's type spellings -> market, limit, stop or stop_limit."""
    kind = ORDER_TYPES.get(type.strip().lower()) if isinstance(type, str) else None
    if kind is None:
        raise InvalidOrder(f"{exchange_id} order type {_show(type)} is not supported; use market, limit, stop "
                           "or stop_limit")
    return kind


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------- orders


def _flags(params: dict[str, Any], exchange_id: str) -> None:
    for name in FLAG_PARAMS.intersection(params):
        if params[name] is not None:
            params[name] = parse_flag(params[name], name, exchange_id)


def _protection(spec: object, name: str, amount: float | None, exchange_id: str) -> dict[str, Any]:
    """A ``stopLoss`` / ``takeProfit`` dict, checked: its trigger, optional limit price and amount."""
    if not isinstance(spec, dict):
        raise InvalidOrder(f"{exchange_id} params['{name}'] must be a dict such as {{'triggerPrice': ...}}, "
                           f"got {_show(spec)}")
    # the keys ccxt's own create_order_with_take_profit_and_stop_loss writes (type / priceType: informative here)
    unknown = sorted(set(spec) - {"triggerPrice", "price", "amount", "type", "priceType"}, key=str)
    if unknown:
        raise BadRequest(f"{exchange_id} params['{name}'] has unknown key {unknown[0]!r}; use triggerPrice, price "
                         "or amount")
    out: dict[str, Any] = dict(spec)
    trigger = spec.get("triggerPrice")
    if trigger is None and name == "takeProfit":
        trigger = spec.get("price")  # a take-profit is a limit at its price: the price is its trigger
    if trigger is None:
        raise InvalidOrder(f"{exchange_id} params['{name}'] needs a triggerPrice")
    out["triggerPrice"] = check_number(trigger, f"{name} triggerPrice", exchange_id)
    if spec.get("price") is not None:
        out["price"] = check_number(spec["price"], f"{name} price", exchange_id)
    if spec.get("amount") is not None:
        size = check_number(spec["amount"], f"{name} amount", exchange_id)
        if amount is not None and size > amount * (1 + 1e-12):
            raise InvalidOrder(f"{exchange_id} {name} amount {size:g} is larger than the order's amount {amount:g}")
        out["amount"] = size
    return out


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def _pair(params: dict[str, Any], first: str, second: str, exchange_id: str) -> float | None:
    """One level given under two names: both must agree (``InvalidOrder`` naming both if not)."""
    a, b = params.get(first), params.get(second)
    x = check_number(a, first, exchange_id) if a is not None else None
    y = check_number(b, second, exchange_id) if b is not None else None
    if x is not None and y is not None and not _same(x, y):
        raise InvalidOrder(f"{exchange_id} params['{first}'] {x:g} and params['{second}'] {y:g} contradict each other; "
                           "give one")
    return x if x is not None else y


def _unknown(params: dict[str, Any], rules: OrderRules, allowed: frozenset[str]) -> None:
    """Refuse params nobody reads, and broker fields of the wrong type or set by the unified arguments."""
    for name, value in params.items():
        if name in allowed or value is None:
            continue
        if name in rules.extra_params:
            kinds = rules.extra_params[name]
        elif name in rules.broker_fields:
            if name in rules.reserved:
                raise BadRequest(f"{rules.exchange_id} params['{name}'] is set from create_order's own arguments "
                                 "(symbol, type, side, amount, price, unified params); it cannot be passed")
            kinds = rules.broker_fields[name]
        else:
            raise BadRequest(f"{rules.exchange_id} params['{name}'] is not a parameter this exchange understands "
                             f"(ccxt's unified order params, or a {rules.broker_name} order field: see README)")
        if kinds and not _of_kind(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise BadRequest(f"{rules.exchange_id} params['{name}'] must be {names}, got {_show(value)}")


def _of_kind(value: object, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def check_create_order(
    symbol: object, type: object, side: object, amount: object, price: object, params: object, rules: OrderRules,
) -> tuple[str, str, str, float, float | None, dict[str, Any]]:
    """create_order's arguments checked and given one meaning: ``(symbol, type, side, amount, price, params)``.

    ``type`` comes back canonical (market / limit / stop / stop_limit, ``stop_limit`` when a limit order
    carries a trigger); ``params`` is a new dict in which flags are booleans, ``stopPrice`` /
    ``stopLossPrice`` became ``triggerPrice`` and a standalone ``takeProfitPrice`` became the ``price`` of
    a limit order, and ``stopLoss`` / ``takeProfit`` are checked dicts.
    """
    eid = rules.exchange_id
    symbol = check_symbol(symbol, eid, "create_order")
    given = check_params(params, eid, "create_order")
    kind = order_type(type, eid)
    if side != "buy" and side != "sell":
        raise InvalidOrder(f"{eid} side must be 'buy' or 'sell', got {_show(side)}")
    size = check_number(amount, "amount", eid)
    level = check_number(price, "price", eid) if price is not None else None
    if not given:
        if kind in ("stop", "stop_limit"):
            raise InvalidOrder(f"{eid} a {kind} order needs params['triggerPrice']")
        if kind == "limit" and level is None:
            raise ArgumentsRequired(f"{eid} a limit order needs a price")
        return symbol, kind, side, size, level if kind != "market" else None, {}
    out = dict(given)
    _flags(out, eid)
    _unknown(out, rules, UNIFIED_ORDER_PARAMS)
    trigger = _pair(out, "triggerPrice", "stopPrice", eid)
    out.pop("stopPrice", None)
    sl_price, tp_price = out.pop("stopLossPrice", None), out.pop("takeProfitPrice", None)
    for flat, nested in (("stopLossPrice", "stopLoss"), ("takeProfitPrice", "takeProfit")):
        if given.get(flat) is not None and given.get(nested) is not None:
            raise InvalidOrder(f"{eid} params['{flat}'] (a standalone closing order) and params['{nested}'] "
                               "(a bracket attached to this order) contradict each other; give one")
    if sl_price is not None and tp_price is not None:
        raise InvalidOrder(f"{eid} params['stopLossPrice'] and params['takeProfitPrice'] contradict each other: one "
                           "standalone order has one trigger; attach both as stopLoss / takeProfit dicts instead")
    if sl_price is not None:
        sl = check_number(sl_price, "stopLossPrice", eid)
        if trigger is not None and not _same(trigger, sl):
            raise InvalidOrder(f"{eid} params['triggerPrice'] {trigger:g} and params['stopLossPrice'] {sl:g} "
                               "contradict each other; give one")
        trigger = sl
    if tp_price is not None:
        tp = check_number(tp_price, "takeProfitPrice", eid)
        if trigger is not None:
            raise InvalidOrder(f"{eid} params['takeProfitPrice'] and params['triggerPrice'] contradict each other: "
                               "a standalone take-profit rests as a limit order at takeProfitPrice")
        if kind not in ("market", "limit"):
            raise InvalidOrder(f"{eid} order type {type!r} and params['takeProfitPrice'] contradict each other; a "
                               "take-profit order is a market or limit order")
        if level is not None and not _same(level, tp):
            raise InvalidOrder(f"{eid} price {level:g} and params['takeProfitPrice'] {tp:g} contradict each other; "
                               "give one")
        kind, level = "limit", tp
    if trigger is not None:
        out["triggerPrice"] = trigger
        if kind == "market":
            kind = "stop"
        elif kind == "limit":
            kind = "stop_limit"
    elif kind in ("stop", "stop_limit"):
        raise InvalidOrder(f"{eid} a {kind} order needs params['triggerPrice']")
    if kind in ("limit", "stop_limit") and level is None:
        raise ArgumentsRequired(f"{eid} a {'limit' if kind == 'limit' else 'stop-limit'} order needs a price")
    for name in ("stopLoss", "takeProfit"):
        if name in out:
            if out[name] is None:
                del out[name]
            else:
                out[name] = _protection(out[name], name, size, eid)
    tif = out.get("timeInForce")
    if tif is not None:
        if not isinstance(tif, str) or not tif.strip():
            raise BadRequest(f"{eid} params['timeInForce'] must be a string such as 'GTC', got {_show(tif)}")
        out["timeInForce"] = tif.strip().upper()
    _trailing(out, eid)
    return symbol, kind, side, size, level if kind != "market" and kind != "stop" else None, out


def _trailing(params: dict[str, Any], exchange_id: str) -> None:
    """ccxt's trailing-stop params (``create_trailing_amount_order`` / ``create_trailing_percent_order``):
    one of ``trailingAmount`` (price units) or ``trailingPercent`` (0-100), and an optional
    ``trailingTriggerPrice`` (activation); each adapter says what its broker makes of them."""
    amount, percent = params.get("trailingAmount"), params.get("trailingPercent")
    if amount is not None and percent is not None:
        raise InvalidOrder(f"{exchange_id} params['trailingAmount'] and params['trailingPercent'] contradict each "
                           "other: a stop trails by an amount or by a percentage; give one")
    if amount is not None:
        params["trailingAmount"] = check_number(amount, "trailingAmount", exchange_id)
    if percent is not None:
        params["trailingPercent"] = check_number(percent, "trailingPercent", exchange_id)
        if params["trailingPercent"] >= 100:
            raise InvalidOrder(f"{exchange_id} params['trailingPercent'] is a percentage below 100, got {percent!r}")
    if params.get("trailingTriggerPrice") is not None:
        if amount is None and percent is None:
            raise InvalidOrder(f"{exchange_id} params['trailingTriggerPrice'] needs trailingAmount or trailingPercent")
        params["trailingTriggerPrice"] = check_number(params["trailingTriggerPrice"], "trailingTriggerPrice",
                                                      exchange_id)


def check_edit_order(
    id: object, symbol: object, type: object, side: object, amount: object, price: object, params: object,
    rules: OrderRules,
) -> tuple[str, str, str | None, str | None, float | None, float | None, dict[str, Any]]:
    """edit_order's arguments: ``(id, symbol, type, side, amount, price, params)``.

    ``type`` / ``side`` may be ``None`` (unchanged); given, they must name the order's own (the adapter
    compares them with the order it finds: an edit never turns one order into another).
    """
    eid = rules.exchange_id
    key = check_id(id, eid, "edit_order")
    symbol = check_symbol(symbol, eid, "edit_order")
    given = check_params(params, eid, "edit_order")
    kind = order_type(type, eid) if type is not None else None
    if side is not None and side != "buy" and side != "sell":
        raise InvalidOrder(f"{eid} side must be 'buy' or 'sell', got {_show(side)}")
    size = check_number(amount, "amount", eid) if amount is not None else None
    level = check_number(price, "price", eid) if price is not None else None
    out = dict(given)
    allowed = UNIFIED_ORDER_PARAMS | {"goodTillDate"}
    _flags(out, eid)
    _unknown(out, rules, allowed)
    trigger = _pair(out, "triggerPrice", "stopPrice", eid)
    out.pop("stopPrice", None)
    if trigger is not None:
        out["triggerPrice"] = trigger
    # On an existing order the flat levels can only mean its attached stop-loss / take-profit levels.
    for flat, nested in (("stopLossPrice", "stopLoss"), ("takeProfitPrice", "takeProfit")):
        level_ = out.pop(flat, None)
        if level_ is None:
            continue
        if out.get(nested) is not None:
            raise InvalidOrder(f"{eid} params['{flat}'] and params['{nested}'] contradict each other; give one")
        out[nested] = {"triggerPrice": level_}
    for name in ("stopLoss", "takeProfit"):
        if name in out:
            if out[name] is None:
                del out[name]
            else:
                out[name] = _protection(out[name], name, size, eid)
    return key, symbol, kind, side, size, level, out  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------- repeats


def differences(first: Mapping[str, Any], again: Mapping[str, Any]) -> list[str]:
    """The order fields (symbol, side, type, amount, price, trigger_price) in which a repeat under the same
    clientOrderId differs from the first order: non-empty means ``DuplicateOrderId``, not the first order."""
    out = []
    for name in ("symbol", "side", "type", "amount", "price", "trigger_price"):
        a, b = first.get(name), again.get(name)
        if a is None or a == "":  # not known for the first order (say, adopted from the broker): no claim
            continue
        if _is_number(a) and _is_number(b):
            if _same(float(a), float(b)):  # type: ignore[arg-type]
                continue
        elif a == b:
            continue
        out.append(f"{name} {a!r} -> {b!r}")
    return out


def check_repeat(first: Any, again: Mapping[str, Any], client_order_id: str, exchange_id: str) -> None:
    """A clientOrderId seen before: the identical order again is the idempotent repeat (the caller returns
    the first order); a different one is ``DuplicateOrderId`` naming what differs. ``first`` is the
    journal's row (attributes symbol, side, type, amount, price, trigger_price)."""
    known = {name: getattr(first, name, None) for name in ("symbol", "side", "type", "amount", "price",
                                                           "trigger_price")}
    changed = differences(known, again)
    if changed:
        raise DuplicateOrderId(f"{exchange_id} clientOrderId {client_order_id!r} was already used for another "
                               f"order ({'; '.join(changed)}); use a new clientOrderId")


def check_fetch(exchange_id: str, method: str, symbol: object = None, since: object = None, limit: object = None,
                params: object = None, *, symbol_required: bool = False, timeframe: object = None,
                timeframes: Mapping[str, Any] | None = None,
                ) -> tuple[str | None, int | None, int | None, dict[str, Any]]:
    """The arguments of a fetch_* method: ``(symbol, since, limit, params)`` checked (flags parsed); with
    ``timeframes``, ``timeframe`` must be one of them (``BadRequest`` naming it)."""
    if timeframes is not None and (not isinstance(timeframe, str) or timeframe not in timeframes):
        raise BadRequest(f"{exchange_id} {method}() timeframe {_show(timeframe)} is not supported; use one of "
                         f"{', '.join(timeframes)}")
    if symbol_required:
        checked: str | None = check_symbol(symbol, exchange_id, method)
    else:
        checked = check_optional_symbol(symbol, exchange_id, method)
    out = check_params(params, exchange_id, method)
    if out and FLAG_PARAMS.intersection(out):
        out = dict(out)
        _flags(out, exchange_id)
    if out.get("until") is not None:
        check_since(out["until"], exchange_id, "params['until']")
    return checked, check_since(since, exchange_id), check_limit(limit, exchange_id), out


def check_order_ref(exchange_id: str, method: str, id: object, symbol: object, params: object,
                    ) -> tuple[str | None, str | None, dict[str, Any]]:
    """``(id, symbol, params)`` of fetch_order / cancel_order: an id, or ``params['clientOrderId']``."""
    out = check_params(params, exchange_id, method)
    checked = check_optional_symbol(symbol, exchange_id, method)
    cid = out.get("clientOrderId", out.get("clientOid"))
    if cid is not None and (not isinstance(cid, str) or not cid.strip()):
        raise BadRequest(f"{exchange_id} {method}() params['clientOrderId'] must be a non-empty string, got "
                         f"{_show(cid)}")
    if id is None and cid is not None:
        return None, checked, out
    return check_id(id, exchange_id, method), checked, out


def check_close_position(exchange_id: str, symbol: object, side: object, params: object,
                         ) -> tuple[str, str | None, dict[str, Any]]:
    """close_position's ``(symbol, side, params)``, side returned as the position's: ``"long"``, ``"short"`` or None.

    ccxt's ``side`` names the position being closed, not the closing order (bitget / okx / blofin: one-way mode
    'buy' or 'sell', hedge mode 'long' or 'short'), so ``"buy"`` is a long position at both brokers; the two
    adapters once read it in opposite directions."""
    checked = check_symbol(symbol, exchange_id, "close_position")
    out = check_params(params, exchange_id, "close_position")
    position_side = POSITION_SIDES.get(side) if isinstance(side, str) else None
    if side is not None and position_side is None:
        raise InvalidOrder(f"{exchange_id} close_position() side must be buy, sell, long or short, got {_show(side)}")
    if out and FLAG_PARAMS.intersection(out):
        out = dict(out)
        _flags(out, exchange_id)
    return checked, position_side, out  # type: ignore[return-value]


POSITION_SIDES = {"buy": "long", "long": "long", "sell": "short", "short": "short"}


def check_edit_target(exchange_id: str, id: str, wanted: Mapping[str, str | None],
                      actual: Mapping[str, str | None]) -> None:
    """edit_order's ``symbol`` / ``side`` / ``type`` must be the order's own: an edit re-prices *that* order,
    it never turns into an order on another market or side (``InvalidOrder`` naming the field). A field
    the caller left ``None``, or that the broker does not report, is not compared."""
    for name in ("symbol", "side", "type"):
        want, have = wanted.get(name), actual.get(name)
        if want is None or have is None or want == have:
            continue
        if name == "type" and {want, have} <= {"limit", "stop_limit"} and have == "stop_limit":
            continue  # a stop-limit order's limit price is edited as a limit
        raise InvalidOrder(f"{exchange_id} edit_order {name} {want!r} does not match order {id}, a {have} order "
                           f"({actual.get('side') or '?'} {actual.get('symbol') or '?'}); cancel it and create "
                           "a new order instead")


def check_symbols(symbols: object, exchange_id: str, method: str) -> list[str] | None:
    """A list of unified symbols, or ``None`` (all)."""
    if symbols is None:
        return None
    if isinstance(symbols, str) or not isinstance(symbols, (list, tuple)):
        raise BadSymbol(f"{exchange_id} {method}() symbols must be a list of symbols such as ['AAPL/USD'], got "
                        f"{_show(symbols)}")
    return [check_symbol(symbol, exchange_id, method) for symbol in symbols]
