"""The six ``/watchlists`` endpoints: list, read, create, add an epic, remove an epic, delete.

Answers and refusals follow the official collection, including its two different codes for an
unknown watchlist (``error.invalid.watchlist`` when reading it, ``error.not-found.watchlist`` when
deleting it).
"""

from __future__ import annotations

from typing import Any

from . import views
from .errors import bad_request, invalid_constraint, not_found
from .inputs import Ctx, body_object
from .watchlists import Watchlist

NAME_LENGTH = (1, 20)


def _entry(watchlist: Watchlist) -> dict[str, Any]:
    return {"id": watchlist.watchlist_id, "name": watchlist.name, "editable": not watchlist.system,
            "deleteable": not watchlist.system, "defaultSystemWatchlist": watchlist.system}


def _find(ctx: Ctx, code: str) -> Watchlist:
    watchlist = ctx.broker.watchlists.lists.get(ctx.match["watchlist"])
    if watchlist is None:
        raise not_found(code)
    return watchlist


def _editable(watchlist: Watchlist) -> None:
    if watchlist.system:
        raise bad_request("error.invalid.watchlist.not-editable")


def list_watchlists(ctx: Ctx) -> Any:
    return {"watchlists": [_entry(w) for w in ctx.broker.watchlists.lists.values()]}


def get_watchlist(ctx: Ctx) -> Any:
    watchlist = _find(ctx, "error.invalid.watchlist")
    catalogue = ctx.broker.catalogue
    return {"markets": [views.market_summary(ctx.broker.dealer, catalogue.by_epic[e], ctx.now)
                        for e in watchlist.epics if e in catalogue.by_epic]}


def create_watchlist(ctx: Ctx) -> Any:
    body = body_object(ctx)
    name = body.get("name")
    if name is None:
        raise bad_request("error.null.createwatchlistrequest.name")
    if not isinstance(name, str) or not NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1]:
        raise invalid_constraint("error.size.createwatchlistrequest.name")
    epics = body.get("epics") or []
    if not isinstance(epics, list) or not all(isinstance(e, str) for e in epics):
        raise bad_request("error.invalid.epics")
    known = [e for e in epics if ctx.broker.catalogue.get(e) is not None]
    watchlist = ctx.broker.watchlists.add(name, known)
    status = "SUCCESS" if len(known) == len(epics) else "SUCCESS_NOT_ALL_INSTRUMENTS_ADDED"
    return {"watchlistId": watchlist.watchlist_id, "status": status}


def add_to_watchlist(ctx: Ctx) -> Any:
    watchlist = _find(ctx, "error.not-found.watchlist")
    epic = body_object(ctx).get("epic")
    if not isinstance(epic, str) or not epic:
        raise bad_request("error.null.epic")
    if ctx.broker.catalogue.get(epic) is None:
        raise not_found("error.not-found.epic")
    _editable(watchlist)
    if epic not in watchlist.epics:
        watchlist.epics.append(epic)
    return {"status": "SUCCESS"}


def remove_from_watchlist(ctx: Ctx) -> Any:
    watchlist = _find(ctx, "error.not-found.watchlist")
    epic = ctx.match["epic"]
    if epic not in watchlist.epics:
        raise not_found("error.not-found.epic")
    _editable(watchlist)
    watchlist.epics.remove(epic)
    return {"status": "SUCCESS"}


def delete_watchlist(ctx: Ctx) -> Any:
    watchlist = _find(ctx, "error.not-found.watchlist")
    _editable(watchlist)
    del ctx.broker.watchlists.lists[watchlist.watchlist_id]
    return {"status": "SUCCESS"}


ROUTES = [
    ("GET", "/watchlists", list_watchlists),
    ("POST", "/watchlists", create_watchlist),
    ("GET", "/watchlists/{watchlist}", get_watchlist),
    ("PUT", "/watchlists/{watchlist}", add_to_watchlist),
    ("DELETE", "/watchlists/{watchlist}", delete_watchlist),
    ("DELETE", "/watchlists/{watchlist}/{epic}", remove_from_watchlist),
]
