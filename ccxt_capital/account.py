"""Capital.com's account and its cash history, as the account methods of the ccxt surface read them.

A mixin of the exchange class, as :class:`ccxt_capital.parsing.CapitalParsing` is: ``fetch_balance``,
``fetch_my_trades`` and ``fetch_ledger`` stay in :mod:`ccxt_capital.exchange`; which of the login's accounts
is ours, the transaction history in the API's windows, the commissions per deal and the running balance
the history does not carry are here. Requests go through the exchange's ``_call``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ccxt.base.precise import Precise

from .parsing import capital_time

__all__ = ["CapitalAccount"]

if TYPE_CHECKING:
    from .connection import CapitalConnection
    from .parsing import CapitalParsing

    class _Host(CapitalConnection, CapitalParsing):
        """What the account reads need of the exchange: ccxt's helpers, the parsers, ``_call``, ``_wire``."""

else:
    _Host = object


class CapitalAccount(_Host):
    """Account reads; mixed into the exchange class before ``ccxt.async_support.Exchange``."""

    async def _current_account(self) -> dict[str, Any]:
        """GET /accounts: the session's account, else the preferred one, else the first (or {})."""
        body = await self._call("GET", "/accounts")
        accounts = [a for a in self.safe_list(body, "accounts", []) or [] if isinstance(a, dict)]
        wire = self._wire()
        current = wire.session.account_id if wire.session else None
        return next((a for a in accounts if str(a.get("accountId")) == current), None) \
            or next((a for a in accounts if a.get("preferred")), None) or (accounts[0] if accounts else {})

    async def _transactions(self, since: int | None, kind: str | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if since is not None:
            query["from"] = capital_time(since)
            query["to"] = capital_time(self._now_ms())
        else:
            query["lastPeriod"] = int(self.safe_integer(self.options, "historyDays", 30)) * 86_400
        if kind:
            query["type"] = kind
        body = await self._call("GET", "/history/transactions", params=query)
        return [t for t in self.safe_list(body, "transactions", []) or [] if isinstance(t, dict)]

    async def _commissions(self, since: int | None) -> dict[str, float]:
        out: dict[str, float] = {}
        for item in await self._transactions(since, "TRADE_COMMISSION"):
            reference = item.get("reference")
            try:
                out[str(reference)] = out.get(str(reference), 0.0) + abs(float(item.get("size") or 0))
            except (TypeError, ValueError):
                continue
        return out

    async def _complete_ledger(self, items: list[dict[str, Any]]) -> None:
        """Fill ``account``, ``before``, ``after`` and ``fee`` of entries sorted oldest first.

        Capital's history carries no running balance, but the account's cash (``deposit``: what the cash
        movements add up to) is known now, and every movement since the oldest entry is in the list:
        walking back from the newest entry, each one's ``after`` is the later one's ``before``.
        """
        account = await self._current_account()
        account_id = self.safe_string(account, "accountId")
        account_currency = self.safe_currency_code(self.safe_string(account, "currency"))
        cash = self.safe_string(self.safe_dict(account, "balance", {}) or {}, "deposit")
        for item in reversed(items):
            item["account"] = account_id
            item["fee"] = {"cost": 0.0, "currency": item["currency"]}
            if cash is None or item["currency"] != account_currency or item["amount"] is None:
                continue
            signed = Precise.string_neg(str(item["amount"])) if item["direction"] == "out" else str(item["amount"])
            before = Precise.string_sub(cash, signed)
            item["after"], item["before"] = self.parse_number(cash), self.parse_number(before)
            cash = before
