"""What ``load_markets()`` loads when the user names no symbols: a default universe, never nothing.

IB has no "list every market" request (hundreds of thousands of contracts; only searches by name), so
the adapter loads a fixed, documented universe -- the major FX pairs, the front month of the US index
futures, the largest US stocks -- plus whatever the account already holds or has open orders in. A bot
written for a crypto exchange, which iterates ``exchange.markets`` after ``load_markets()``, then has
something to trade; ``options['symbols']`` replaces the list, and any other symbol still resolves on
first use.

Symbols IB (or the gateway's permissions) does not know are left out, never guessed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from normalization.symbols import ib_contract_to_symbol

from ._ib import Contract

if TYPE_CHECKING:  # pragma: no cover
    from .exchange import IBTrader

log = logging.getLogger("ccxt_ibkr")

#: The major currency pairs (IDEALPRO).
DEFAULT_FX = ("EUR/USD", "GBP/USD", "USD/JPY", "AUD/USD", "USD/CAD", "USD/CHF", "NZD/USD", "EUR/GBP")
#: The largest US stocks by market value, and the S&P 500 ETF (SMART routing).
DEFAULT_STOCKS = ("AAPL/USD", "MSFT/USD", "NVDA/USD", "AMZN/USD", "GOOGL/USD", "META/USD", "TSLA/USD",
                  "AVGO/USD", "JPM/USD", "SPY/USD")
#: US index futures, front month: (root, exchange).
DEFAULT_INDEX_FUTURES = (("ES", "CME"), ("NQ", "CME"), ("RTY", "CME"), ("YM", "CBOT"))


async def default_markets(exchange: IBTrader, known: set[str]) -> list[dict[str, Any]]:
    """Markets of the default universe and of the account's positions and open orders (see module doc)."""
    found: list[dict[str, Any]] = []
    wanted = [s for s in (*DEFAULT_FX, *DEFAULT_STOCKS) if s not in known]
    resolved = await asyncio.gather(*(exchange._resolve_symbol(s) for s in wanted), return_exceptions=True)
    for symbol, market in zip(wanted, resolved, strict=True):
        if isinstance(market, dict):
            found.append(market)
        elif isinstance(market, BaseException) and not isinstance(market, Exception):
            raise market
        else:
            log.debug("%s: default universe: %s left out (%s)", exchange.id, symbol, market)
    contracts = await asyncio.gather(
        *(_front_month(exchange, root, venue) for root, venue in DEFAULT_INDEX_FUTURES), return_exceptions=True
    )
    contracts += await _account_contracts(exchange)
    seen = known | {m["symbol"] for m in found}
    for contract in contracts:
        if not isinstance(contract, Contract):
            continue
        market = await _market_of(exchange, contract, seen)
        if market is not None:
            seen.add(market["symbol"])
            found.append(market)
    return found


async def _front_month(exchange: IBTrader, root: str, venue: str) -> Contract | None:
    details = await exchange.transport.contract_details(
        Contract(secType="FUT", symbol=root, exchange=venue, currency="USD")
    )
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    live = sorted((d.contract for d in details if (d.contract.lastTradeDateOrContractMonth or "") >= today),
                  key=lambda c: c.lastTradeDateOrContractMonth)
    return live[0] if live else None


async def _account_contracts(exchange: IBTrader) -> list[Contract]:
    """Contracts of the account's positions and open orders (what the bot must be able to manage)."""
    try:
        await exchange._ready()
        positions = await exchange.transport.request_positions()
    except Exception as error:  # noqa: BLE001 - the universe loads without them; say why
        log.warning("%s: positions not read for the default universe: %s", exchange.id, error)
        return []
    held = [p.contract for p in positions if p.position]
    return held + [t.contract for t in exchange.transport.open_trades()]


async def _market_of(exchange: IBTrader, contract: Contract, seen: set[str]) -> dict[str, Any] | None:
    symbol = ib_contract_to_symbol(
        contract.secType, contract.symbol, contract.currency,
        last_trade_date=contract.lastTradeDateOrContractMonth, strike=contract.strike, right=contract.right,
    )
    if symbol in seen:
        return None
    details = await exchange.transport.contract_details(Contract(conId=contract.conId))
    if not details:
        return None
    market = exchange.parse_ib_market(details[0], symbol)
    exchange._contracts[market["id"]] = details[0].contract
    return market
