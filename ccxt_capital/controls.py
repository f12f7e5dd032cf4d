"""Operator controls at Capital.com: pre-trade limits, dry runs, trailing stops; no staging.

Around the deal lifecycle of ``orders.py``:

* **pre-trade limits** (``options['risk']``, :mod:`normalization.runtime.risk`): checked once the deal
  body is built and before the intent is journaled; this mixin answers the facts a rule asks for (the
  quote, the net position, the working orders, today's deals from the journal);
* **dry run** (``options['dryRun']`` / ``CCXT_BROKERS_DRY_RUN=1``): the deal body priced and journaled,
  never posted;
* **no staging**: Capital.com has nothing like IB's untransmitted order, so ``params['transmit'] =
  False`` raises ``NotSupported`` before anything is journaled or sent;
* **trailing stops**: Capital's trailing stop is a stop-loss *attached to the position a deal opens*
  (``trailingStop: true`` with ``stopDistance``), not a standalone order. ccxt's ``trailingAmount``
  becomes that distance (``trailingPercent``: that percentage of the deal's level, or of the quote for
  a market deal), on positions and working orders alike. A deal that would reduce an opposite position
  on a netting account is refused (``NotSupported``): there it would close the position at once
  instead of trailing it, the opposite of what the same call means at IB. Capital's own
  ``trailingStop`` / ``stopDistance`` pass through as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ccxt

from normalization.risk import last_quote, touch_price
from normalization.runtime.dryrun import dry_run_enabled, dry_run_journal, dry_run_order
from normalization.runtime.risk import RiskGate, start_of_day_ms

if TYPE_CHECKING:
    from .orders import CapitalOrders as _Base
else:
    _Base = object

EPS = 1e-9


class CapitalControls(_Base):
    """Operator controls, mixed into ``CapitalTrader`` next to the order lifecycle."""

    def _init_controls(self) -> None:
        """Read at construction: a bad limit or flag fails before anything is sent."""
        self._risk = RiskGate.from_options(self.id, self.options)
        self._dry_run = dry_run_enabled(self.id, self.options)

    # ------------------------------------------------------------------ staging, trailing stops

    def _refuse_staging(self, params: dict[str, Any]) -> None:
        """``transmit=False`` asks for IB's staging, which Capital.com does not have (``True`` is a no-op)."""
        if params.pop("transmit", None) is False:
            raise ccxt.NotSupported(f"{self.id} has no staged orders (params['transmit'] = False is IB's order "
                                    "staging); nothing was sent")

    async def _trailing_stop(self, market: dict[str, Any], kind: str, side: str, level: float | None,
                             reduce_only: bool, body: dict[str, Any], params: dict[str, Any]) -> None:
        """ccxt's trailingAmount / trailingPercent -> ``trailingStop`` + ``stopDistance`` on the deal body."""
        amount, percent = params.get("trailingAmount"), params.get("trailingPercent")
        if amount is None and percent is None:
            return
        if params.get("trailingTriggerPrice") is not None:
            raise ccxt.NotSupported(f"{self.id} Capital.com trailing stops have no activation price "
                                    "(trailingTriggerPrice); they trail from the deal's opening")
        for name in ("stopLevel", "stopDistance", "stopAmount"):
            if body.get(name) is not None:
                raise ccxt.InvalidOrder(f"{self.id} params['trailing{'Amount' if amount is not None else 'Percent'}']"
                                        f" and the deal's {name} contradict each other: both set its stop; give one")
        if reduce_only:
            raise ccxt.NotSupported(f"{self.id} a trailing stop attaches to the position a deal opens; a "
                                    "reduceOnly deal opens none")
        if not await self._hedging_mode() and await self._reducible(market, side) > EPS:
            raise ccxt.NotSupported(
                f"{self.id} Capital.com has no standalone trailing stop order: a trailing stop attaches to the "
                f"position a deal opens, and this {side} would close the opposite {market['symbol']} position at "
                "once instead; set the trailing stop on the open position at the broker")
        if amount is None:
            reference = level if level is not None else await self.risk_quote(market)
            if not reference:
                raise ccxt.ExchangeError(f"{self.id} no quote for {market['symbol']} to turn trailingPercent into "
                                         "a distance")
            amount = reference * percent / 100
        body["trailingStop"] = True
        body["stopDistance"] = self._check_price(market, amount, "trailing distance")

    # ------------------------------------------------------------------ pre-trade limits

    async def _pre_trade(self, market: dict[str, Any], side: str, client_order_id: str, size: float,
                         level: float | None, kind: str, reduce_only: bool) -> None:
        """The configured limits, before the journal and the send (a repeat of a journaled clientOrderId
        returns the first order and is not checked again)."""
        if not self._risk.active:
            return
        journal = self._journal if self._journal is not None else await self._journal_ready(flush=False)
        if journal.get(client_order_id) is not None:
            return
        await self._risk.check(self, market, side, size, level, level if kind == "limit" else None, reduce_only)

    async def _pre_edit(self, market: dict[str, Any], working: dict[str, Any], level: float | None) -> None:
        """A working order's new level against the exposure limits and the collar (its size cannot change)."""
        if not self._risk.active or level is None:
            return
        side = "buy" if working.get("direction") == "BUY" else "sell"
        limit = level if working.get("orderType") == "LIMIT" else None
        await self._risk.check(self, market, side, float(working.get("orderSize") or 0), level, limit, False,
                               edit=True)

    async def risk_quote(self, market: dict[str, Any]) -> float | None:
        return last_quote(await self.fetch_ticker(market["symbol"]))

    async def risk_position(self, market: dict[str, Any]) -> float:
        held = 0.0
        for entry in await self._positions_raw():
            data = entry.get("position") or {}
            if (entry.get("market") or {}).get("epic") == market["id"]:
                size = float(data.get("size") or 0)
                held += size if data.get("direction") == "BUY" else -size
        return held

    async def risk_open_orders(self) -> int:
        return len(await self._working_orders())

    async def risk_orders_today(self) -> int:
        journal = await self._journal_ready()  # the deferred writes first: every returned deal is counted
        return journal.count_since(start_of_day_ms(journal.now_ms()))

    # ------------------------------------------------------------------ dry run

    async def _dry_run_answer(self, market: dict[str, Any], kind: str, side: str, client_order_id: str,
                              size: float, level: float | None, reduce_only: bool,
                              body: dict[str, Any]) -> dict[str, Any]:
        """Validated, checked and priced like a real deal, journaled as a dry run, never posted."""
        reference = level if level is not None else touch_price(await self.fetch_ticker(market["symbol"]), side)
        fee = self.calculate_fee(market["symbol"], kind, side, size, reference, "taker") if reference else None
        journal = self._journal if self._journal is not None else await self._journal_ready(flush=False)
        intent = {"symbol": market["symbol"], "side": side, "type": kind, "amount": size, "price": level,
                  "trigger_price": level if kind == "stop" else None}
        request = {"method": "POST", "path": "/positions" if kind == "market" else "/workingorders", "body": body}
        return dry_run_order(self, dry_run_journal(journal), client_order_id, intent, market,
                             reference_price=reference, fee=fee, request=request, reduce_only=reduce_only)
