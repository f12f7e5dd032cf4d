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


async def test_documented_messages_and_the_forty_epic_limit(capital_sim):
    """The collection's WebSocket section: answers on the request's destination and correlationId,
    subscriptions keyed EPIC (quotes) or EPIC:RESOLUTION:TYPE (bars), ping with an empty payload,
    unsubscribing what is not named whole, and at most 40 epics: a 41st refuses the whole request."""
    known = [i.epic for i in capital_sim.broker.catalogue.instruments]
    names = (known + [f"NOPE{i}" for i in range(41)])[:41]  # the catalogue lists fewer than 41 markets
    async with aiohttp.ClientSession() as session:
        ws, tokens = await _socket(capital_sim, session)

        async def ask(destination: str, correlation: str, payload: dict | None = None) -> dict:
            await ws.send_json({"destination": destination, "correlationId": correlation, **tokens,
                                **({"payload": payload} if payload is not None else {})})
            while True:  # skip the quote / bar pushes that follow a subscription
                message = await ws.receive_json(timeout=5)
                if message["destination"] == destination:
                    return message

        refused = await ask("marketData.subscribe", "1", {"epics": names})  # 41: refused whole
        assert refused == {"status": "FAILED", "destination": "marketData.subscribe", "correlationId": "1",
                           "payload": {"errorCode": "error.invalid.epics.limit"}}
        ok = await ask("marketData.subscribe", "2", {"epics": names[:40]})
        assert ok == {"status": "OK", "destination": "marketData.subscribe", "correlationId": "2",
                      "payload": {"subscriptions": {e: "PROCESSED" if e in known else "ERROR.NOT_FOUND"
                                                    for e in names[:40]}}}
        gone = await ask("marketData.unsubscribe", "3", {"epics": [names[0]]})
        assert gone["payload"] == {"subscriptions": {names[0]: "PROCESSED"}}

        bars = await ask("OHLCMarketData.subscribe", "5", {"epics": ["OIL_CRUDE", "AAPL"], "resolutions": ["MINUTE_5"],
                                                          "type": "classic"})
        assert bars["payload"] == {"subscriptions": {"OIL_CRUDE:MINUTE_5:classic": "PROCESSED",
                                                     "AAPL:MINUTE_5:classic": "PROCESSED"}}
        await ask("OHLCMarketData.subscribe", "6", {"epics": ["OIL_CRUDE"], "resolutions": ["MINUTE"],
                                                    "type": "heikin-ashi"})
        some = await ask("OHLCMarketData.unsubscribe", "7", {
            "epics": ["OIL_CRUDE"], "resolutions": ["MINUTE", "MINUTE_5"], "types": ["heikin-ashi"]})
        assert some["payload"] == {"subscriptions": {"OIL_CRUDE:MINUTE:heikin-ashi": "PROCESSED"}}
        rest = await ask("OHLCMarketData.unsubscribe", "8", {"epics": ["OIL_CRUDE", "AAPL"]})  # all resolutions, types
        assert rest["payload"] == {"subscriptions": {"AAPL:MINUTE_5:classic": "PROCESSED",
                                                     "OIL_CRUDE:MINUTE_5:classic": "PROCESSED"}}
        pong = await ask("ping", "9")
        assert pong == {"status": "OK", "destination": "ping", "correlationId": "9", "payload": {}}
        await ws.close()
