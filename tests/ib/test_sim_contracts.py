"""Contract details for every instrument kind, TWS-style ambiguity and unknown contracts."""

from __future__ import annotations

import pytest

from ccxt_ibkr._ib import Contract, Crypto, Forex, Future, MarketOrder, Stock
from ccxt_ibkr.sim import IBSimulator


async def details(ib, contract):
    return await ib.reqContractDetailsAsync(contract)


async def test_us_stock(ib_client) -> None:
    (cd,) = await details(ib_client, Stock("AAPL", "SMART", "USD"))
    c = cd.contract
    assert (c.conId, c.symbol, c.secType, c.exchange, c.primaryExchange, c.currency) == (
        265598, "AAPL", "STK", "SMART", "NASDAQ", "USD")
    assert cd.minTick == 0.01 and cd.longName == "APPLE INC" and cd.timeZoneId == "US/Eastern"
    assert float(cd.minSize) == 1 and float(cd.sizeIncrement) == 1
    assert "0930" in cd.liquidHours and "CLOSED" in cd.tradingHours
    (nyse,) = await details(ib_client, Stock("IBM", "SMART", "USD"))
    assert nyse.contract.primaryExchange == "NYSE"


@pytest.mark.parametrize(
    "contract,local,currency",
    [
        (Stock("CBA", "SMART", "AUD"), "CBA", "AUD"),
        (Stock("SAP", "IBIS", "EUR"), "SAP", "EUR"),
        (Forex("EURUSD"), "EUR.USD", "USD"),
        (Forex("USDJPY"), "USD.JPY", "JPY"),
        (Crypto("ETH", "PAXOS", "USD"), "ETH.USD", "USD"),
    ],
)
async def test_other_kinds(ib_client, contract, local, currency) -> None:
    (cd,) = await details(ib_client, contract)
    assert cd.contract.localSymbol == local and cd.contract.currency == currency
    assert cd.tradingHours and cd.liquidHours and cd.timeZoneId


async def test_crypto_is_fractional(ib_client) -> None:
    (cd,) = await details(ib_client, Crypto("BTC", "PAXOS", "USD"))
    assert float(cd.minSize) == 0.0001 and float(cd.sizeIncrement) == 0.0001
    assert "CLOSED" not in cd.tradingHours  # 24/7


async def test_futures_follow_the_sim_clock(ib_sim: IBSimulator, ib_client) -> None:
    live = await details(ib_client, Future("ES", exchange="CME", currency="USD"))
    assert len(live) == 4
    expiries = sorted(cd.contract.lastTradeDateOrContractMonth for cd in live)
    assert expiries[0] >= "20250610"
    front = live[0]
    assert front.contract.multiplier == "50" and front.minTick == 0.25 and front.contract.tradingClass == "ES"
    (one,) = await details(ib_client, Future("ES", expiries[1][:6], "CME"))
    assert one.contract.lastTradeDateOrContractMonth == expiries[1]
    expired = Future("ES", exchange="CME", currency="USD", includeExpired=True)
    assert len(await details(ib_client, expired)) == 5


async def test_unknown_contract_is_error_200(ib_client) -> None:
    errors = []
    ib_client.errorEvent += lambda *args: errors.append(args[1])
    assert await details(ib_client, Stock("NOPE", "SMART", "USD")) == []
    assert errors == [200]


async def test_dual_listing_is_ambiguous(ib_client) -> None:
    both = await details(ib_client, Stock("BHP", "SMART"))
    assert {cd.contract.currency for cd in both} == {"USD", "AUD"}
    # Where a single contract is needed, TWS answers 200 "ambiguous".
    errors = []
    ib_client.errorEvent += lambda req, code, text, *rest: errors.append((code, text))
    trade = ib_client.placeOrder(Stock("SAP", "SMART"), MarketOrder("BUY", 1))
    await trade.statusEvent
    assert errors and errors[0][0] == 200 and "ambiguous" in errors[0][1]
    assert trade.orderStatus.status == "Cancelled"
    (usd,) = await details(ib_client, Stock("BHP", "SMART", "USD"))
    assert usd.contract.primaryExchange == "NYSE"


async def test_qualify_by_con_id(ib_client) -> None:
    (c,) = await ib_client.qualifyContractsAsync(Contract(conId=12087792))
    assert c.localSymbol == "EUR.USD" and c.secType == "CASH"
