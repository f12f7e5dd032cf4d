"""Account operations at Capital.com: cancel every working order, account figures and today's
realized PnL, fee quotes.

Mixed into ``CapitalTrader`` like :mod:`ccxt_capital.orders`; ``exchange.py`` keeps the unified
methods and calls in here. Why each exists:

* ``cancel_all_orders``: Capital has no bulk cancel; each working order goes through the adapter's
  own ``cancel_order`` (DELETE /workingorders/{dealId}, confirmed, journaled), so a cancel-all is as
  safe as a cancel. An order that fills while the others are being cancelled is left out, not an error.
* Today's realized PnL: the account's ``profitLoss`` is the open positions' running PnL; what was
  realized today is the sum of today's ``TRADE`` transactions (GET /history/transactions), the same
  lines the ledger shows. "Today" is the UTC day, as the platform's statements use.
* Fees: Capital.com CFDs carry no commission, the cost is in the spread; overnight funding is
  shown apart (:func:`normalization.fees.capital_quote`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ccxt

from normalization.fees import capital_quote

if TYPE_CHECKING:
    from .orders import CapitalOrders as _Base
else:
    _Base = object

DAY_MS = 86_400_000
ACCOUNT_FIGURES = ("balance", "deposit", "profitLoss", "available")


class CapitalOperations(_Base):
    """Cancel-all, account figures and fee quotes, mixed into ``CapitalTrader``."""

    async def _cancel_all(self, symbol: str | None, params: dict[str, Any]) -> list[dict[str, Any]]:
        await self.load_markets()
        self._check_live()
        market = self.market(symbol) if symbol is not None else None
        canceled = []
        for entry in await self._working_orders():
            data = entry.get("workingOrderData") or {}
            if market is not None and data.get("epic") != market["id"]:
                continue
            try:
                canceled.append(await self.cancel_order(str(data.get("dealId")), None, dict(params)))
            except ccxt.OrderNotFound:
                continue  # filled (or cancelled elsewhere) since the list was read: nothing to cancel
        return canceled

    async def _account_figures(self, account: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(``info['account']``, ``info['pnlToday']``) for one account of GET /accounts."""
        values = account.get("balance") or {}
        figures: dict[str, Any] = {k: self.safe_number(values, k) for k in ACCOUNT_FIGURES}
        figures["currency"] = account.get("currency")
        now = self._now_ms()
        realized = 0.0
        for item in await self._transactions(now - now % DAY_MS, "TRADE"):
            realized += self.safe_number(item, "size") or 0.0
        pnl = {"realized": round(realized, 8), "unrealized": figures["profitLoss"], "daily": None,
               "source": "history/transactions"}
        return figures, pnl

    def _quote_fee(self, symbol: str, side: str, amount: float, price: float,
                   taker_or_maker: str) -> dict[str, Any]:
        return capital_quote(self.market(symbol), side, amount, price, taker_or_maker)
