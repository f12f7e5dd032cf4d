"""Accounts and their cash ledger: every change of cash is a transaction, so the books add up.

Capital reports four numbers per account (as in the broker's own example, where
``balance = deposit + profitLoss``):

* ``deposit``    -- cash: funding, realized profit and loss, overnight funding, top-ups;
* ``profitLoss`` -- unrealized profit and loss of the open positions;
* ``balance``    -- equity, ``deposit + profitLoss``;
* ``available``  -- what new margin may use, ``balance - margin``.

``deposit`` is always the sum of the account's transactions, which is what the book checks assert.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalogue import LEVERAGES

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "AUD": "A$", "JPY": "¥", "CHF": "Fr", "CAD": "C$"}


def money(value: float) -> float:
    """Round to cents the way the ledger books amounts (half away from zero, no float dust)."""
    return float(round(value + (1e-9 if value >= 0 else -1e-9), 2))


@dataclass
class Transaction:
    """One cash movement, shown by GET /history/transactions."""

    ts: float
    type: str  # TRADE | SWAP | DEPOSIT | WITHDRAWAL | ...
    amount: float
    currency: str
    instrument_name: str
    note: str
    reference: str


@dataclass
class Account:
    """A CFD account: currency, cash, preferences, and its transactions."""

    account_id: str
    name: str
    currency: str
    preferred: bool
    cash: float = 0.0
    hedging: bool = False
    leverages: dict[str, int] = field(default_factory=lambda: {k: v[-1] for k, v in LEVERAGES.items()})
    transactions: list[Transaction] = field(default_factory=list)

    @property
    def symbol(self) -> str:
        return CURRENCY_SYMBOLS.get(self.currency, self.currency)

    def book(self, tx: Transaction) -> None:
        """Apply a cash movement; the amount is rounded to cents once, here."""
        tx.amount = money(tx.amount)
        self.transactions.append(tx)
        self.cash = money(self.cash + tx.amount)

    def ledger_total(self) -> float:
        return money(sum(tx.amount for tx in self.transactions))
