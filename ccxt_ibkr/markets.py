"""Markets of Interactive Brokers: a unified symbol resolved to one IB contract, and back.

A mixin of ``IBTrader`` (before ``ccxt.async_support.Exchange``): ``fetch_markets`` resolves the
configured universe through these, and every method taking a symbol resolves one outside it on
demand (``_market``); contracts IB reports (positions, fills) are resolved by conId.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import ccxt
import ccxt.async_support

from normalization.arguments import check_symbol
from normalization.runtime.facade import MARKET_ATTRIBUTES
from normalization.symbols import ib_contract_to_symbol, symbol_to_ib_contract

from ._ib import Contract
from .parsing import IBParsing
from .transport import IBTransport


class MarketsHost(Protocol):
    """What contract resolution needs from the exchange beyond ccxt's ``Exchange``."""

    _contracts: dict[str, Contract]
    _extra_symbols: list[str]

    @property
    def transport(self) -> IBTransport: ...


if TYPE_CHECKING:
    class _Base(IBParsing, ccxt.async_support.Exchange, MarketsHost):
        pass
else:
    _Base = object


class IBMarkets(_Base):
    """Contract resolution, mixed into ``IBTrader``."""

    async def _resolve_symbol(self, symbol: str) -> dict[str, Any]:
        spec = symbol_to_ib_contract(
            symbol,
            default_exchange=self.options.get("defaultExchange"),
            overrides=self.options.get("contracts") or {},
        )
        contract = Contract(
            secType=spec.sec_type,
            symbol=spec.symbol,
            currency=spec.currency,
            exchange=spec.exchange,
            primaryExchange=spec.primary_exchange,
            lastTradeDateOrContractMonth=spec.last_trade_date,
            strike=spec.strike,
            right=spec.right,
            multiplier=spec.multiplier,
        )
        found = await self.transport.contract_details(contract)
        if not found:
            raise ccxt.BadSymbol(f"{self.id} {symbol}: IB has no contract {spec.sec_type} {spec.symbol} "
                                 f"{spec.currency} on {spec.exchange}")
        if len(found) > 1:
            candidates = ", ".join(
                f"{d.contract.exchange}/{d.contract.currency}/{d.contract.primaryExchange or '-'} (conId "
                f"{d.contract.conId})" for d in found
            )
            raise ccxt.BadSymbol(
                f"{self.id} {symbol} is ambiguous at IB: {candidates}; set options['defaultExchange'] or "
                f"options['contracts'][{symbol!r}] = {{'exchange': ..., 'primaryExchange': ...}}"
            )
        details = found[0]
        market = self.parse_ib_market(details, symbol)
        self._contracts[market["id"]] = details.contract
        return market

    async def _market(self, symbol: str) -> dict[str, Any]:
        """The market for a unified symbol, resolving one not in the configured universe on demand."""
        check_symbol(symbol, self.id, "market")
        await self.load_markets()
        if symbol in self.markets:
            return self.markets[symbol]
        if isinstance(symbol, str) and self.markets_by_id and symbol in self.markets_by_id:
            return self.markets_by_id[symbol][0]
        market = await self._resolve_symbol(symbol)
        self._extra_symbols.append(symbol)
        self._add_markets([market])
        return self.markets[symbol]

    def _market_by_con_id(self, con_id: int) -> dict[str, Any] | None:
        found = (self.markets_by_id or {}).get(str(con_id))
        return found[0] if found else None

    async def _market_for_contract(self, contract: Contract) -> dict[str, Any]:
        """The market of a contract IB reports (a position, a fill), resolving it by conId if new."""
        market = self._market_by_con_id(contract.conId)
        if market is not None:
            return market
        symbol = ib_contract_to_symbol(
            contract.secType, contract.symbol, contract.currency,
            last_trade_date=contract.lastTradeDateOrContractMonth, strike=contract.strike, right=contract.right,
        )
        if symbol in (self.markets or {}):
            return self.markets[symbol]
        details = await self.transport.contract_details(Contract(conId=contract.conId))
        if not details:
            raise ccxt.BadSymbol(f"{self.id}: IB has no contract details for conId {contract.conId}")
        market = self.parse_ib_market(details[0], symbol)
        self._contracts[market["id"]] = details[0].contract
        self._extra_symbols.append(symbol)
        self._add_markets([market])
        return market

    def _add_markets(self, new: list[dict[str, Any]]) -> None:
        """Add markets keeping the market tables' identity, so the sync face (which shares them) sees them."""
        old = {name: getattr(self, name, None) for name in MARKET_ATTRIBUTES}
        self.set_markets(list((self.markets or {}).values()) + new)
        for name, previous in old.items():
            current = getattr(self, name)
            if isinstance(previous, dict) and isinstance(current, dict):
                previous.clear()
                previous.update(current)
                setattr(self, name, previous)
            elif isinstance(previous, list) and isinstance(current, list):
                previous[:] = current
                setattr(self, name, previous)

    def _contract(self, market: dict[str, Any]) -> Contract:
        contract = self._contracts.get(market["id"])
        if contract is None:
            info = market["info"]
            contract = Contract(conId=int(market["id"]), exchange=info.get("exchange") or "SMART")
        return contract
