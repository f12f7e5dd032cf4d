"""Account operations at IB: cancel every order, today's PnL, fills older than today, fee quotes.

Mixed into ``IBTrader`` like :mod:`ccxt_ibkr.orders` (the order-side controls -- limits, dry run, staging --
are :mod:`ccxt_ibkr.controls`); ``exchange.py`` keeps the unified methods and
calls in here. Why each exists:

* ``cancel_all_orders`` cancels this clientId's working orders only: a bot must not take down the
  orders another bot (another clientId) or a person in TWS placed. IB's ``reqGlobalCancel`` (every
  order of the account, whichever client) is sent only on an explicit ``params['allClients']``.
  Each cancel lands in the journal through the order-status hooks, as a single cancel does.
* ``reqPnL`` is the one source of *today's* realized PnL: account values carry only the figures
  since the position was opened.
* IB's ``reqExecutions`` returns today's executions only; the journal holds every fill this
  account's bots recorded, so with a ``since`` the fills IB no longer reports are served from it
  (``info['source'] == 'journal'``), each once: an execId IB reported is never added again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import ccxt

from normalization.fees import ib_quote
from normalization.runtime.journal_views import journal_trades

from .parsing import is_done

if TYPE_CHECKING:
    from ._ib import Trade
    from .orders import _Base
else:
    _Base = object

class IBOperations(_Base):
    """Cancel-all, PnL today, journal fills and fee quotes, mixed into ``IBTrader``."""

    async def _cancel_all(self, symbol: str | None, params: dict[str, Any]) -> list[dict[str, Any]]:
        all_clients = bool(params.get("allClients"))
        await self._ready()
        self._check_live()
        market = await self._market(symbol) if symbol is not None else None
        if all_clients and market is not None:
            raise ccxt.BadRequest(f"{self.id} cancel_all_orders: allClients cancels every order of the account; "
                                  "it cannot be limited to one symbol")
        if all_clients:  # other clients' orders placed since the startup sync: list them too
            await self._list_orders_at_ib(executions=False)
        own = self.transport.client_id
        targets: list[Trade] = [
            t for t in self.transport.open_trades()
            if not is_done(t) and (all_clients or t.order.clientId == own)
            and (market is None or t.contract.conId == int(market["id"]))
        ]
        ids = {t.order.orderId for t in targets}
        for trade in targets:
            self._cancel_requested.add(trade.order.orderId)
        self._follow_in_journal(targets)
        if all_clients:
            self.transport.global_cancel()
        else:
            for trade in targets:
                if trade.order.parentId not in ids:  # a bracket's children go with their parent
                    self.transport.cancel(trade.order)
        timeout = float(self.options.get("orderTimeout", 10.0))
        mine = [t for t in targets if t.order.clientId == own]
        await asyncio.gather(*(self.transport.wait_trade(t, is_done, timeout) for t in mine))
        left = [t for t in mine if not is_done(t)]
        if left:
            names = ", ".join(str(t.order.orderRef or t.order.orderId) for t in left)
            raise ccxt.RequestTimeout(f"{self.id} cancel_all_orders: IB did not confirm the cancel of {names} "
                                      f"within {timeout:g} s; fetch_open_orders shows what is still working")
        if len(mine) < len(targets):
            # IB reports another client's order status to that client only; its end state is in the
            # completed orders (asked after our own cancels were confirmed, so after the global cancel).
            await self._list_orders_at_ib(executions=False)
            targets = [t if t in mine else self._completed.get(t.order.permId, t) for t in targets]
        return [await self._parse_trade_order(t) for t in targets]

    def _follow_in_journal(self, trades: list[Trade]) -> None:
        """Journal the end of orders this process did not place (an earlier run's, another process's)
        that it is about to cancel: the status hook follows only the orders it tracks."""
        journal = self._journal
        if journal is None:
            return
        for trade in trades:
            ref = trade.order.orderRef
            if ref and ref not in self._live_refs:
                row = journal.get(ref)
                if row is not None and row.is_open:
                    self._live_refs[ref] = "open"

    async def _pnl_today(self) -> dict[str, Any] | None:
        """reqPnL's figures for the account (base currency), or None when IB sends none."""
        account = self.transport.account
        pnl = await self.transport.pnl(account) if account else None
        if pnl is None:
            return None

        def number(value: Any) -> float | None:
            return None if value is None or value != value or abs(value) > 1e300 else float(value)  # NaN / UNSET

        return {"daily": number(pnl.dailyPnL), "realized": number(pnl.realizedPnL),
                "unrealized": number(pnl.unrealizedPnL), "source": "reqPnL"}

    def _journal_trades(self, symbol: str | None, since: int | None, seen: set[str]) -> list[dict[str, Any]]:
        """Fills since ``since`` that the journal holds and IB no longer reports (older than its day)."""
        if since is None or self._journal is None:
            return []
        trades = journal_trades(self, self._journal, since=since, symbol=symbol, exclude=seen)
        for trade in trades:  # the order id IB's own fills carry (permId based), from the journaled execution
            info = trade["info"]
            if info.get("orderId") is not None:
                trade["order"] = self.ib_order_id(info["orderId"], info.get("clientId"), info.get("permId"))
        return trades

    def _quote_fee(self, symbol: str, type: str, side: str, amount: float, price: float, taker_or_maker: str,
                   params: dict[str, Any]) -> dict[str, Any]:
        market = self.market(symbol)
        try:
            return ib_quote(market, amount, price, taker_or_maker, self.options, params)
        except (LookupError, ValueError) as exc:
            raise ccxt.NotSupported(f"{self.id} calculate_fee: {exc}; set options['commissions']['venues']") from exc
