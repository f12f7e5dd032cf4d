"""The WebSocket streaming API: subscriptions, quotes and OHLC events pushed as the clock moves."""

from __future__ import annotations

import aiohttp
import pytest

from ccxt_capital.sim.testing import SimClient

pytestmark = pytest.mark.capital_sim(rate_limits="off")


async def _socket(sim, session):
    client = SimClient(sim)
    host = client.get("/session").json()["streamEndpoint"]
    assert host == f"ws://127.0.0.1:{sim.port}/"
    ws = await session.ws_connect(host + "connect")
    tokens = {"cst": client.http.headers["CST"], "securityToken": client.http.headers["X-SECURITY-TOKEN"]}
    return ws, tokens


async def test_quotes_stream_as_the_clock_moves(capital_sim):
    async with aiohttp.ClientSession() as session:
        ws, tokens = await _socket(capital_sim, session)
        await ws.send_json({"destination": "marketData.subscribe", "correlationId": "1", **tokens,
                            "payload": {"epics": ["AAPL", "NOPE"]}})
        answer = await ws.receive_json(timeout=5)
        assert answer["status"] == "OK" and answer["correlationId"] == "1"
        assert answer["payload"]["subscriptions"] == {"AAPL": "PROCESSED", "NOPE": "ERROR.NOT_FOUND"}
        first = await ws.receive_json(timeout=5)
        quote = capital_sim.quote("AAPL")
        assert first["destination"] == "quote"
        assert first["payload"]["epic"] == "AAPL" and first["payload"]["product"] == "CFD"
        assert (first["payload"]["bid"], first["payload"]["ofr"]) == (quote.bid, quote.offer)
        capital_sim.pin_price("AAPL", 150.0, at=capital_sim.clock.now() + 60)
        capital_sim.advance(60)
        update = await ws.receive_json(timeout=5)
        assert update["payload"]["bid"] == capital_sim.quote("AAPL").bid
        assert update["payload"]["timestamp"] == capital_sim.clock.now_ms()
        await ws.send_json({"destination": "ping", "correlationId": "2", **tokens})
        assert (await ws.receive_json(timeout=5))["destination"] == "ping"
        await ws.close()


async def test_ohlc_events(capital_sim):
    async with aiohttp.ClientSession() as session:
        ws, tokens = await _socket(capital_sim, session)
        await ws.send_json({"destination": "OHLCMarketData.subscribe", "correlationId": "3", **tokens,
                            "payload": {"epics": ["EURUSD"], "resolutions": ["MINUTE"], "type": "classic"}})
        answer = await ws.receive_json(timeout=5)
        assert answer["payload"]["subscriptions"] == {"EURUSD:MINUTE:classic": "PROCESSED"}
        bid = await ws.receive_json(timeout=5)
        ask = await ws.receive_json(timeout=5)
        assert (bid["destination"], bid["payload"]["priceType"], ask["payload"]["priceType"]) == (
            "ohlc.event", "bid", "ask")
        assert bid["payload"]["t"] == capital_sim.clock.now_ms() // 60000 * 60000
        assert bid["payload"]["l"] <= bid["payload"]["c"] <= bid["payload"]["h"]
        capital_sim.advance(60)
        nxt = await ws.receive_json(timeout=5)
        assert nxt["payload"]["t"] == bid["payload"]["t"] + 60000
        await ws.send_json({"destination": "OHLCMarketData.unsubscribe", "correlationId": "4", **tokens,
                            "payload": {"epics": ["EURUSD"], "resolutions": ["MINUTE"]}})
        assert (await ws.receive_json(timeout=5))["status"] == "OK"
        await ws.close()


async def test_streaming_refuses_bad_tokens_and_messages(capital_sim):
    async with aiohttp.ClientSession() as session:
        ws, tokens = await _socket(capital_sim, session)
        await ws.send_json({"destination": "marketData.subscribe", "correlationId": "1", "cst": "x",
                            "securityToken": "y", "payload": {"epics": ["AAPL"]}})
        refused = await ws.receive_json(timeout=5)
        assert refused["status"] == "FAILED"
        assert refused["payload"] == {"errorCode": "error.invalid.session.token"}
        await ws.send_str("not json")
        assert (await ws.receive_json(timeout=5))["payload"]["errorCode"] == "error.malformed.request"
        await ws.send_json({"destination": "marketData.subscribe", "correlationId": "5", **tokens,
                            "payload": {"epics": [f"E{i}" for i in range(41)]}})
        assert (await ws.receive_json(timeout=5))["payload"]["errorCode"] == "error.invalid.epics.limit"
        await ws.send_json({"destination": "nonsense", "correlationId": "6", **tokens})
        assert (await ws.receive_json(timeout=5))["status"] == "FAILED"
        await ws.close()
