"""Broker order states -> ccxt's ``open / closed / canceled / rejected / expired``.

IB's status string alone is not enough: a rejection arrives as "error 201, then Cancelled", a
DAY order that lapses is also "Cancelled", and "Inactive" means rejected except for a short-sale
locate hold. The decision therefore takes the trade log's error codes, ``whyHeld``, the time in
force and whether the user asked to cancel (ib-protocol.md §5).
"""

from __future__ import annotations

from collections.abc import Iterable

OPEN, CLOSED, CANCELED, REJECTED, EXPIRED = "open", "closed", "canceled", "rejected", "expired"
CCXT_STATUSES = frozenset({OPEN, CLOSED, CANCELED, REJECTED, EXPIRED})

IB_OPEN_STATES = frozenset(
    {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel", "ValidationError", "ApiUpdate"}
)
IB_DONE_STATES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})

#: Error codes whose presence in a trade log means the broker refused the order.
IB_REJECT_CODES = frozenset({103, 104, 105, 110, 200, 201, 203, 321, 355, 388, 434, 10006, 10268, 10269})
#: Time-in-force values that lapse by themselves.
LAPSING_TIFS = frozenset({"DAY", "GTD", "IOC", "FOK", "OPG"})


def ib_order_status(
    status: str,
    *,
    filled: float = 0.0,
    remaining: float | None = None,
    error_codes: Iterable[int] = (),
    why_held: str = "",
    tif: str = "",
    cancel_requested: bool = False,
) -> str:
    """The ccxt status of an IB order; see the module docstring for the rules."""
    if status == "Filled" or (status in IB_DONE_STATES and remaining == 0 and filled > 0):
        return CLOSED
    if status in IB_OPEN_STATES:
        return OPEN
    codes = set(error_codes)
    if status == "Inactive":
        return OPEN if why_held == "locate" else REJECTED
    if status == "ApiCancelled":
        return CANCELED
    if status == "Cancelled":
        if cancel_requested:
            return CANCELED
        if filled == 0 and codes & IB_REJECT_CODES:
            return REJECTED
        if tif.upper() in LAPSING_TIFS:
            return EXPIRED
        return CANCELED
    # Unknown strings: keep the order visible rather than inventing a terminal state.
    return OPEN


def ib_is_done(status: str) -> bool:
    return status in IB_DONE_STATES


# --------------------------------------------------------------------------------------------
# Capital.com

#: Working-order / position states in confirms and activity -> ccxt.
CAPITAL_CONFIRM_STATUS = {
    "OPEN": OPEN,
    "OPENED": OPEN,
    "AMENDED": OPEN,
    "PARTIALLY_CLOSED": CLOSED,
    "CLOSED": CLOSED,
    "FULLY_CLOSED": CLOSED,
    "DELETED": CANCELED,
    "EXPIRED": EXPIRED,
}


def capital_order_status(
    deal_status: str | None,
    status: str | None = None,
    *,
    working_order: bool = False,
) -> str:
    """The ccxt status of a Capital deal from its confirm.

    A market deal (POST /positions) that is ACCEPTED has filled in full: ``closed``. A working
    order that is ACCEPTED and OPEN rests: ``open``; DELETED is ``canceled``. REJECTED is
    ``rejected`` whatever else the confirm says. A confirm still pending is ``open``.
    """
    deal_status = (deal_status or "").upper()
    status = (status or "").upper()
    if deal_status == "REJECTED":
        return REJECTED
    if deal_status != "ACCEPTED":
        return OPEN
    if working_order:
        return CAPITAL_CONFIRM_STATUS.get(status, OPEN)
    if status == "DELETED":
        return CANCELED
    return CLOSED
