"""Request context and input checking: what a route sees, and the broker's refusals of bad input.

Every value from a client is checked here before it reaches the books: wrong types, missing fields,
non-finite numbers and malformed dates become 400 ``{"errorCode": "error.invalid.<field>"}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .account import Account
from .broker import Broker
from .dealing import DealRequest
from .errors import bad_request
from .session import Session
from .timefmt import parse

MISSING = object()


@dataclass
class Ctx:
    """What a route sees: the request's parts, the broker, and (when logged in) the session."""

    broker: Broker
    method: str
    path: str
    match: dict[str, str]
    query: dict[str, str]
    headers: Mapping[str, str]  # case-insensitive, as HTTP header names are
    body: Any
    now: float
    session: Session | None = None
    out_headers: dict[str, str] = field(default_factory=dict)
    secure: bool = False  # the request came over TLS (the streaming host is then wss://)

    @property
    def account(self) -> Account:
        assert self.session is not None
        return self.broker.accounts[self.session.account_id]


Route = Callable[[Ctx], Any]


# -- input checking ------------------------------------------------------------------------
def body_object(ctx: Ctx) -> dict[str, Any]:
    if not isinstance(ctx.body, dict):
        raise bad_request("error.malformed.request")
    return ctx.body


def number(body: dict[str, Any], key: str, *, required: bool = False, code: str | None = None) -> float | None:
    value = body.get(key, MISSING)
    if value is MISSING or value is None:
        if required:
            raise bad_request(code or f"error.invalid.{key}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(code or f"error.invalid.{key}")
    return float(value)


def flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"error.invalid.{key}")
    return value


def text(body: dict[str, Any], key: str, *, code: str | None = None) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise bad_request(code or f"error.invalid.{key}")
    return value


def int_param(ctx: Ctx, key: str, default: int, low: int, high: int) -> int:
    raw = ctx.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"error.invalid.{key}") from None
    if not low <= value <= high:
        raise bad_request(f"error.invalid.{key}")
    return value


def deal_request(body: dict[str, Any], *, working: bool) -> DealRequest:
    direction = body.get("direction")
    if direction not in ("BUY", "SELL"):
        raise bad_request("error.invalid.direction")
    size = number(body, "size", required=True)
    assert size is not None
    if size <= 0:
        raise bad_request("error.invalid.size")
    req = DealRequest(
        epic=text(body, "epic"), direction=direction, size=size,
        stop_level=number(body, "stopLevel"), stop_distance=number(body, "stopDistance"),
        stop_amount=number(body, "stopAmount"), profit_level=number(body, "profitLevel"),
        profit_distance=number(body, "profitDistance"), profit_amount=number(body, "profitAmount"),
        guaranteed=flag(body, "guaranteedStop"), trailing=flag(body, "trailingStop"),
    )
    for key in ("stopDistance", "stopAmount", "profitDistance", "profitAmount", "stopLevel", "profitLevel"):
        value = body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise bad_request(f"error.invalid.{key}")
    if req.guaranteed and req.trailing:
        raise bad_request("error.invalid.guaranteedstop")
    if req.trailing and req.stop_distance is None:
        raise bad_request("error.invalid.trailingstop")
    if working:
        req.level = number(body, "level", required=True)
        if req.level is not None and req.level <= 0:
            raise bad_request("error.invalid.level")
        order_type = body.get("type")
        if order_type not in ("LIMIT", "STOP"):
            raise bad_request("error.invalid.type")
        req.order_type = order_type
        req.good_till = good_till(body)
    return req


def good_till(body: dict[str, Any]) -> float | None:
    value = body.get("goodTillDate")
    if value is None:
        return None
    return parse(value, "error.invalid.goodtilldate")


