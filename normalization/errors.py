"""Broker error codes -> ccxt exception classes.

Bots catch ccxt's hierarchy (``InvalidOrder`` is permanent, ``NetworkError`` is retryable), so a
wrong class means a wrong retry decision: the mapping is a table, tested, and every message keeps
the broker's own code and text so nothing is lost in translation. Tables follow ccxt's
``exceptions = {'exact': ..., 'broad': ...}`` convention.
"""

from __future__ import annotations

from ccxt.base import errors as E

ExcClass = type[E.BaseError]

# --------------------------------------------------------------------------------------------
# Interactive Brokers (ib-protocol.md §3)

IB_EXACT: dict[int, ExcClass] = {
    100: E.RateLimitExceeded,
    101: E.ExchangeError,
    103: E.DuplicateOrderId,
    104: E.InvalidOrder,
    105: E.InvalidOrder,
    110: E.InvalidOrder,
    135: E.OrderNotFound,
    161: E.OrderNotFound,
    162: E.BadRequest,  # refined by text: pacing -> RateLimitExceeded
    166: E.BadRequest,
    200: E.BadSymbol,
    201: E.InvalidOrder,  # refined by text: margin / funds -> InsufficientFunds
    203: E.PermissionDenied,
    320: E.BadRequest,
    321: E.BadRequest,
    322: E.BadRequest,
    326: E.AuthenticationError,
    354: E.PermissionDenied,
    355: E.InvalidOrder,
    388: E.InvalidOrder,
    420: E.RateLimitExceeded,
    434: E.InvalidOrder,
    501: E.NetworkError,
    502: E.ExchangeNotAvailable,
    503: E.ExchangeNotAvailable,
    504: E.NetworkError,
    1100: E.ExchangeNotAvailable,
    1300: E.NetworkError,
    2110: E.ExchangeNotAvailable,
    10006: E.InvalidOrder,
    10090: E.PermissionDenied,
    10147: E.OrderNotFound,
    10148: E.InvalidOrder,
    10168: E.PermissionDenied,
    10186: E.PermissionDenied,
    10197: E.ExchangeNotAvailable,
    10268: E.InvalidOrder,
    10269: E.InvalidOrder,
}

#: Substrings of IB's text that sharpen the class of a code (checked in order).
IB_BROAD: tuple[tuple[str, ExcClass], ...] = (
    ("pacing violation", E.RateLimitExceeded),
    ("insufficient", E.InsufficientFunds),
    ("margin", E.InsufficientFunds),
    ("buying power", E.InsufficientFunds),
    ("equity with loan", E.InsufficientFunds),
    ("maintenance", E.OnMaintenance),
)

#: Informational codes: never raised (2100-2199 are farm status messages).
IB_WARNINGS = frozenset({165, 202, 399, 404, 10167, 10349, 2109})


def ib_is_warning(code: int) -> bool:
    return code in IB_WARNINGS or 2100 <= code <= 2199


def ib_error_class(code: int, text: str = "") -> ExcClass:
    lowered = text.lower()
    for needle, cls in IB_BROAD:
        if needle in lowered and code in (162, 201, 202, 420, 2110, 1100, -1):
            return cls
    return IB_EXACT.get(code, E.ExchangeError)


def ib_exception(code: int, text: str, *, exchange_id: str = "ibkr") -> E.BaseError:
    """A ccxt exception carrying IB's code and text: ``ibkr 201: Order rejected - reason: ...``."""
    return ib_error_class(code, text)(f"{exchange_id} {code}: {text}")


def ib_cancel_state(text: str) -> str | None:
    """10148 says why a cancel failed ("... state: Filled."); return the ccxt status it implies."""
    lowered = text.lower()
    if "filled" in lowered:
        return "closed"
    if "cancel" in lowered:
        return "canceled"
    return None


# --------------------------------------------------------------------------------------------
# Capital.com (capital-api.md §2): HTTP status first, then errorCode

CAPITAL_STATUS: dict[int, ExcClass] = {
    400: E.BadRequest,
    401: E.AuthenticationError,
    403: E.PermissionDenied,
    404: E.BadRequest,
    408: E.RequestTimeout,
    409: E.InvalidOrder,
    429: E.RateLimitExceeded,
    500: E.ExchangeNotAvailable,
    502: E.ExchangeNotAvailable,
    503: E.ExchangeNotAvailable,
    504: E.RequestTimeout,
}

CAPITAL_EXACT: dict[str, ExcClass] = {
    "error.invalid.api.key": E.AuthenticationError,
    "error.invalid.details": E.AuthenticationError,
    "error.null.client.token": E.AuthenticationError,
    "error.invalid.session.token": E.AuthenticationError,
    "error.null.api.key": E.AuthenticationError,
    "error.too-many.requests": E.RateLimitExceeded,
    "error.not-found.dealId": E.OrderNotFound,
    "error.not-found.dealReference": E.OrderNotFound,
    "error.not-found.epic": E.BadSymbol,
    "error.invalid.epic": E.BadSymbol,
}

#: Broad rules on errorCode or a confirm's rejectReason (lower-cased substring -> class).
CAPITAL_BROAD: tuple[tuple[str, ExcClass], ...] = (
    ("too-many", E.RateLimitExceeded),
    ("insufficient", E.InsufficientFunds),
    ("funds", E.InsufficientFunds),
    ("margin", E.InsufficientFunds),
    ("market.closed", E.MarketClosed),
    ("market_closed", E.MarketClosed),
    ("closed.market", E.MarketClosed),
    ("not-found", E.OrderNotFound),
    ("epic", E.BadSymbol),
    ("size", E.InvalidOrder),
    ("amount", E.InvalidOrder),
    ("increment", E.InvalidOrder),
    ("stop", E.InvalidOrder),
    ("profit", E.InvalidOrder),
    ("limit", E.InvalidOrder),
    ("level", E.InvalidOrder),
    ("distance", E.InvalidOrder),
    ("session", E.AuthenticationError),
    ("token", E.AuthenticationError),
)


def capital_error_class(status: int | None, error_code: str | None) -> ExcClass:
    code = (error_code or "").strip()
    if code in CAPITAL_EXACT:
        return CAPITAL_EXACT[code]
    if status is not None and (status >= 500 or status in (401, 403, 408, 429)):
        return CAPITAL_STATUS.get(status, E.ExchangeNotAvailable)
    lowered = code.lower()
    for needle, cls in CAPITAL_BROAD:
        if needle in lowered:
            return cls
    if status is not None:
        return CAPITAL_STATUS.get(status, E.ExchangeError)
    return E.ExchangeError


def capital_exception(
    status: int | None, error_code: str | None, *, exchange_id: str = "capitalcom", context: str = ""
) -> E.BaseError:
    """A ccxt exception with Capital's HTTP status and errorCode: ``capitalcom 400 error.invalid.size``."""
    where = f" ({context})" if context else ""
    prefix = f"{exchange_id} {status}" if status is not None else exchange_id
    return capital_error_class(status, error_code)(f"{prefix} {error_code or 'no errorCode'}{where}")


def capital_reject_exception(reason: str | None, *, exchange_id: str = "capitalcom") -> E.BaseError:
    """A REJECTED confirm's reason -> exception (there is no HTTP status for it)."""
    cls = capital_error_class(None, reason)
    if cls is E.ExchangeError:
        cls = E.InvalidOrder
    return cls(f"{exchange_id} deal rejected: {reason or 'no reason given'}")
