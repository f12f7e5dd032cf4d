"""Unified symbols and their broker spellings.

ccxt bots address instruments by unified symbol only, so the mapping must be a bijection we can
test: the same symbol always yields the same contract and back. Cash instruments (stocks, FX,
crypto, spot-like CFDs) are ``BASE/QUOTE``; only instruments with an expiry use ccxt's derivative
form ``BASE/QUOTE:SETTLE-YYMMDD[-STRIKE-C|P]``; CFDs shown as swaps are ``BASE/QUOTE:SETTLE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ccxt.base.errors import BadSymbol

#: ISO 4217 codes the brokers quote in; a BASE/QUOTE pair of two of these is FX.
FIAT_CURRENCIES = frozenset(
    "USD EUR GBP JPY AUD NZD CAD CHF HKD SGD SEK NOK DKK CNH MXN ZAR PLN HUF CZK ILS TRY KRW INR".split()
)
#: Crypto bases IB trades on PAXOS/ZEROHASH and Capital lists as CRYPTOCURRENCIES.
CRYPTO_CURRENCIES = frozenset("BTC ETH LTC BCH SOL XRP ADA DOGE DOT AVAX LINK MATIC".split())

_CODE = r"[A-Z0-9][A-Z0-9._\-]{0,23}"
_CODE_RE = re.compile(rf"^{_CODE}$")
_EXPIRY_RE = re.compile(r"^\d{6}$")
_STRIKE_RE = re.compile(r"^\d+(\.\d+)?$")


@dataclass(frozen=True)
class SymbolParts:
    """The pieces of a unified symbol; ``expiry`` is ``YYMMDD`` as ccxt writes it."""

    base: str
    quote: str
    settle: str | None = None
    expiry: str | None = None
    strike: str | None = None
    option_type: str | None = None  # "C" or "P"

    @property
    def is_derivative(self) -> bool:
        return self.settle is not None

    @property
    def kind(self) -> str:
        """``spot``, ``swap``, ``future`` or ``option``, as ccxt names market types."""
        if self.option_type:
            return "option"
        if self.expiry:
            return "future"
        if self.settle:
            return "swap"
        return "spot"

    def __str__(self) -> str:
        return build_symbol(self)


def _bad(symbol: object, why: str) -> BadSymbol:
    return BadSymbol(f"invalid symbol {symbol!r}: {why}")


def _check_code(symbol: str, code: str, role: str) -> str:
    if not code:
        raise _bad(symbol, f"the {role} is empty")
    if code != code.upper():
        raise _bad(symbol, f"the {role} {code!r} must be upper case (unified symbols are upper case)")
    if not _CODE_RE.match(code):
        raise _bad(symbol, f"the {role} {code!r} has characters other than A-Z, 0-9, '.', '-', '_'")
    return code


def parse_symbol(symbol: object) -> SymbolParts:
    """Split a unified symbol; raise ``BadSymbol`` saying exactly what is wrong."""
    if not isinstance(symbol, str):
        raise _bad(symbol, f"expected a string, got {type(symbol).__name__}")
    if symbol != symbol.strip() or " " in symbol:
        raise _bad(symbol, "it contains spaces")
    if "/" not in symbol:
        raise _bad(symbol, "expected BASE/QUOTE, e.g. 'AAPL/USD'")
    base, _, rest = symbol.partition("/")
    if "/" in rest:
        raise _bad(symbol, "more than one '/'")
    settle = expiry = strike = option_type = None
    quote = rest
    if ":" in rest:
        quote, _, derivative = rest.partition(":")
        if ":" in derivative:
            raise _bad(symbol, "more than one ':'")
        pieces = derivative.split("-")
        settle = pieces[0]
        if len(pieces) == 1:
            pass  # perpetual / CFD shown as swap
        elif len(pieces) == 2:
            expiry = pieces[1]
        elif len(pieces) == 4:
            expiry, strike, option_type = pieces[1], pieces[2], pieces[3]
        else:
            raise _bad(symbol, "expected SETTLE, SETTLE-YYMMDD or SETTLE-YYMMDD-STRIKE-C|P after ':'")
        _check_code(symbol, settle, "settle currency")
        if expiry is not None and not _EXPIRY_RE.match(expiry):
            raise _bad(symbol, f"expiry {expiry!r} must be YYMMDD")
        if expiry is not None:
            month, day = int(expiry[2:4]), int(expiry[4:6])
            if not (1 <= month <= 12 and 1 <= day <= 31):
                raise _bad(symbol, f"expiry {expiry!r} is not a calendar date")
        if strike is not None and not _STRIKE_RE.match(strike):
            raise _bad(symbol, f"strike {strike!r} must be a positive number")
        if option_type is not None and option_type not in ("C", "P"):
            raise _bad(symbol, f"option type {option_type!r} must be C or P")
    _check_code(symbol, base, "base")
    _check_code(symbol, quote, "quote")
    return SymbolParts(base, quote, settle, expiry, strike, option_type)


def build_symbol(parts: SymbolParts) -> str:
    symbol = f"{parts.base}/{parts.quote}"
    if parts.settle is None:
        return symbol
    symbol += f":{parts.settle}"
    if parts.expiry:
        symbol += f"-{parts.expiry}"
        if parts.option_type:
            symbol += f"-{_format_strike(parts.strike)}-{parts.option_type}"
    return symbol


def _format_strike(strike: str | float | None) -> str:
    if strike is None:
        raise BadSymbol("an option symbol needs a strike")
    text = f"{float(strike):.8f}".rstrip("0").rstrip(".")
    return text


def is_fx_pair(base: str, quote: str) -> bool:
    return base in FIAT_CURRENCIES and quote in FIAT_CURRENCIES


def is_crypto_pair(base: str, quote: str) -> bool:
    return base in CRYPTO_CURRENCIES


# --------------------------------------------------------------------------------------------
# Interactive Brokers


@dataclass(frozen=True)
class ContractSpec:
    """What an IB ``Contract`` needs, without importing a broker library.

    The adapter turns this into an ``ib_async.Contract``; tests compare specs directly.
    """

    sec_type: str  # STK CASH FUT OPT CRYPTO CFD
    symbol: str
    currency: str
    exchange: str
    primary_exchange: str = ""
    last_trade_date: str = ""  # YYYYMMDD
    strike: float = 0.0
    right: str = ""  # C / P
    multiplier: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)


#: Default IB exchanges per security type; SMART routes stocks to the best venue.
IB_DEFAULT_EXCHANGES = {"STK": "SMART", "CASH": "IDEALPRO", "CRYPTO": "PAXOS", "CFD": "SMART", "OPT": "SMART"}


def symbol_to_ib_contract(
    symbol: str,
    *,
    default_exchange: str | None = None,
    future_exchange: str = "CME",
    as_cfd: bool = False,
    overrides: dict[str, dict[str, str]] | None = None,
) -> ContractSpec:
    """Unified symbol -> IB contract fields.

    ``overrides`` maps a unified symbol to explicit fields (``exchange``, ``primaryExchange``,
    ``secType``), the configured way out of ambiguity; it always wins over the rules.
    """
    parts = parse_symbol(symbol)
    override = (overrides or {}).get(symbol, {})
    if parts.option_type:
        sec_type = "OPT"
    elif parts.expiry:
        sec_type = "FUT"
    elif parts.settle is not None:
        sec_type = "CFD"
    elif is_fx_pair(parts.base, parts.quote):
        sec_type = "CASH"
    elif is_crypto_pair(parts.base, parts.quote):
        sec_type = "CRYPTO"
    else:
        sec_type = "CFD" if as_cfd else "STK"
    sec_type = override.get("secType", sec_type)
    if sec_type == "FUT":
        exchange = future_exchange
    elif sec_type == "STK" and default_exchange:
        exchange = default_exchange
    else:
        exchange = IB_DEFAULT_EXCHANGES.get(sec_type, "SMART")
    exchange = override.get("exchange", exchange)
    last_trade = "20" + parts.expiry if parts.expiry else ""
    return ContractSpec(
        sec_type=sec_type,
        symbol=parts.base,
        currency=parts.quote,
        exchange=exchange,
        primary_exchange=override.get("primaryExchange", ""),
        last_trade_date=last_trade,
        strike=float(parts.strike) if parts.strike else 0.0,
        right=parts.option_type or "",
        multiplier=override.get("multiplier", ""),
    )


def ib_contract_to_symbol(
    sec_type: str,
    symbol: str,
    currency: str,
    *,
    last_trade_date: str = "",
    strike: float = 0.0,
    right: str = "",
) -> str:
    """IB contract fields -> unified symbol (the inverse of ``symbol_to_ib_contract``)."""
    sec_type = sec_type.upper()
    base = symbol.upper().replace(" ", ".")
    quote = currency.upper()
    if sec_type in ("STK", "CASH", "CRYPTO", "IND", "CMDTY"):
        return build_symbol(SymbolParts(base, quote))
    if sec_type == "CFD":
        return build_symbol(SymbolParts(base, quote, settle=quote))
    expiry = _yymmdd(last_trade_date)
    if sec_type in ("FUT", "CONTFUT"):
        return build_symbol(SymbolParts(base, quote, quote, expiry))
    if sec_type in ("OPT", "FOP"):
        if right.upper() not in ("C", "P", "CALL", "PUT"):
            raise BadSymbol(f"option contract {symbol} has no right (C/P): {right!r}")
        kind = right.upper()[0]
        return build_symbol(SymbolParts(base, quote, quote, expiry, _format_strike(strike), kind))
    raise BadSymbol(f"IB security type {sec_type!r} has no unified symbol form")


def _yymmdd(last_trade_date: str) -> str:
    digits = (last_trade_date or "").split(" ")[0].replace("-", "")
    if len(digits) == 8 and digits.isdigit():
        return digits[2:]
    if len(digits) == 6 and digits.isdigit():
        # a contract month YYYYMM: ccxt symbols need a day; IB's details fill in the real one
        raise BadSymbol(f"contract month {last_trade_date!r} needs the full last trade date")
    raise BadSymbol(f"cannot read last trade date {last_trade_date!r}")


# --------------------------------------------------------------------------------------------
# Capital.com

CAPITAL_PAIR_TYPES = frozenset({"CURRENCIES", "CRYPTOCURRENCIES"})


def capital_epic_to_symbol(epic: str, instrument_type: str, currency: str, *, swap: bool = False) -> str:
    """Capital market -> unified symbol.

    FX and crypto epics glue base and quote (``EURUSD``, ``BTCUSD``); the quote is the market's
    currency. Everything else (shares, indices, commodities) is ``EPIC/CURRENCY``.
    """
    epic = epic.upper()
    quote = currency.upper()
    if instrument_type.upper() in CAPITAL_PAIR_TYPES and epic.endswith(quote) and len(epic) > len(quote):
        base = epic[: -len(quote)]
    else:
        base = epic
    parts = SymbolParts(base, quote, settle=quote if swap else None)
    return build_symbol(parts)


def symbol_to_capital_epic(symbol: str, instrument_type: str | None = None) -> str:
    """Unified symbol -> the epic it names (the inverse of ``capital_epic_to_symbol``)."""
    parts = parse_symbol(symbol)
    if parts.expiry:
        raise BadSymbol(f"{symbol}: Capital.com CFDs have no expiry")
    pair = (
        instrument_type.upper() in CAPITAL_PAIR_TYPES
        if instrument_type
        else is_fx_pair(parts.base, parts.quote) or is_crypto_pair(parts.base, parts.quote)
    )
    return parts.base + parts.quote if pair else parts.base


def as_swap(symbol: str) -> str:
    """``AAPL/USD`` -> ``AAPL/USD:USD``: the same CFD seen by a futures-mode bot."""
    parts = parse_symbol(symbol)
    return build_symbol(replace(parts, settle=parts.settle or parts.quote))
