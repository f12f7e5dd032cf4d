"""The endpoints of the REST API v1, one synchronous function each: ``(ctx) -> JSON body``.

Routes run under the broker lock (see :mod:`.app`), already authenticated and rate-limited unless
listed in :data:`PUBLIC`; they raise :class:`~.errors.ApiError` to refuse.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import views
from .account import Transaction
from .broker import Broker
from .catalogue import LEVERAGES
from .dealing import DealRequest
from .errors import TOO_MANY_REQUESTS, ApiError, bad_request, invalid_constraint, not_found
from .inputs import (
    MISSING,
    Ctx,
    Route,
    body_object,
    deal_request,
    flag,
    good_till,
    int_param,
    number,
)
from .limits import LOGIN_PER_KEY
from .pricing import RESOLUTIONS, align
from .session import Session
from .timefmt import fmt, parse
from .watchlist_routes import ROUTES as WATCHLIST_ROUTES


# -- session --------------------------------------------------------------------------------
def tz_offset(broker: Broker) -> int | float:
    """``timezoneOffset`` in hours: an integer, as documented (a half-hour zone keeps its fraction)."""
    offset = broker.config.tz_offset
    return int(offset) if float(offset).is_integer() else offset


def session_body(ctx: Ctx, session: Session) -> dict[str, Any]:
    broker = ctx.broker
    account = broker.accounts[session.account_id]
    values = broker.dealer.account_values(account, ctx.now)
    return {
        "accountType": "CFD",
        "accountInfo": {k: values[k] for k in ("balance", "deposit", "profitLoss", "available")},
        "currencyIsoCode": account.currency,
        "currencySymbol": account.symbol,
        "currentAccountId": account.account_id,
        "streamingHost": f"{'wss' if ctx.secure else 'ws'}://{ctx.headers.get('Host', '127.0.0.1')}/",
        "accounts": [
            {
                "accountId": a.account_id, "accountName": a.name, "preferred": a.preferred,
                "accountType": "CFD", "currency": a.currency, "symbol": a.symbol,
                "balance": {k: v for k, v in broker.dealer.account_values(a, ctx.now).items() if k != "margin"},
            }
            for a in broker.accounts.values()
        ],
        "clientId": broker.client_id,
        "timezoneOffset": tz_offset(broker),
        "hasActiveDemoAccounts": True,
        "hasActiveLiveAccounts": False,
        "trailingStopsEnabled": True,
    }


def create_session(ctx: Ctx) -> Any:
    broker = ctx.broker
    api_key = ctx.headers.get("X-CAP-API-KEY")
    broker.sessions.check_api_key(api_key)
    assert api_key is not None
    if not broker.limiter.admit([("login", api_key, LOGIN_PER_KEY)]):
        raise ApiError(429, TOO_MANY_REQUESTS)
    body = body_object(ctx)
    identifier = body.get("identifier")
    password = body.get("password")
    if not isinstance(identifier, str) or not isinstance(password, str):
        raise bad_request("error.invalid.details")
    encrypted = body.get("encryptedPassword", False)
    if encrypted not in (True, False, None, "true", "false"):
        raise bad_request("error.invalid.details")
    if encrypted in (True, "true"):
        password = broker.decrypt_password(password)
    session = broker.sessions.login(api_key, identifier, password, broker.preferred_account.account_id,
                                    ctx.now)
    ctx.out_headers.update({"CST": session.cst, "X-SECURITY-TOKEN": session.token})
    return session_body(ctx, session)


def encryption_key(ctx: Ctx) -> Any:
    ctx.broker.sessions.check_api_key(ctx.headers.get("X-CAP-API-KEY"))
    return ctx.broker.encryption_key()


def get_session(ctx: Ctx) -> Any:
    account = ctx.account
    return {"clientId": ctx.broker.client_id, "accountId": account.account_id,
            "timezoneOffset": tz_offset(ctx.broker), "locale": "en", "currency": account.currency,
            "streamEndpoint": f"ws://{ctx.headers.get('Host', '127.0.0.1')}/"}


def switch_account(ctx: Ctx) -> Any:
    assert ctx.session is not None
    body = body_object(ctx)
    ctx.broker.sessions.switch(ctx.session, body.get("accountId"), set(ctx.broker.accounts))
    return {"trailingStopsEnabled": True, "dealingEnabled": True, "hasActiveDemoAccounts": True,
            "hasActiveLiveAccounts": False}


def logout(ctx: Ctx) -> Any:
    assert ctx.session is not None
    ctx.broker.sessions.logout(ctx.session)
    return {"status": "SUCCESS"}


def ping(ctx: Ctx) -> Any:
    return {"status": "OK"}


def server_time(ctx: Ctx) -> Any:
    return {"serverTime": int(ctx.now * 1000)}


# -- accounts and history ----------------------------------------------------------------------
def accounts(ctx: Ctx) -> Any:
    return {"accounts": [views.account_entry(ctx.broker.dealer, a, ctx.now)
                         for a in ctx.broker.accounts.values()]}


def get_preferences(ctx: Ctx) -> Any:
    return views.preferences(ctx.account)


def put_preferences(ctx: Ctx) -> Any:
    body = body_object(ctx)
    account = ctx.account
    # Both fields are optional; a client that sends one as null means "leave it as it is".
    hedging = body.get("hedgingMode", MISSING)
    if hedging is None:
        hedging = MISSING
    if hedging is not MISSING and not isinstance(hedging, bool):
        raise bad_request("error.invalid.hedgingMode")
    leverages = body.get("leverages")
    if leverages is None:
        leverages = {}
    if not isinstance(leverages, dict):
        raise bad_request("error.invalid.leverages")
    changes: dict[str, int] = {}
    for kind, value in leverages.items():
        if isinstance(value, dict):
            value = value.get("current")
        if kind not in account.leverages or isinstance(value, bool) or not isinstance(value, int):
            raise bad_request("error.invalid.leverage.value")
        if value not in LEVERAGES[kind]:
            raise bad_request("error.invalid.leverage.value")
        changes[kind] = value
    if hedging is False and account.hedging:
        mine = [p for p in ctx.broker.dealer.positions.values() if p.account_id == account.account_id]
        for epic in {p.epic for p in mine}:
            if len({p.direction for p in mine if p.epic == epic}) > 1:
                raise bad_request("error.invalid.hedgingMode")
    if hedging is not MISSING:
        account.hedging = bool(hedging)
    account.leverages.update(changes)
    return {"status": "SUCCESS"}


def top_up(ctx: Ctx) -> Any:
    body = body_object(ctx)
    amount = number(body, "amount", required=True, code="error.invalid.amount")
    assert amount is not None
    if amount <= 0 or amount > 1_000_000:
        raise bad_request("error.invalid.amount")
    account = ctx.account
    account.book(Transaction(ctx.now, "DEPOSIT", amount, account.currency, "", "Demo top up",
                             ctx.broker.dealer.new_reference("t_")))
    return {"successful": True}


def _period(ctx: Ctx, *, max_range: float | None) -> tuple[float, float]:
    """The [from, to] window of a history query: explicit dates or ``lastPeriod`` seconds.

    With a maximum range (the activity history: one day), one date alone spans that range from
    it (``from``) or up to it (``to``), as documented; otherwise ``from`` alone runs until now."""
    q = ctx.query
    if q.get("from") or q.get("to"):
        start = parse(q["from"], "error.invalid.from") if q.get("from") else None
        end = parse(q["to"], "error.invalid.to") if q.get("to") else None
        if end is None:
            assert start is not None
            end = start + max_range if max_range is not None else ctx.now
        if start is None:
            start = end - (max_range if max_range is not None else 86_400)
        if start > end or (max_range is not None and end - start > max_range):
            raise bad_request("error.invalid.daterange")
        return start, end
    last = int_param(ctx, "lastPeriod", 600, 1, 86_400 if max_range else 10**9)
    return ctx.now - last, ctx.now


def _fiql(expression: str) -> list[tuple[str, bool, set[str]]]:
    """``source!=DEALER;epic==OIL_CRUDE,GOLD`` -> [(field, equal?, values)]: ``;`` joins conditions
    (and), a comma lists the values one condition accepts (``==``: any of them; ``!=``: none)."""
    out = []
    for part in expression.split(";"):
        part = part.strip()
        if not part:
            continue
        if "!=" in part:
            name, value = part.split("!=", 1)
            equal = False
        elif "==" in part:
            name, value = part.split("==", 1)
            equal = True
        else:
            raise bad_request("error.invalid.filter")
        values = {v.strip() for v in value.split(",") if v.strip()}
        if not values:
            raise bad_request("error.invalid.filter")
        out.append((name.strip(), equal, values))
    return out


def activity(ctx: Ctx) -> Any:
    start, end = _period(ctx, max_range=86_400)
    detailed = ctx.query.get("detailed", "false").lower() == "true"
    deal_id = ctx.query.get("dealId")
    rules = _fiql(ctx.query.get("filter", ""))
    account_id = ctx.account.account_id
    out = []
    for entry in ctx.broker.dealer.activities:
        if entry.account_id != account_id or not start <= entry.ts <= end:
            continue
        if deal_id and entry.deal_id != deal_id:
            continue
        fields = {"source": entry.source, "type": entry.type, "status": entry.status, "epic": entry.epic,
                  "dealId": entry.deal_id}
        if any(name not in fields for name, _, _ in rules):
            raise bad_request("error.invalid.filter")
        if all((fields[name] in values) == equal for name, equal, values in rules):
            out.append(views.activity(ctx.broker.dealer, entry, detailed))
    return {"activities": out}


def transactions(ctx: Ctx) -> Any:
    start, end = _period(ctx, max_range=None)
    kind = ctx.query.get("type")
    out = [views.transaction(ctx.broker.dealer, tx) for tx in ctx.account.transactions
           if start <= tx.ts <= end and (not kind or tx.type == kind.upper())]
    return {"transactions": out}


# -- markets and prices -------------------------------------------------------------------------
def markets(ctx: Ctx) -> Any:
    """``?searchTerm=`` (summaries, takes precedence), ``?epics=A,B`` (full details, at most 50) or,
    with neither, every market. A parameter sent empty is refused, as in the official examples."""
    dealer = ctx.broker.dealer
    catalogue = ctx.broker.catalogue
    term = ctx.query.get("searchTerm")
    epics = ctx.query.get("epics")
    if term is not None:
        if not term.strip():
            raise bad_request("error.null.searchTerm")
        chosen = catalogue.search(term)
    elif epics is not None:
        wanted = [e.strip() for e in epics.split(",") if e.strip()]
        if not wanted:
            raise bad_request("error.null.epic")
        if len(wanted) > 50:
            raise bad_request("error.invalid.epics")
        found = [catalogue.get(e) for e in wanted]
        # The official example answers ?epics= with full objects under ``marketDetails`` only
        # (capital-api.md said ``markets`` summaries; the collection wins).
        return {"marketDetails": [views.market_details(dealer, inst, ctx.account, ctx.now)
                                  for inst in found if inst is not None]}
    else:
        chosen = list(catalogue.instruments)
    return {"markets": [views.market_summary(dealer, inst, ctx.now) for inst in chosen]}


def market(ctx: Ctx) -> Any:
    inst = ctx.broker.dealer.instrument(ctx.match["epic"])
    return views.market_details(ctx.broker.dealer, inst, ctx.account, ctx.now)


def navigation(ctx: Ctx) -> Any:
    return {"nodes": [{"id": nid, "name": name} for nid, name in ctx.broker.catalogue.children(None)]}


def navigation_node(ctx: Ctx) -> Any:
    catalogue = ctx.broker.catalogue
    node = ctx.match["node"]
    if catalogue.node_name(node) is None:
        raise not_found("error.not-found.nodeId")
    try:
        limit = int_param(ctx, "limit", 500, 1, 500)
    except ApiError as error:
        raise invalid_constraint(error.code) from None
    children = catalogue.children(node)
    body: dict[str, Any] = {"nodes": [{"id": nid, "name": name} for nid, name in children[:limit]]}
    members = catalogue.in_node(node)[:limit]
    if members:
        body["markets"] = [views.market_summary(ctx.broker.dealer, inst, ctx.now) for inst in members]
    return body


def prices(ctx: Ctx) -> Any:
    broker = ctx.broker
    inst = broker.dealer.instrument(ctx.match["epic"])
    resolution = ctx.query.get("resolution", "MINUTE")
    seconds = RESOLUTIONS.get(resolution)
    if seconds is None:
        raise bad_request("error.invalid.resolution")
    limit = int_param(ctx, "max", 10, 1, 1000)
    q = ctx.query
    now_bar = align(int(ctx.now), seconds)
    start = parse(q["from"], "error.invalid.from") if q.get("from") else None
    end = parse(q["to"], "error.invalid.to") if q.get("to") else None
    if end is not None:
        end = min(end, ctx.now)  # a `to` in the future is read as "until now"
    if start is not None and end is not None and start > end:
        raise bad_request("error.invalid.daterange")
    low, _ = broker.feed.valid_range(inst.epic)
    feed = broker.feed
    if start is not None:
        # Forward from `from`: the first `max` bars, skipping closed hours, never past `to` / now.
        first = align(int(start), seconds)
        if first < start:
            first += seconds
        last = min(align(int(end), seconds), now_bar) if end is not None else now_bar
        if end is not None and (last - first) // seconds + 1 > 1000:
            raise bad_request("error.invalid.daterange")
        bars = []
        window = limit * seconds
        while first <= last:
            upto = min(first + window - seconds, last)
            bars = feed.bars_between(inst.epic, first, upto, ctx.now, seconds)
            if len(bars) >= limit or upto >= last or window > max(64 * limit * seconds, 16 * 86_400):
                break
            window *= 4
        bars = bars[:limit]
    else:
        # Backward from `to` (or now): the latest `max` bars, skipping closed hours.
        last = min(align(int(end), seconds), now_bar) if end is not None else now_bar
        window = limit * seconds
        while True:
            first = max(last - window + seconds, low)
            bars = feed.bars_between(inst.epic, first, last, ctx.now, seconds)
            # Grow the window over closed stretches (weekends, holidays) until `max` bars are found.
            if len(bars) >= limit or first <= low or window > max(64 * limit * seconds, 16 * 86_400):
                break
            window *= 4
        bars = bars[-limit:]
    out = []
    cache = broker.rendered_bars
    for bar in bars:
        complete = bar.time + seconds <= ctx.now
        key = (inst.epic, seconds, bar.time)
        rendered = cache.get(key) if complete else None
        if rendered is None:
            rendered = _render_bar(broker, inst, bar)
            if complete:
                if len(cache) >= 20_000:
                    cache.clear()
                cache[key] = rendered
        out.append(rendered)
    return {"prices": out, "instrumentType": inst.type}


def _render_bar(broker: Broker, inst: Any, bar: Any) -> dict[str, Any]:
    side = {name: broker.feed.side_prices(inst, getattr(bar, name)) for name in ("open", "high", "low", "close")}
    return {
        "snapshotTime": fmt(bar.time, broker.config.tz_offset),
        "snapshotTimeUTC": fmt(bar.time),
        "openPrice": {"bid": side["open"][0], "ask": side["open"][1]},
        "closePrice": {"bid": side["close"][0], "ask": side["close"][1]},
        "highPrice": {"bid": side["high"][0], "ask": side["high"][1]},
        "lowPrice": {"bid": side["low"][0], "ask": side["low"][1]},
        "lastTradedVolume": int(bar.volume),
    }


def _sentiment(ctx: Ctx, epic: str) -> dict[str, Any]:
    day = int(ctx.now) // 86_400
    digest = hashlib.blake2b(f"{ctx.broker.config.seed}|{epic}|{day}".encode(), digest_size=2).digest()
    long_pct = round(20 + (int.from_bytes(digest, "big") % 6001) / 100, 2)
    return {"marketId": epic, "longPositionPercentage": long_pct,
            "shortPositionPercentage": round(100 - long_pct, 2)}


def sentiments(ctx: Ctx) -> Any:
    ids = [m.strip() for m in ctx.query.get("marketIds", "").split(",") if m.strip()]
    if not ids:
        raise bad_request("error.invalid.marketIds")
    if any(ctx.broker.catalogue.get(m) is None for m in ids):
        raise not_found("error.not-found.epic")
    return {"clientSentiments": [_sentiment(ctx, m) for m in ids]}


def sentiment(ctx: Ctx) -> Any:
    epic = ctx.match["market"]
    if ctx.broker.catalogue.get(epic) is None:
        raise not_found("error.not-found.epic")
    return _sentiment(ctx, epic)


# -- dealing -------------------------------------------------------------------------------------
def list_positions(ctx: Ctx) -> Any:
    dealer = ctx.broker.dealer
    mine = [p for p in dealer.positions.values() if p.account_id == ctx.account.account_id]
    return {"positions": [views.position(dealer, p, ctx.now) for p in sorted(mine, key=lambda p: p.created)]}


def open_position(ctx: Ctx) -> Any:
    req = deal_request(body_object(ctx), working=False)
    return {"dealReference": ctx.broker.dealer.open_market(ctx.account, req)}


def get_position(ctx: Ctx) -> Any:
    dealer = ctx.broker.dealer
    pos = dealer.own_position(ctx.account, ctx.match["deal"])
    return views.position(dealer, pos, ctx.now)


def amend_position(ctx: Ctx) -> Any:
    body = body_object(ctx)
    req = DealRequest(
        epic="", direction="BUY", size=0.0, stop_level=number(body, "stopLevel"),
        stop_distance=number(body, "stopDistance"), stop_amount=number(body, "stopAmount"),
        profit_level=number(body, "profitLevel"), profit_distance=number(body, "profitDistance"),
        profit_amount=number(body, "profitAmount"), guaranteed=flag(body, "guaranteedStop"),
        trailing=flag(body, "trailingStop"),
    )
    if req.trailing and req.stop_distance is None:
        raise bad_request("error.invalid.trailingstop")
    return {"dealReference": ctx.broker.dealer.amend_position(ctx.account, ctx.match["deal"], req)}


def close_position(ctx: Ctx) -> Any:
    return {"dealReference": ctx.broker.dealer.close_position(ctx.account, ctx.match["deal"])}


def list_orders(ctx: Ctx) -> Any:
    dealer = ctx.broker.dealer
    mine = [o for o in dealer.orders.values() if o.account_id == ctx.account.account_id]
    return {"workingOrders": [views.working_order(dealer, o, ctx.now)
                              for o in sorted(mine, key=lambda o: o.created)]}


def create_order(ctx: Ctx) -> Any:
    req = deal_request(body_object(ctx), working=True)
    return {"dealReference": ctx.broker.dealer.create_order(ctx.account, req)}


def amend_order(ctx: Ctx) -> Any:
    body = body_object(ctx)
    level = number(body, "level")
    if level is not None and level <= 0:
        raise bad_request("error.invalid.level")
    req = DealRequest(epic="", direction="BUY", size=0.0, level=level, stop_level=number(body, "stopLevel"),
                      stop_distance=number(body, "stopDistance"), profit_level=number(body, "profitLevel"),
                      profit_distance=number(body, "profitDistance"), good_till=good_till(body))
    fields = {k for k in body if body[k] is not None} | ({"goodTillDate"} if "goodTillDate" in body else set())
    return {"dealReference": ctx.broker.dealer.amend_order(ctx.account, ctx.match["deal"], req, fields)}


def delete_order(ctx: Ctx) -> Any:
    return {"dealReference": ctx.broker.dealer.delete_order(ctx.account, ctx.match["deal"])}


def confirm(ctx: Ctx) -> Any:
    return ctx.broker.dealer.read_confirm(ctx.account, ctx.match["ref"])


PUBLIC = {create_session, encryption_key, server_time}
DEAL_ROUTES = {open_position, create_order}

ROUTES: list[tuple[str, str, Route]] = [
    ("GET", "/time", server_time),
    ("GET", "/ping", ping),
    ("GET", "/session/encryptionKey", encryption_key),
    ("POST", "/session", create_session),
    ("GET", "/session", get_session),
    ("PUT", "/session", switch_account),
    ("DELETE", "/session", logout),
    ("GET", "/accounts", accounts),
    ("GET", "/accounts/preferences", get_preferences),
    ("PUT", "/accounts/preferences", put_preferences),
    ("POST", "/accounts/topUp", top_up),
    ("GET", "/history/activity", activity),
    ("GET", "/history/transactions", transactions),
    ("GET", "/markets", markets),
    ("GET", "/markets/{epic}", market),
    ("GET", "/marketnavigation", navigation),
    ("GET", "/marketnavigation/{node}", navigation_node),
    ("GET", "/prices/{epic}", prices),
    ("GET", "/clientsentiment", sentiments),
    ("GET", "/clientsentiment/{market}", sentiment),
    ("GET", "/positions", list_positions),
    ("POST", "/positions", open_position),
    ("GET", "/positions/{deal}", get_position),
    ("PUT", "/positions/{deal}", amend_position),
    ("DELETE", "/positions/{deal}", close_position),
    ("GET", "/workingorders", list_orders),
    ("POST", "/workingorders", create_order),
    ("PUT", "/workingorders/{deal}", amend_order),
    ("DELETE", "/workingorders/{deal}", delete_order),
    ("GET", "/confirms/{ref}", confirm),
    *WATCHLIST_ROUTES,
]


