"""The life of a Capital.com order, from the checked arguments to the settled journal row.

A mixin of the exchange class, as :class:`ccxt_capital.parsing.CapitalParsing` is: the unified methods
(``create_order``, ``close_position``, ``fetch_order`` ...) stay in :mod:`ccxt_capital.exchange` as the
ccxt surface, and call in here for what a deal goes through:

1. **checks and the deal body** -- size and levels on the dealing rules' grid, good-till dates, attached
   stop-loss / take-profit, reduceOnly against the open positions (:meth:`CapitalOrders._open_deal`);
2. **the intent journaled before the send** (``sent_unknown``), so a repeated clientOrderId answers the
   first order, also after a restart;
3. **the send, once** -- a deal whose answer was lost is looked up in the activity history
   (:meth:`CapitalOrders._find_lost_deal`), never sent again unless the broker provably never got it;
4. **the confirm and the settled row** (:meth:`CapitalOrders._settle`) -- ids, fills and status, written
   after the answer is returned (:meth:`ccxt_capital.journaling.CapitalJournaling._defer`), riding on the
   next request;
5. **reconciliation** -- the broker's books as a :class:`~normalization.runtime.reconcile.BrokerSnapshot`
   matched against the journal after a restart or a reconnect; the books and reconciliation are read in
   :mod:`ccxt_capital.books` (:meth:`~ccxt_capital.books.CapitalBooks.reconcile_journal`).

Cancel and edit, the changes to an order the broker already holds, are in :mod:`ccxt_capital.changes`.
It sends through the exchange's ``_call`` (connection gate, execution breaker, transport) and never
touches HTTP itself.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import ccxt
import ccxt.async_support

from normalization import client_ids
from normalization.arguments import OrderRules, check_repeat
from normalization.errors import capital_reject_exception
from normalization.orders import amount_on_grid, positive_number, price_on_grid, require_within
from normalization.runtime.journal import (
    RETRYABLE_PREFIX,
    SENT_UNKNOWN,
    JournalOrder,
    OrderJournal,
)
from normalization.runtime.latency import LatencyBook, Stamps
from normalization.runtime.latency import now as latency_now
from normalization.runtime.reconcile import ReconcileReport
from normalization.runtime.retry import RequestNotSent, retry_if_never_sent
from normalization.runtime.settle import Placements, ReconciliationPending, placed_before, settle
from normalization.runtime.supervisor import ConnectionSupervisor

from . import activity
from .journaling import CapitalJournaling
from .parsing import DIRECTIONS, FILL_ACTIONS, CapitalParsing, capital_time
from .transport import CapitalTransport, SentButUnknown

__all__ = ["CAPITAL_DEAL_FIELDS", "CAPITAL_ORDER_RULES", "DAY_MS", "EPS", "CapitalOrders", "OrderHost"]

log = logging.getLogger("ccxt_capital")

DAY_MS = 86_400_000
EPS = 1e-9
#: Journal reason prefix of a placement that provably never reached the books (retry allowed).
RETRYABLE = RETRYABLE_PREFIX
#: Deal fields a caller may pass in ``params`` verbatim (capital-api.md §4).
CAPITAL_DEAL_FIELDS = frozenset({"trailingStop", "stopDistance", "stopAmount", "profitDistance", "profitAmount"})
#: What create_order / edit_order accept beyond ccxt's unified params (README): the adapter's own params and
#: Capital's deal-body fields, passed through as the broker spells them.
CAPITAL_ORDER_RULES = OrderRules(
    exchange_id="capitalcom",
    extra_params={name: (str, int, float) for name in ("goodTillDate", "expiry", "expireTime", "goodTillTime")}
    | {"guaranteedStop": (bool,), "transmit": (bool,)},
    broker_fields={"trailingStop": (bool,), "stopDistance": (float,), "stopAmount": (float,),
                   "profitDistance": (float,), "profitAmount": (float,),
                   **{name: () for name in ("epic", "direction", "size", "level", "type", "stopLevel", "profitLevel")}},
    reserved=frozenset({"epic", "direction", "size", "level", "type", "stopLevel", "profitLevel"}),
    broker_name="Capital deal",
)


def _reason(error: BaseException) -> str:
    """A refusal as the journal keeps it: ``<ccxt class>: <message>``, so a repeat raises the same class."""
    return f"{type(error).__name__}: {error}"


def _rejection(reason: str | None, exchange_id: str) -> ccxt.BaseError:
    """The exception a repeated clientOrderId gets for a first placement that was refused."""
    text = (reason or "").removeprefix(RETRYABLE)
    name, _, message = text.partition(": ")
    cls = getattr(ccxt, name, None)
    if isinstance(cls, type) and issubclass(cls, ccxt.BaseError) and message:
        return cls(message)
    return capital_reject_exception(text or None, exchange_id=exchange_id)


class OrderHost(Protocol):
    """What the order lifecycle needs from the exchange it is mixed into (the rest is ccxt's ``Exchange``
    and :class:`~ccxt_capital.parsing.CapitalParsing`); :class:`~ccxt_capital.connection.CapitalConnection`
    provides the first group, the exchange ``_market`` / ``fetch_order``, :class:`~ccxt_capital.books.CapitalBooks`
    the last three."""

    supervisor: ConnectionSupervisor
    _transport: CapitalTransport | None

    def _wire(self) -> CapitalTransport: ...
    async def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                    kind: str | None = None, verify: Callable[[], Awaitable[bool]] | None = None,
                    gated: bool = True) -> Any: ...
    def _check_live(self) -> None: ...
    def _clock(self) -> Callable[[], float]: ...
    def _sleeper(self) -> Callable[[float], Awaitable[Any]]: ...
    def _now_ms(self) -> int: ...
    def _account_currency(self) -> str | None: ...
    async def _market(self, symbol: str) -> dict[str, Any]: ...
    async def fetch_order(self, id: str, symbol: str | None = None, params: dict[str, Any] = ...) -> dict[str, Any]: ...
    # the broker's books (books.py)
    def _remember_reference(self, deal_id: str | None, reference: str | None) -> None: ...
    async def _positions_raw(self) -> list[dict[str, Any]]: ...
    async def reconcile_journal(self) -> ReconcileReport: ...


if TYPE_CHECKING:
    class _Base(CapitalJournaling, CapitalParsing, ccxt.async_support.Exchange, OrderHost):
        pass
else:
    _Base = CapitalJournaling


class CapitalOrders(_Base):
    """The order lifecycle; mixed into the exchange class before ``ccxt.async_support.Exchange``."""

    def _init_orders(self) -> None:
        """The lifecycle's state, set before ccxt's constructor runs (it may already call into us)."""
        self._init_journal()
        #: dealReferences being settled right now: never adopted by another row's lost-deal search.
        self._inflight: set[str] = set()
        self._last_lookup_ambiguous = False
        self._placing = Placements()
        #: Stage stamps of the orders placed here (normalization.runtime.latency), for order['info']['latency'].
        self._latency = LatencyBook()
        #: dealId -> dealReference of working orders: an order's one id (see books.py, _reference_of).
        self._references: dict[str, str] = {}

    # ================================================================== argument checks, the deal body

    def _check_amount(self, market: dict[str, Any], amount: Any) -> float:
        """Truncated to the dealing rules' size increment as ccxt's amount_to_precision does (Capital answers
        an off-increment size with a 400), then held to the min / max deal size;
        ``options['strictPrecision']`` refuses an amount off the increment instead."""
        symbol = market["symbol"]
        value = amount_on_grid(positive_number(amount, "amount", self.id), market["precision"]["amount"], symbol,
                               self.id, bool(self.options.get("strictPrecision")))
        limits = market["limits"]["amount"]
        require_within(value, limits["min"], limits["max"], "amount", symbol, self.id)
        return value

    def _check_price(self, market: dict[str, Any], price: Any, what: str) -> float:
        """Rounded to the tick as ccxt's price_to_precision does; ``options['strictPrecision']`` refuses."""
        return price_on_grid(positive_number(price, what, self.id), market["precision"]["price"], market["symbol"],
                             self.id, bool(self.options.get("strictPrecision")), what)

    def _good_till(self, value: Any) -> str:
        """ms / seconds / ISO string / datetime -> the API's ``YYYY-MM-DDTHH:MM:SS`` (UTC)."""
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            return capital_time(moment.timestamp() * 1000)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ms = value if value > 1e11 else value * 1000
            return capital_time(ms)
        if isinstance(value, str):
            parsed = self.parse8601(value if value[-1:] == "Z" or "+" in value else value + "Z")
            if parsed is not None:
                return capital_time(parsed)
        raise ccxt.InvalidOrder(f"{self.id} goodTillDate {value!r} is not a date (ms, ISO string or datetime)")

    def _protection(self, market: dict[str, Any], params: dict[str, Any], size: float | None) -> dict[str, float]:
        """ccxt's stopLoss / takeProfit dicts (checked by normalization.arguments) -> stopLevel / profitLevel.

        Capital attaches one level to the whole deal: a dict's ``amount`` smaller than the deal's is a
        partial stop Capital cannot book (NotSupported), and a level given twice (the dict and Capital's own
        ``stopDistance`` / ``stopAmount`` ...) is a contradiction (InvalidOrder naming both)."""
        out: dict[str, float] = {}
        for dict_key, field, own in (("stopLoss", "stopLevel", ("stopDistance", "stopAmount")),
                                     ("takeProfit", "profitLevel", ("profitDistance", "profitAmount"))):
            spec = params.pop(dict_key, None)
            if spec is None:
                continue
            for name in own:
                if params.get(name) is not None:
                    raise ccxt.InvalidOrder(f"{self.id} params['{dict_key}'] and params['{name}'] contradict each "
                                            "other: both set the same level; give one")
            if spec.get("price") is not None and not math.isclose(spec["price"], spec["triggerPrice"]):
                raise ccxt.InvalidOrder(f"{self.id} {dict_key} with a limit price is not supported; "
                                        "Capital closes at the trigger level (stopLevel/profitLevel)")
            amount = spec.get("amount")
            if amount is not None and size is not None and not math.isclose(amount, size, rel_tol=1e-9):
                raise ccxt.NotSupported(f"{self.id} {dict_key} amount {amount:g} differs from the order's {size:g}: "
                                        f"Capital's {field} protects the whole deal")
            out[field] = self._check_price(market, spec["triggerPrice"], dict_key)
        return out

    async def _hedging_mode(self) -> bool:
        """Whether the account keeps both directions open side by side (read fresh: it can be switched
        from the broker's platform at any time, and a stale False would let reduceOnly open a hedge)."""
        body = await self._call("GET", "/accounts/preferences")
        return bool(self.safe_bool(body, "hedgingMode", False))

    async def _reducible(self, market: dict[str, Any], side: str) -> float:
        """Size an order on ``side`` can close without opening the other way (netting accounts)."""
        body = await self._call("GET", "/positions")
        opposite = "SELL" if side == "buy" else "BUY"
        total = 0.0
        for entry in self.safe_list(body, "positions", []) or []:
            data = entry.get("position") or {}
            epic = (entry.get("market") or {}).get("epic")
            if epic == market["id"] and data.get("direction") == opposite:
                total += float(data.get("size") or 0)
        return total

    async def _open_deal(self, market: dict[str, Any], kind: str, side: str, amount: Any, price: Any,
                         params: dict[str, Any], intent: int | None = None) -> dict[str, Any]:
        """create_order once its arguments passed normalization.arguments: the deal body built and checked
        against the market's rules, the intent journaled, the deal sent once and settled. ``intent``: the
        latency stamp of the create_order call (normalization.runtime.latency)."""
        # Most orders carry no params: everything read from them has its default then, and none of the
        # look-ups below run (a dozen pops and a loop or two, on every order before the send).
        params = dict(params) if params else {}
        if params:
            self._refuse_staging(params)  # controls.py: Capital has no untransmitted orders
        trigger = params.pop("triggerPrice", None) if params else None
        if kind == "stop_limit":
            raise ccxt.NotSupported(
                f"{self.id} stop-limit orders are not supported (Capital STOP orders fill at market)")
        size = self._check_amount(market, amount)
        level: float | None = None
        if kind == "limit":
            level = self._check_price(market, price, "price")
        elif kind == "stop":
            level = self._check_price(market, trigger, "triggerPrice")
        tif = good_till_raw = None
        protection: dict[str, float] = {}
        reduce_only = guaranteed = False
        prefix = self.safe_string(self.options, "clientOrderPrefix", client_ids.DEFAULT_PREFIX)
        if params:
            if params.pop("postOnly", None):
                raise ccxt.InvalidOrder(f"{self.id} post-only orders are not supported")
            tif = params.pop("timeInForce", None)
            tif = tif.upper() if isinstance(tif, str) else tif
            for key in ("goodTillDate", "expiry", "expireTime", "goodTillTime"):
                value = params.pop(key, None)
                if value is not None and good_till_raw is None:
                    good_till_raw = value
            if tif is None and good_till_raw is not None:
                tif = "GTD"
        if kind == "market":
            if tif not in (None, "GTC", "IOC", "FOK"):
                raise ccxt.InvalidOrder(f"{self.id} timeInForce {tif!r} is not supported for market orders")
            if good_till_raw is not None:
                raise ccxt.InvalidOrder(f"{self.id} a market order cannot have a goodTillDate")
        elif tif not in (None, "GTC", "GTD"):
            raise ccxt.InvalidOrder(f"{self.id} timeInForce {tif!r} is not supported; use GTC or GTD with goodTillDate")
        good_till = None
        if tif == "GTD" and kind != "market":
            if good_till_raw is None:
                raise ccxt.InvalidOrder(f"{self.id} timeInForce GTD needs params['goodTillDate']")
            good_till = self._good_till(good_till_raw)
        if params:
            protection = self._protection(market, params, size)
            reduce_only = bool(params.pop("reduceOnly", None))
            guaranteed = bool(params.pop("guaranteedStop", None))
            client_order_id = client_ids.take_or_generate(params, prefix)
            for key in ("clientOrderId", "clientOid", "newClientOrderId"):
                params.pop(key, None)
        else:
            client_order_id = client_ids.generate(prefix)
        self._check_live()
        self.supervisor.ensure_usable()  # fail fast before anything is recorded while reconnecting
        if reduce_only:
            reducible, hedging = await asyncio.gather(self._reducible(market, side), self._hedging_mode())
            if hedging:
                raise ccxt.NotSupported(
                    f"{self.id} reduceOnly on a hedging-mode account: Capital would open a {side} position "
                    f"beside the opposite one instead of reducing it; use close_position({market['symbol']!r})")
            if reducible <= EPS:
                raise ccxt.InvalidOrder(
                    f"{self.id} reduceOnly {side} {market['symbol']}: no opposite position to reduce")
            if size > reducible + EPS:
                size = self._check_amount(market, reducible)
        body: dict[str, Any] = {"epic": market["id"], "direction": DIRECTIONS[side], "size": size}
        if guaranteed:
            body["guaranteedStop"] = True
        if protection:
            body.update(protection)
        working = kind != "market"
        if working:
            body.update({"level": level, "type": "LIMIT" if kind == "limit" else "STOP"})
            if good_till is not None:
                body["goodTillDate"] = good_till
        # Capital's own deal fields pass through as the broker spells them; other leftovers (ccxt's
        # unified extras such as 'type' or 'marginMode') are not sent, they could change the deal.
        if params:
            body.update({k: v for k, v in params.items() if k in CAPITAL_DEAL_FIELDS})
            await self._trailing_stop(market, kind, side, level, reduce_only, body, params)  # controls.py
        await self._pre_trade(market, side, client_order_id, size, level, kind, reduce_only)  # pre-trade limits
        if self._dry_run:
            return await self._dry_run_answer(market, kind, side, client_order_id, size, level, reduce_only, body)
        # No flush of the previous deal's deferred writes here: they touch other rows, and left pending
        # they run while this deal is in flight instead of before it.
        journal = self._journal if self._journal is not None else await self._journal_ready(flush=False)
        # Intent and "the send may have left" in one commit (fsynced first with journalSync="full"): the deal
        # goes out right below, with no await in between that could let anything else see the row.
        stamps = Stamps(intent if intent is not None else latency_now())
        row, created = journal.record_intent(
            client_order_id, symbol=market["symbol"], side=side, type=kind, amount=size, price=level,
            trigger_price=level if kind == "stop" else None,
            params={"body": body, "reduceOnly": reduce_only, "timeInForce": tif or ("IOC" if not working else "GTC")},
            state=SENT_UNKNOWN, latency=stamps,
        )
        if not created:
            check_repeat(row, {"symbol": market["symbol"], "side": side, "type": kind, "amount": size,
                               "price": level, "trigger_price": level if kind == "stop" else None},
                         client_order_id, self.id)
            return await self._placed_before(journal, row, market, kind, reduce_only, body, working)
        self._latency.start(client_order_id, stamps)
        self._placing.add(client_order_id)
        try:
            return await self._place(journal, row, market, kind, reduce_only, body, working)
        except BaseException:
            journal.record_latency(client_order_id, stamps)  # a refused or unanswered deal keeps its stages too
            raise
        finally:
            self._placing.discard(client_order_id)

    # ================================================================== send once, confirm, settle

    async def _placed_before(self, journal: OrderJournal, row: JournalOrder, market: dict[str, Any], kind: str,
                             reduce_only: bool, body: dict[str, Any], working: bool) -> dict[str, Any]:
        """A clientOrderId journaled before: that order, or -- if the broker provably never received it (a
        429, a request that never left, absent from the books after the grace) -- placed now, exactly once
        per such verdict (normalization.runtime.settle.placed_before)."""

        async def place_again(claimed: JournalOrder) -> dict[str, Any]:
            self._placing.add(claimed.client_order_id)
            try:
                return await self._place(journal, claimed, market, kind, reduce_only, body, working)
            finally:
                self._placing.discard(claimed.client_order_id)

        return await placed_before(journal, row, settle_one=lambda cid: self._settle_journal([cid]),
                                   answer=self._order_from_journal, place_again=place_again, exchange_id=self.id)

    async def _settle_journal(self, cids: list[str] | None) -> None:
        """Every unresolved order among ``cids`` (None: all) settled by reconciliation, or
        ReconciliationPending after ``options['reconcileWait']`` seconds."""
        journal = await self._journal_ready()
        await settle(
            journal, cids, placements=self._placing, reconcile=self.reconcile_journal,
            timeout=float(self.safe_number(self.options, "reconcileWait", 10.0)), exchange_id=self.id,
            grace_ms=int(self.safe_integer(self.options, "reconcileGraceMs", 60_000)), flush=self._flush_deferred,
        )

    async def _place(self, journal: OrderJournal, row: JournalOrder, market: dict[str, Any], kind: str,
                     reduce_only: bool, body: dict[str, Any], working: bool) -> dict[str, Any]:
        """Send a journaled deal (its row ``sent_unknown`` already) once and settle it (see create_order)."""
        client_order_id = row.client_order_id
        path = "/workingorders" if working else "/positions"
        found_on_401: list[str] = []

        async def verify() -> bool:
            # Capital authenticates before booking, so a 401 means "not booked"; check the books anyway,
            # and re-send only if they show nothing that could be this deal.
            reference = await self._find_lost_deal(journal.get(client_order_id) or row)
            if reference is not None:
                found_on_401.append(reference)
                return False
            return not self._last_lookup_ambiguous

        def send() -> Awaitable[Any]:  # the coroutine itself: no extra frame for every resumption in flight
            return self._call("POST", path, body=body, kind="deal", verify=verify)

        reference: str | None = None
        stamps = self._latency.get(client_order_id)
        if stamps is not None:
            stamps.mark("submit")
        try:
            answer = await retry_if_never_sent(send, attempts=2, backoff=0.2, sleep=self._sleeper())
            if stamps is not None:
                stamps.mark("ack")
            reference = self.safe_string(answer, "dealReference")
        except RequestNotSent as error:
            journal.update_status(client_order_id, "rejected", reason=f"{RETRYABLE}{_reason(error)}")
            raise
        except SentButUnknown as error:
            reference = await self._find_lost_deal(journal.get(client_order_id) or row)
            if reference is None:
                # Sent, unanswered, not in the books yet: no status to show (issue #15), never a second send.
                raise ccxt.RequestTimeout(
                    f"{self.id} deal {client_order_id} was sent but not answered ({error}); its outcome is unknown. "
                    "It is never sent twice: create_order / fetch_order with the same clientOrderId return it "
                    "once reconciliation settles it") from error
        except ccxt.AuthenticationError:
            if not found_on_401:
                journal.update_status(client_order_id, "rejected", reason="not booked: session rejected (401)")
                raise
            reference = found_on_401[0]
        except ccxt.RateLimitExceeded as error:
            # Refused for the rate before it was looked at: not booked, and safe to try again later.
            journal.update_status(client_order_id, "rejected", reason=f"{RETRYABLE}{_reason(error)}")
            raise
        except (ccxt.ExchangeNotAvailable, ccxt.NetworkError) as error:
            # A 5xx: behind a proxy the deal may still have been booked. Look before calling it refused.
            reference = await self._find_lost_deal(journal.get(client_order_id) or row)
            if reference is None:
                journal.update_status(client_order_id, "rejected", reason=_reason(error))
                raise
        except ccxt.BaseError as error:
            # The broker answered with an error status: nothing was booked.
            if stamps is not None:
                stamps.mark("ack")  # its answer: a refusal
            journal.update_status(client_order_id, "rejected", reason=_reason(error))
            raise
        if reference is None:
            raise ccxt.BadResponse(f"{self.id} POST {path} answered without a dealReference")
        self._inflight.add(reference)
        try:
            return await self._settle(client_order_id, reference, market, kind, reduce_only, raise_rejected=True,
                                      defer=True)
        finally:
            self._inflight.discard(reference)

    async def _confirm(self, reference: str, wait: bool = True) -> dict[str, Any] | None:
        """GET /confirms/{ref}, polled while it is not ready (404) or the broker stumbles (5xx, a dropped
        read) for at most ``confirmTimeout`` seconds -- on the injected clock and on the monotonic one,
        whichever runs out first, so a frozen test clock can never make it poll forever."""
        clock = self._clock()
        started, real_started = clock(), time.monotonic()
        path = f"/confirms/{quote(reference, safe='')}"
        polling: tuple[float, float, Callable[[float], Awaitable[Any]]] | None = None
        interval = 0.0
        while True:
            try:
                return await self._call("GET", path, gated=False)
            except ccxt.OrderNotFound:
                if not wait:
                    return None
            except (ccxt.ExchangeNotAvailable, ccxt.NetworkError) as error:
                if not wait or isinstance(error, ccxt.AuthenticationError):
                    raise
                log.info("%s: confirm %s not readable yet (%s); polling on", self.id, reference, error)
            if polling is None:  # the usual confirm is ready at once: the poll settings are read only if not
                timeout = float(self.safe_number(self.options, "confirmTimeout", 10.0))
                polling = (started + timeout, real_started + timeout, self._sleeper())
                interval = float(self.safe_number(self.options, "confirmPollInterval", 0.05))
            deadline, real_deadline, sleep = polling
            if clock() >= deadline or time.monotonic() >= real_deadline:
                return None
            await sleep(interval)
            interval = min(interval * 2, 0.5)

    async def _settle(self, cid: str, reference: str, market: dict[str, Any], kind: str, reduce_only: bool,
                      raise_rejected: bool, defer: bool = False) -> dict[str, Any]:
        """Wait for the confirm, record the outcome in the journal, return the order (or raise the reject).

        ``defer`` (a fresh placement): an accepted deal's ids, fills and status are journaled right after
        the order is returned (see :meth:`_defer` for why that is safe); a rejection, or no confirm at
        all, is written before the call returns or raises.
        """
        journal = self._journal if defer and self._journal is not None else await self._journal_ready(flush=not defer)
        confirm = await self._confirm(reference)
        if confirm is None:
            log.warning("%s: no confirm for %s within the timeout; reporting it open", self.id, reference)
            self._flush_deferred()
            journal.update_status(cid, "acknowledged", ids={"deal_reference": reference},
                                  latency=self._latency.get(cid))
            return self._journal_order(journal.get(cid))
        order = self.parse_confirm_order(confirm, market, kind if kind != "market" else None)
        self._remember_reference(self.safe_string(confirm, "dealId"), reference)
        stamps = self._latency.get(cid)
        if stamps is not None and order["filled"]:
            stamps.fill()  # a market deal's confirm: filled, as far as this library can tell, now
        if order["status"] == "rejected":
            self._flush_deferred()
            reason = self.safe_string(confirm, "rejectReason") or "rejected"
            journal.update_status(cid, "rejected", confirm, reason=reason,
                                  ids={"deal_reference": reference, "deal_id": self.safe_string(confirm, "dealId")})
            if raise_rejected:
                raise capital_reject_exception(reason, exchange_id=self.id)
        else:
            filled_market = order["status"] == "closed" and kind == "market"
            fills: list[tuple[str, float, float]] = []
            if filled_market:
                whole = self._whole_fill(confirm, order)
                fills = whole if whole is not None else await self._split_fills(reference)
            self._journal_outcome(journal, cid, reference, confirm, order, fills, defer, stamps)
        order["clientOrderId"] = cid
        order["reduceOnly"] = reduce_only
        if isinstance(order.get("info"), dict):  # the confirm, parsed for this call (the journal has its copy)
            order["info"]["latency"] = self._latency.metrics(cid, None)
        return order

    def _journal_outcome(self, journal: OrderJournal, cid: str, reference: str, confirm: dict[str, Any],
                         order: dict[str, Any], fills: list[tuple[str, float, float]], defer: bool,
                         stamps: Stamps | None = None) -> None:
        """A settled deal into the journal: its ids, fills and status in one transaction (a crash leaves
        all of it or none: none is the state of a lost answer, which reconciliation resolves).

        Everything is read from ``order`` now, not when a deferred write runs: the caller owns the
        returned order (and its ``info``) and may change it meanwhile; the journal gets its own copy.
        """
        deal_id = self.safe_string(confirm, "dealId")
        info = dict(confirm)
        status, filled, remaining = order["status"], order["filled"], order["remaining"]
        symbol, side, timestamp = order["symbol"], order["side"], order["timestamp"]
        currency = self._account_currency()
        executions = [
            {"exec_id": f"{reference}:{fill_deal_id}", "amount": amount, "price": price, "client_order_id": cid,
             "order_id": reference, "symbol": symbol, "side": side, "timestamp": timestamp, "fee_cost": 0.0,
             "fee_currency": currency, "info": {"dealId": fill_deal_id, "confirm": info}}
            for fill_deal_id, amount, price in fills
        ]

        def outcome() -> None:
            journal.update_status(cid, status, info, filled=filled, remaining=remaining,
                                  ids={"deal_reference": reference, "deal_id": deal_id}, fills=executions,
                                  latency=stamps)

        if defer:
            self._defer(outcome)
        else:
            outcome()

    @staticmethod
    def _whole_fill(confirm: dict[str, Any], order: dict[str, Any]) -> list[tuple[str, float, float]] | None:
        """A filled market deal's execution as ``[(dealId, amount, price)]`` when it opened or closed one
        position (journaled as exec id ``<dealReference>:<dealId>``, as fetch_my_trades names them; fee 0,
        Capital is spread-only); ``None`` when netting split it over several (:meth:`_split_fills`). Plain
        code, not a coroutine: it is the usual case, on every market order's way back to the caller."""
        affected = [a for a in confirm.get("affectedDeals") or [] if isinstance(a, dict)]
        if len(affected) > 1:
            return None
        deal_id = (affected[0].get("dealId") if affected else None) or confirm.get("dealId")
        return [(str(deal_id), float(order["filled"] or 0), float(order["average"] or 0))]

    async def _split_fills(self, reference: str) -> list[tuple[str, float, float]]:
        """The executions of a deal that netting split over several positions, one per position, from the
        activity history (their sizes are there). Empty if it cannot be read now: reconciliation adds them."""
        try:
            body = await self._call("GET", "/history/activity", params={"lastPeriod": 600, "detailed": "true"},
                                    gated=False)
        except ccxt.BaseError as error:
            log.info("%s: fills of %s left to reconciliation (%s)", self.id, reference, error)
            return []
        fills: list[tuple[str, float, float]] = []
        for entry in self.safe_list(body, "activities", []) or []:
            details = entry.get("details") or {}
            actions = [a.get("actionType") for a in details.get("actions") or [] if isinstance(a, dict)]
            if (details.get("dealReference") == reference and entry.get("type") == "POSITION"
                    and entry.get("status") == "ACCEPTED" and any(a in FILL_ACTIONS for a in actions)):
                fills.append((str(entry.get("dealId")), float(details.get("size") or 0),
                              float(details.get("level") or 0)))
        return fills

    async def _find_lost_deal(self, row: JournalOrder) -> str | None:
        """The dealReference of a deal we sent but never heard back from, from the activity history.

        A match must be on the same epic and direction, for the same total size, booked after the
        intent was recorded (on the broker's clock: the offset is measured with GET /time), and owned
        by no other journaled order. Two or more matches are ambiguous: nothing is adopted (and a 401
        is then not re-sent); the order stays unresolved until reconciliation.
        """
        self._last_lookup_ambiguous = False
        journal = await self._journal_ready()
        body = row.params.get("body") or {}
        try:
            before = self._now_ms()
            server_now = self.safe_integer(await self._wire().public("GET", "/time"), "serverTime")
            offset = (server_now or before) - (before + self._now_ms()) // 2
            period = int(min(max((self._now_ms() - row.created) / 1000 + 120, 60), 86_400))
            found = await self._call("GET", "/history/activity", params={"lastPeriod": period, "detailed": "true"},
                                     gated=False)
        except ccxt.BaseError as error:
            log.warning("%s: cannot read the activity history to resolve %s: %s", self.id, row.client_order_id, error)
            self._last_lookup_ambiguous = True
            return None
        created = row.created + offset - 2_000  # a little slack for the clocks' resolution
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in activity.link([e for e in self.safe_list(found, "activities", []) or [] if isinstance(e, dict)]):
            details = entry.get("details") or {}
            reference = details.get("dealReference")
            if not reference or entry.get("epic") != body.get("epic") or entry.get("source") not in ("USER", None):
                continue
            if details.get("direction") != body.get("direction") or reference in self._inflight:
                continue
            groups.setdefault(reference, []).append(entry)
        candidates = []
        for reference, entries in groups.items():
            owner = journal.find_by(deal_reference=reference)
            if owner is not None:
                if owner.client_order_id == row.client_order_id:
                    return reference
                continue
            when = min(self.parse_capital_date(e.get("dateUTC") or e.get("date")) or 0 for e in entries)
            if when < created:
                continue
            working = [e for e in entries if e.get("type") == "WORKING_ORDER"]
            sizes = [float((e.get("details") or {}).get("size") or 0) for e in (working[:1] or entries)]
            if abs(sum(sizes) - float(body.get("size") or 0)) > EPS:
                continue
            candidates.append(reference)
        if len(candidates) > 1:
            log.warning("%s: %d deals could be %s; not guessing", self.id, len(candidates), row.client_order_id)
            self._last_lookup_ambiguous = True
            return None
        return candidates[0] if candidates else None

    def _journal_order(self, row: JournalOrder | None) -> dict[str, Any]:
        """What the journal alone knows, as a ccxt order (id = dealReference, else the clientOrderId)."""
        if row is None:
            raise ccxt.OrderNotFound(f"{self.id} order is not in the journal")
        if row.unresolved:
            raise ReconciliationPending(
                f"{self.id} order {row.client_order_id}: Capital.com has not confirmed whether it received it; "
                "ask again shortly")
        market = self.markets.get(row.symbol) if self.markets else None
        confirm = row.info if isinstance(row.info, dict) else {}
        status = row.ccxt_status
        filled = row.filled if row.filled is not None else (row.amount if status == "closed" else 0.0)
        timestamp = row.created
        order_type = row.type if row.type in ("market", "limit", "stop") else None
        return self.safe_order(
            {
                "id": row.deal_reference or row.client_order_id,
                "clientOrderId": row.client_order_id,
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "lastTradeTimestamp": None,
                "symbol": row.symbol,
                "type": order_type,
                "timeInForce": (row.params or {}).get("timeInForce"),
                "postOnly": False,
                "reduceOnly": (row.params or {}).get("reduceOnly"),
                "side": row.side,
                "price": row.price,
                "triggerPrice": row.trigger_price,
                "amount": row.amount,
                "filled": filled,
                "remaining": None if status == "open" else 0.0,
                "average": (self.safe_number(confirm, "level")
                            if status == "closed" and order_type == "market" else None),
                "status": status,
                "fee": None,
                "trades": None,
                "info": {"journal": {"state": row.state, "reason": row.reason}, "confirm": confirm or None,
                         "latency": self._latency.metrics(row.client_order_id, row.latency)},
            },
            market,
        )

    async def _order_from_journal(self, row: JournalOrder, raise_rejected: bool = True) -> dict[str, Any]:
        """The first order placed under a clientOrderId (the idempotent answer to a repeat: a first
        placement that was refused is refused again, with the same exception class)."""
        if row.never_received:
            raise ccxt.OrderNotFound(
                f"{self.id} order {row.client_order_id} never reached Capital.com ({row.reason}); placing the same "
                "clientOrderId again sends it once")
        if row.state == "rejected" and raise_rejected:
            raise _rejection(row.reason, self.id)
        if row.unresolved:
            await self._settle_journal([row.client_order_id])
            journal = await self._journal_ready()
            settled = journal.get(row.client_order_id) or row
            if settled.state != row.state or settled.deal_reference != row.deal_reference:
                return await self._order_from_journal(settled, raise_rejected)
        if row.deal_reference is None and row.state == "sent_unknown":
            reference = await self._find_lost_deal(row)
            if reference is not None:
                journal = await self._journal_ready()
                journal.attach_ids(row.client_order_id, deal_reference=reference)
                market = self.market(row.symbol)
                return await self._settle(row.client_order_id, reference, market, row.type,
                                          bool(row.params.get("reduceOnly")), raise_rejected=False)
        if row.deal_reference is None:
            return self._journal_order(row)
        try:
            return await self.fetch_order(row.deal_reference, row.symbol)
        except ccxt.OrderNotFound:
            return self._journal_order(row)

    async def _lookup(self, id: str) -> tuple[JournalOrder | None, str | None, str | None]:
        """Any accepted order id (dealReference, dealId, clientOrderId) -> (journal row, reference, dealId)."""
        if not isinstance(id, str) or not id:
            raise ccxt.ArgumentsRequired(f"{self.id} needs an order id")
        journal = await self._journal_ready()
        row = journal.find_by(deal_reference=id) or journal.get(id) or journal.find_by(deal_id=id)
        if row is not None:
            return row, row.deal_reference, row.deal_id
        return None, None, None

    def _with_journal(self, order: dict[str, Any], row: JournalOrder | None) -> dict[str, Any]:
        """An order as the broker lists it, with what the journal adds: our ids, the type we placed, its
        latency (``info['latency']``; a fill seen here for the first time is stamped and journaled)."""
        info = order.get("info")
        if row is None:
            if isinstance(info, dict):
                info["latency"] = self._latency.metrics(None, None)
            return order
        stamps = row.latency
        if order.get("filled") and self._journal is not None:
            seen = self._latency.fill_seen(row.client_order_id, stamps)
            if seen is not None:
                self._journal.record_latency(row.client_order_id, seen)
                stamps = seen
        if isinstance(info, dict):
            info["latency"] = self._latency.metrics(row.client_order_id, stamps)
        order["clientOrderId"] = row.client_order_id
        if row.deal_reference:
            order["id"] = row.deal_reference
        if row.type in ("limit", "stop") and order.get("type") != row.type:
            order["type"] = row.type
            if row.type == "stop":
                order["triggerPrice"] = order.get("triggerPrice") or order.get("price") or row.trigger_price
                order["stopPrice"] = order["triggerPrice"]
            elif row.type == "limit":
                order["triggerPrice"] = order["stopPrice"] = None
        if order.get("price") is None and row.type in ("limit", "stop"):
            order["price"] = row.price
        reduce_only = (row.params or {}).get("reduceOnly")
        if reduce_only is not None:
            order["reduceOnly"] = reduce_only
        return order

    # ================================================================== closing positions

    async def _close_positions(self, symbol: str, market: dict[str, Any], side: str | None,
                               params: dict[str, Any]) -> dict[str, Any]:
        """close_position once its arguments passed normalization.arguments: one journaled leg per position."""
        self._check_live()
        self.supervisor.ensure_usable()
        params = dict(params or {})
        prefix = self.safe_string(self.options, "clientOrderPrefix", client_ids.DEFAULT_PREFIX)
        cid = client_ids.take_or_generate(params, prefix)
        journal = await self._journal_ready()
        known = journal.get(cid)
        if known is not None:  # a repeat: the first close, settled; placed again only if never received
            await self._settle_journal([cid])
            known = journal.get(cid) or known
            if not known.never_received:
                return await self._order_from_journal(known)
        wanted = {"long": "BUY", "short": "SELL"}.get(side or "", None)
        targets = [p["position"] for p in await self._positions_raw()
                   if (p.get("market") or {}).get("epic") == market["id"]
                   and (wanted is None or (p.get("position") or {}).get("direction") == wanted)]
        if not targets:
            raise ccxt.InvalidOrder(f"{self.id} has no open position in {symbol} to close")
        result: dict[str, Any] | None = None
        for index, data in enumerate(targets):
            leg = cid if index == 0 else f"{cid}:{index}"
            closing = "sell" if data.get("direction") == "BUY" else "buy"
            size = float(data.get("size") or 0)
            body = {"epic": market["id"], "direction": DIRECTIONS[closing], "size": size}
            intent = {"body": body, "reduceOnly": True, "timeInForce": "IOC", "closes": data["dealId"]}
            if journal.get(leg) is not None:
                if journal.claim_retry(leg) is None:
                    result = await self._order_from_journal(journal.get(leg))  # type: ignore[arg-type]
                    continue
            else:
                _, created = journal.record_intent(leg, symbol=market["symbol"], side=closing, type="market",
                                                   amount=size, params=intent, state=SENT_UNKNOWN)
                if not created:  # another thread placed it meanwhile: its answer, settled
                    await self._settle_journal([leg])
                    result = await self._order_from_journal(journal.get(leg))  # type: ignore[arg-type]
                    continue
            self._placing.add(leg)
            try:
                result = await self._close_one(journal, leg, data["dealId"], market)
            finally:
                self._placing.discard(leg)
        assert result is not None
        return result

    async def _close_one(self, journal: OrderJournal, cid: str, deal_id: str, market: dict[str, Any]) -> dict[str, Any]:
        """One journaled DELETE /positions/{dealId}, settled like a placement (see _place)."""
        try:
            answer = await self._call("DELETE", f"/positions/{quote(deal_id, safe='')}", kind="write")
        except SentButUnknown as error:
            raise ccxt.RequestTimeout(
                f"{self.id} close {cid} was sent but not answered ({error}); its outcome is unknown. The same "
                "clientOrderId returns it once reconciliation settles it") from error
        except (RequestNotSent, ccxt.RateLimitExceeded) as error:
            journal.update_status(cid, "rejected", reason=f"{RETRYABLE}{_reason(error)}")
            raise
        except ccxt.BaseError as error:
            journal.update_status(cid, "rejected", reason=_reason(error))
            raise
        reference = self.safe_string(answer, "dealReference")
        if reference is None:
            raise ccxt.BadResponse(f"{self.id} DELETE /positions/{deal_id} answered without a dealReference")
        journal.attach_ids(cid, deal_reference=reference)
        order = await self._settle(cid, reference, market, "market", True, raise_rejected=True)
        row = journal.get(cid)
        if order.get("status") == "open" and row is not None and row.state == "acknowledged":
            raise ccxt.RequestTimeout(f"{self.id} close_position {market['symbol']}: no confirm within the timeout")
        return order
