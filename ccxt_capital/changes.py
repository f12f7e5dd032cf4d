"""Cancel and edit: the changes a bot makes to an order Capital.com already holds.

A mixin of the exchange class next to the order lifecycle (:mod:`ccxt_capital.orders`), as IB's
cancel and modify sit in :mod:`ccxt_ibkr.orders`: ``cancel_order`` / ``edit_order`` in
:mod:`ccxt_capital.exchange` read the arguments and build the answer with ``parse_*``; what is here
goes to the broker and the journal:

* **which deal** -- any accepted id (dealReference, dealId, clientOrderId) to the working order's
  dealId, through the journal or, for an order placed elsewhere, its confirm (:meth:`CapitalChanges._target`);
* **the cancel** -- ``DELETE /workingorders/{dealId}``, repeated after a re-login only if the order is
  still there, then its confirm and the journal row's end (:meth:`CapitalChanges._cancel_working`);
* **the edit** -- a working order takes a new level, goodTillDate or stop-loss / take-profit, a filled
  order's position new stop-loss / take-profit only (``PUT`` replaces both levels, so the one not being
  changed is sent again); a rejected amendment raises the broker's reason (:meth:`CapitalChanges._amend`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import ccxt

from normalization.arguments import check_edit_target
from normalization.errors import capital_reject_exception
from normalization.runtime.journal import JournalOrder

from .orders import CAPITAL_DEAL_FIELDS, EPS

__all__ = ["CapitalChanges"]

if TYPE_CHECKING:
    from .controls import CapitalControls as _Base  # the lifecycle, and the pre-trade limits an edit meets
else:
    _Base = object


class CapitalChanges(_Base):
    """Cancel and edit, mixed into ``CapitalTrader`` next to the order lifecycle."""

    async def _target(self, id: str) -> tuple[JournalOrder | None, str | None, str | None]:
        """An order id -> (journal row, dealReference, working order's dealId); the dealId is read from the
        order's confirm when the journal does not know it (an order placed elsewhere), None if neither does."""
        row, reference, deal_id = await self._lookup(id)
        if reference is None and id.startswith(("o_", "p_")):
            reference = id
        if deal_id is None and reference is not None:
            confirm = await self._confirm(reference, wait=False)
            deal_id = self.safe_string(confirm, "dealId") if confirm else None
        return row, reference, deal_id

    async def _cancel_working(self, id: str, row: JournalOrder | None, reference: str | None,
                              deal_id: str | None) -> tuple[str, dict[str, Any] | None]:
        """DELETE the working order, then its confirm and the journal's ``canceled``: (dealId, confirm or None)."""
        if deal_id is None:
            if row is not None or reference is not None:
                raise ccxt.OrderNotFound(f"{self.id} order {id} has no working order to cancel")
            deal_id = id
        gone: list[bool] = []

        async def verify() -> bool:
            # After a 401 and a re-login: repeat the delete only if the order is still there.
            still_there = any((w.get("workingOrderData") or {}).get("dealId") == deal_id
                              for w in await self._working_orders())
            if not still_there:
                gone.append(True)
            return still_there

        try:
            answer = await self._call("DELETE", f"/workingorders/{quote(deal_id, safe='')}", kind="write",
                                      verify=verify)
        except ccxt.AuthenticationError:
            if not gone:
                raise
            answer = {}  # verify() found the order gone after the re-login: the delete went through
        except ccxt.OrderNotFound:
            raise ccxt.OrderNotFound(f"{self.id} order {id} is not open (filled, canceled or unknown)") from None
        delete_ref = self.safe_string(answer, "dealReference")
        confirm = await self._confirm(delete_ref) if delete_ref else None
        if row is not None:
            journal = await self._journal_ready()
            journal.update_status(row.client_order_id, "canceled", confirm, filled=0.0, remaining=0.0)
        return deal_id, confirm

    async def _amend(self, id: str, market: dict[str, Any], row: JournalOrder | None, reference: str | None,
                     deal_id: str, side: str | None, kind: str | None, amount: float | None, price: float | None,
                     params: dict[str, Any]) -> None:
        """PUT the new levels on the working order ``deal_id``, or else on the position it opened; raises
        the broker's reason if the amendment is rejected."""
        protection = self._protection(market, params, amount)
        working = next((w for w in await self._working_orders()
                        if (w.get("workingOrderData") or {}).get("dealId") == deal_id), None)
        if working is not None:
            path, body = await self._working_amendment(id, market, working["workingOrderData"], deal_id, side,
                                                       kind, amount, price, params, protection)
        else:
            path, body = await self._position_amendment(id, market, row, reference, deal_id, side, kind, amount,
                                                        price, protection)
        answer = await self._call("PUT", path, body=body, kind="write")
        amend_ref = self.safe_string(answer, "dealReference")
        confirm = await self._confirm(amend_ref) if amend_ref else None
        if confirm is not None and self.safe_string(confirm, "dealStatus") == "REJECTED":
            raise capital_reject_exception(self.safe_string(confirm, "rejectReason"), exchange_id=self.id)

    async def _working_amendment(self, id: str, market: dict[str, Any], data: dict[str, Any], deal_id: str,
                                 side: str | None, kind: str | None, amount: float | None, price: float | None,
                                 params: dict[str, Any], protection: dict[str, float]) -> tuple[str, dict[str, Any]]:
        """A working order's new level / goodTillDate / stop-loss / take-profit; its size cannot change."""
        self._check_edit_target(id, market, side, kind, data.get("epic"), data.get("direction"),
                                {"LIMIT": "limit", "STOP": "stop"}.get(str(data.get("orderType"))))
        if amount is not None and abs(self._check_amount(market, amount) - float(data.get("orderSize") or 0)) > EPS:
            raise ccxt.NotSupported(f"{self.id} cannot change the size of a working order; cancel and re-create it")
        body: dict[str, Any] = {}
        trigger = params.pop("triggerPrice", params.pop("stopPrice", None))
        new_level = trigger if data.get("orderType") == "STOP" and trigger is not None else price
        if new_level is not None:
            body["level"] = self._check_price(market, new_level, "price")
        good_till = params.pop("goodTillDate", None)
        if good_till is not None:
            body["goodTillDate"] = self._good_till(good_till)
        body.update(protection)
        body.update({k: v for k, v in params.items() if k in CAPITAL_DEAL_FIELDS and v is not None})
        await self._pre_edit(market, data, body.get("level"))  # pre-trade limits (controls.py)
        if not body:
            raise ccxt.ArgumentsRequired(f"{self.id} edit_order needs a new price, triggerPrice, goodTillDate, "
                                         "stopLoss or takeProfit")
        return f"/workingorders/{quote(deal_id, safe='')}", body

    async def _position_amendment(self, id: str, market: dict[str, Any], row: JournalOrder | None,
                                  reference: str | None, deal_id: str, side: str | None, kind: str | None,
                                  amount: float | None, price: float | None,
                                  protection: dict[str, float]) -> tuple[str, dict[str, Any]]:
        """The position a filled order opened: new stop-loss / take-profit only."""
        positions = await self._call("GET", "/positions")
        position = next((p for p in self.safe_list(positions, "positions", []) or []
                         if deal_id in ((p.get("position") or {}).get("dealId"),
                                        (p.get("position") or {}).get("workingOrderId"))
                         or (reference and (p.get("position") or {}).get("dealReference") == reference)), None)
        if position is None:
            raise ccxt.OrderNotFound(f"{self.id} order {id} is neither a working order nor an open position")
        self._check_edit_target(id, market, side, kind, (position.get("market") or {}).get("epic"),
                                (position.get("position") or {}).get("direction"), row.type if row else None)
        if amount is not None or price is not None:
            raise ccxt.NotSupported(f"{self.id} a filled order's position only takes new stopLoss / takeProfit")
        if not protection:
            raise ccxt.ArgumentsRequired(f"{self.id} edit_order on a position needs stopLoss or takeProfit")
        data = position["position"]
        body: dict[str, Any] = dict(protection)
        # PUT replaces both levels: keep the one not being changed.
        if "stopLevel" not in body and data.get("stopLevel") is not None:
            body["stopLevel"] = data["stopLevel"]
        if "profitLevel" not in body and data.get("profitLevel") is not None:
            body["profitLevel"] = data["profitLevel"]
        return f"/positions/{quote(data['dealId'], safe='')}", body

    def _check_edit_target(self, id: str, market: dict[str, Any], side: str | None, kind: str | None,
                           epic: str | None, direction: str | None, held_kind: str | None) -> None:
        """The order being edited must be the caller's symbol / side / type (see check_edit_target)."""
        held = self.market_by_epic(epic) if epic else None
        check_edit_target(self.id, id, {"symbol": market["symbol"], "side": side, "type": kind}, {
            "symbol": held["symbol"] if held else (market["symbol"] if epic == market["id"] else epic),
            "side": {"BUY": "buy", "SELL": "sell"}.get(str(direction)),
            "type": held_kind})
