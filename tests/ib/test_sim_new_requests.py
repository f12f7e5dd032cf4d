"""The requests added for ibapi, through the adapter's IB library (ib_async, or ib_insync in CI's
second venv): both decode every answer."""

from __future__ import annotations

import asyncio

from ccxt_ibkr._ib import Forex, Stock
from ccxt_ibkr.sim import IBSimulator
from ccxt_ibkr.sim.testing import wait_until

AAPL = Stock("AAPL", "SMART", "USD")


async def test_reference_requests(ib_client) -> None:
    rule = await asyncio.wait_for(ib_client.reqMarketRuleAsync(26), 5)
    assert rule[0].increment == 0.01
    samples = await asyncio.wait_for(ib_client.reqMatchingSymbolsAsync("MS"), 5)
    assert any(s.contract.symbol == "MSFT" for s in samples)
    chains = await asyncio.wait_for(ib_client.reqSecDefOptParamsAsync("AAPL", "", "STK", 265598), 5)
    assert chains and chains[0].strikes and chains[0].expirations
    histogram = await asyncio.wait_for(ib_client.reqHistogramDataAsync(AAPL, True, "1 day"), 5)
    assert histogram
    exchanges = await asyncio.wait_for(ib_client.reqMktDepthExchangesAsync(), 5)
    assert any(e.exchange == "NASDAQ" for e in exchanges)
    assert await asyncio.wait_for(ib_client.reqNewsProvidersAsync(), 5) == []


async def test_pnl_and_tick_by_tick_stream(ib_sim: IBSimulator, ib_client) -> None:
    pnl = ib_client.reqPnL(ib_sim.ledger.account)
    (eur,) = await ib_client.qualifyContractsAsync(Forex("EURUSD"))
    ticker = ib_client.reqTickByTickData(eur, "BidAsk")
    await wait_until(ib_client, lambda: pnl.unrealizedPnL == pnl.unrealizedPnL and ticker.tickByTicks, timeout=5)
    quote = ib_sim.quote("EUR", "CASH", "USD")
    last = ticker.tickByTicks[-1]
    assert (last.bidPrice, last.askPrice) == (quote.bid, quote.ask)
    assert pnl.unrealizedPnL == 0.0 and pnl.realizedPnL == 0.0
    ib_client.cancelTickByTickData(ticker.contract, "BidAsk")
    ib_client.cancelPnL(ib_sim.ledger.account)
