"""Markets, navigation, prices and client sentiment of the Capital.com simulator over HTTP."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ccxt_capital.sim import CapitalSimulator
from ccxt_capital.sim.pricing import RESOLUTIONS
from ccxt_capital.sim.testing import SimClient

pytestmark = pytest.mark.capital_sim(rate_limits="off")

SUMMARY_KEYS = {
    "epic", "symbol", "instrumentName", "instrumentType", "expiry", "lotSize", "bid", "offer", "high", "low",
    "netChange", "percentageChange", "updateTime", "updateTimeUTC", "delayTime", "streamingPricesAvailable",
    "marketStatus", "scalingFactor", "marketModes",
}


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_all_markets_cover_every_type(capital_client):
    markets = capital_client.get("/markets").json()["markets"]
    assert len(markets) >= 30
    by_epic = {m["epic"]: m for m in markets}
    for epic in ("AAPL", "TSLA", "MSFT", "NVDA", "SAP", "BHP", "EURUSD", "GBPUSD", "USDJPY", "AUDUSD",
                 "US100", "US500", "DE40", "GOLD", "SILVER", "OIL_CRUDE", "BTCUSD", "ETHUSD"):
        assert epic in by_epic
    assert {m["instrumentType"] for m in markets} == {
        "SHARES", "CURRENCIES", "INDICES", "COMMODITIES", "CRYPTOCURRENCIES"}
    for market in markets:
        assert set(market) >= SUMMARY_KEYS
        assert market["bid"] < market["offer"]
        assert market["low"] <= market["high"]
    assert by_epic["EURUSD"]["symbol"] == "EUR/USD"
    assert by_epic["BTCUSD"]["symbol"] == "BTC/USD"
    assert by_epic["AAPL"]["symbol"] == "AAPL"


def test_search_and_epics(capital_client):
    found = capital_client.get("/markets", params={"searchTerm": "apple"}).json()["markets"]
    assert [m["epic"] for m in found] == ["AAPL"]
    assert capital_client.get("/markets", params={"searchTerm": "zzzz"}).json()["markets"] == []
    body = capital_client.get("/markets", params={"epics": "GOLD,EURUSD,NOPE"}).json()
    assert list(body) == ["marketDetails"]  # the official answer: full details only, unknown epics left out
    assert [d["instrument"]["epic"] for d in body["marketDetails"]] == ["GOLD", "EURUSD"]
    # searchTerm wins over epics; either one sent empty is refused; neither lists everything.
    both = capital_client.get("/markets", params={"searchTerm": "apple", "epics": "GOLD"}).json()
    assert [m["epic"] for m in both["markets"]] == ["AAPL"]
    assert capital_client.get("/markets", params={"searchTerm": ""}).json() == {"errorCode": "error.null.searchTerm"}
    assert capital_client.get("/markets", params={"epics": ""}).json() == {"errorCode": "error.null.epic"}
    assert len(capital_client.get("/markets").json()["markets"]) > 20
    too_many = ",".join(["AAPL"] * 51)
    response = capital_client.get("/markets", params={"epics": too_many})
    assert response.status_code == 400


def test_single_market_details(capital_client, capital_sim):
    body = capital_client.get("/markets/SAP").json()
    instrument, rules, snapshot = body["instrument"], body["dealingRules"], body["snapshot"]
    assert instrument["currency"] == "EUR"
    assert instrument["type"] == "SHARES"
    assert instrument["marginFactor"] == 20.0 and instrument["marginFactorUnit"] == "PERCENTAGE"
    # Every documented example gives the hours in UTC: Xetra's 09:00-17:30 Berlin is 08:00-16:30 UTC in March.
    assert instrument["openingHours"]["zone"] == "UTC"
    assert instrument["openingHours"]["mon"] == ["08:00 - 16:30"]
    assert instrument["openingHours"]["sat"] == []
    assert set(instrument["overnightFee"]) == {"longRate", "shortRate", "swapChargeTimestamp", "swapChargeInterval"}
    for key in ("minStepDistance", "minDealSize", "maxDealSize", "minSizeIncrement", "minGuaranteedStopDistance",
                "minStopOrProfitDistance", "maxStopOrProfitDistance"):
        assert set(rules[key]) == {"unit", "value"}
    assert snapshot["decimalPlacesFactor"] == 2
    quote = capital_sim.quote("SAP")
    assert (snapshot["bid"], snapshot["offer"]) == (quote.bid, quote.offer)
    assert snapshot["marketStatus"] == "TRADEABLE"
    tsla = capital_client.get("/markets/TSLA").json()["dealingRules"]
    assert tsla["minDealSize"]["value"] == 0.1 and tsla["minSizeIncrement"]["value"] == 0.1
    missing = capital_client.get("/markets/NOPE")
    assert missing.status_code == 404
    assert missing.json() == {"errorCode": "error.not-found.epic"}


def test_market_status_follows_exchange_hours(capital_sim, capital_client):
    # 2024-03-05 15:00 UTC: New York and Frankfurt open, Sydney closed, crypto always open.
    status = {m["epic"]: m["marketStatus"] for m in capital_client.get("/markets").json()["markets"]}
    assert status["AAPL"] == status["SAP"] == status["BTCUSD"] == status["EURUSD"] == "TRADEABLE"
    assert status["BHP"] == "CLOSED"
    capital_sim.set_time(datetime(2024, 3, 9, 12, 0, tzinfo=timezone.utc))  # Saturday
    capital_client.login()
    status = {m["epic"]: m["marketStatus"] for m in capital_client.get("/markets").json()["markets"]}
    assert status["BTCUSD"] == "TRADEABLE"
    assert status["AAPL"] == status["EURUSD"] == status["US100"] == "CLOSED"


def test_navigation(capital_client):
    root = capital_client.get("/marketnavigation").json()["nodes"]
    assert {n["name"] for n in root} >= {"Shares", "Forex", "Indices", "Commodities", "Cryptocurrencies"}
    shares = next(n["id"] for n in root if n["name"] == "Shares")
    children = capital_client.get(f"/marketnavigation/{shares}").json()["nodes"]
    assert len(children) == 3
    us = capital_client.get(f"/marketnavigation/{children[0]['id']}", params={"limit": 2}).json()
    assert len(us["markets"]) == 2
    assert capital_client.get("/marketnavigation/nope").status_code == 404


@pytest.mark.parametrize("resolution", list(RESOLUTIONS))
def test_prices_every_resolution(capital_client, capital_sim, resolution):
    seconds = RESOLUTIONS[resolution]
    body = capital_client.get("/prices/BTCUSD", params={"resolution": resolution, "max": 20}).json()
    assert body["instrumentType"] == "CRYPTOCURRENCIES"
    bars = body["prices"]
    assert len(bars) == 20
    times = [_utc(bar["snapshotTimeUTC"]) for bar in bars]
    assert all(b - a == seconds for a, b in zip(times, times[1:], strict=False))
    assert times[-1] <= capital_sim.clock.now() < times[-1] + seconds
    for bar in bars:
        for side in ("bid", "ask"):
            assert bar["lowPrice"][side] <= min(bar["openPrice"][side], bar["closePrice"][side])
            assert bar["highPrice"][side] >= max(bar["openPrice"][side], bar["closePrice"][side])
        assert bar["closePrice"]["bid"] < bar["closePrice"]["ask"]
        assert isinstance(bar["lastTradedVolume"], int)
    # The forming bar ends at the current quote: nothing from the future leaks out.
    quote = capital_sim.quote("BTCUSD")
    assert bars[-1]["closePrice"] == {"bid": quote.bid, "ask": quote.offer}


def test_share_bars_follow_exchange_hours(capital_client, capital_sim):
    # Daily bars of a US share skip the weekend; `max` still returns as many bars as asked.
    days = capital_client.get("/prices/AAPL", params={"resolution": "DAY", "max": 10}).json()["prices"]
    assert len(days) == 10
    assert {datetime.fromisoformat(b["snapshotTimeUTC"]).weekday() for b in days} <= {0, 1, 2, 3, 4}
    # Minute bars exist only while New York is open (14:30-21:00 UTC in March).
    minutes = capital_client.get("/prices/AAPL", params={"resolution": "MINUTE", "max": 45}).json()["prices"]
    assert minutes[0]["snapshotTimeUTC"] == "2024-03-04T20:46:00"
    assert minutes[13]["snapshotTimeUTC"] == "2024-03-04T20:59:00"
    assert minutes[14]["snapshotTimeUTC"] == "2024-03-05T14:30:00"
    assert minutes[-1]["snapshotTimeUTC"] == "2024-03-05T15:00:00"
    # The hourly bar that straddles the open holds only the open half hour.
    hours = capital_client.get("/prices/AAPL", params={"resolution": "HOUR", "from": "2024-03-05T13:00:00",
                                                      "to": "2024-03-05T14:00:00"}).json()["prices"]
    assert [b["snapshotTimeUTC"] for b in hours] == ["2024-03-05T14:00:00"]
    half = capital_client.get("/prices/AAPL", params={"resolution": "MINUTE", "from": "2024-03-05T14:00:00",
                                                     "to": "2024-03-05T14:59:00", "max": 100}).json()["prices"]
    assert len(half) == 30
    assert hours[0]["lastTradedVolume"] == sum(b["lastTradedVolume"] for b in half)
    assert hours[0]["highPrice"]["bid"] == max(b["highPrice"]["bid"] for b in half)
    # After the close the quote stays at the last traded minute until the next open.
    capital_sim.set_time(datetime(2024, 3, 9, 12, 0, tzinfo=timezone.utc))
    capital_client.login()
    frozen = capital_sim.quote("AAPL")
    assert frozen == capital_sim.quote("AAPL", at=datetime(2024, 3, 8, 20, 59, tzinfo=timezone.utc).timestamp())
    last = capital_client.get("/prices/AAPL", params={"resolution": "MINUTE", "max": 1}).json()["prices"][0]
    assert last["snapshotTimeUTC"] == "2024-03-08T20:59:00"
    assert last["closePrice"] == {"bid": frozen.bid, "ask": frozen.offer}
    snapshot = capital_client.get("/markets/AAPL").json()["snapshot"]
    assert (snapshot["bid"], snapshot["offer"], snapshot["marketStatus"]) == (frozen.bid, frozen.offer, "CLOSED")


def test_prices_default_and_limits(capital_client):
    default = capital_client.get("/prices/EURUSD").json()["prices"]
    assert len(default) == 10
    assert _utc(default[1]["snapshotTimeUTC"]) - _utc(default[0]["snapshotTimeUTC"]) == 60
    assert len(capital_client.get("/prices/EURUSD", params={"max": 1000}).json()["prices"]) == 1000
    for params, code in [({"max": 1001}, "error.invalid.max"), ({"max": 0}, "error.invalid.max"),
                         ({"max": "x"}, "error.invalid.max"), ({"resolution": "MONTH"}, "error.invalid.resolution"),
                         ({"from": "2024-03-01"}, "error.invalid.from"),
                         ({"from": "2024-03-01T00:00:00Z"}, "error.invalid.from")]:
        response = capital_client.get("/prices/EURUSD", params=params)
        assert response.status_code == 400, params
        assert response.json() == {"errorCode": code}
    assert capital_client.get("/prices/NOPE").status_code == 404


def test_prices_from_to_window(capital_client):
    params = {"resolution": "HOUR", "from": "2024-03-04T00:00:00", "to": "2024-03-04T05:00:00", "max": 1000}
    bars = capital_client.get("/prices/GOLD", params=params).json()["prices"]
    # `to` is inclusive.
    assert [b["snapshotTimeUTC"] for b in bars] == [f"2024-03-04T0{h}:00:00" for h in range(6)]
    forward = capital_client.get("/prices/GOLD", params={"resolution": "HOUR", "from": "2024-03-04T00:00:00",
                                                        "max": 3}).json()["prices"]
    assert [b["snapshotTimeUTC"] for b in forward] == [f"2024-03-04T0{h}:00:00" for h in range(3)]
    assert forward == bars[:3]
    before = capital_client.get("/prices/GOLD", params={"resolution": "HOUR", "to": "2024-03-04T05:00:00",
                                                       "max": 2}).json()["prices"]
    assert before == bars[4:]
    # A `to` in the future means "until now"; `from` after `to` is refused; a range over 1000 bars too.
    future = capital_client.get("/prices/GOLD", params={"resolution": "DAY", "from": "2024-03-01T00:00:00",
                                                       "to": "2030-01-01T00:00:00"}).json()["prices"]
    assert future[-1]["snapshotTimeUTC"] == "2024-03-05T00:00:00"
    reversed_range = capital_client.get("/prices/GOLD", params={"from": "2024-03-04T00:00:00",
                                                               "to": "2024-03-03T00:00:00"})
    assert reversed_range.json() == {"errorCode": "error.invalid.daterange"}
    huge = capital_client.get("/prices/GOLD", params={"resolution": "MINUTE", "from": "2024-03-01T00:00:00",
                                                     "to": "2024-03-04T00:00:00"})
    assert huge.json() == {"errorCode": "error.invalid.daterange"}
    fractional = capital_client.get("/prices/GOLD", params={"resolution": "HOUR", "max": 1,
                                                           "from": "2024-03-04T00:00:00.000000"})
    assert fractional.status_code == 200


def test_bars_are_consistent_across_resolutions(capital_client):
    params = {"from": "2024-03-04T14:00:00", "to": "2024-03-04T14:59:00", "max": 1000}
    minutes = capital_client.get("/prices/US100", params={**params, "resolution": "MINUTE"}).json()["prices"]
    hour = capital_client.get("/prices/US100", params={**params, "resolution": "HOUR"}).json()["prices"][0]
    assert len(minutes) == 60
    assert hour["highPrice"]["bid"] == max(m["highPrice"]["bid"] for m in minutes)
    assert hour["lowPrice"]["ask"] == min(m["lowPrice"]["ask"] for m in minutes)
    assert hour["closePrice"] == minutes[-1]["closePrice"]
    assert hour["openPrice"] == minutes[0]["openPrice"]


def test_week_bars_start_on_monday(capital_client):
    bars = capital_client.get("/prices/AAPL", params={"resolution": "WEEK", "max": 3}).json()["prices"]
    assert [datetime.fromisoformat(b["snapshotTimeUTC"]).weekday() for b in bars] == [0, 0, 0]


def test_prices_are_deterministic_per_seed():
    def fetch(seed: int) -> list[dict]:
        with CapitalSimulator(port=0, seed=seed, rate_limits="off") as sim:
            client = SimClient(sim)
            return client.get("/prices/TSLA", params={"resolution": "MINUTE_5", "max": 50}).json()["prices"]

    assert fetch(3) == fetch(3)
    assert fetch(3) != fetch(4)


def test_csv_bars_are_replayed(tmp_path):
    path = tmp_path / "aapl.csv"
    start = int(datetime(2024, 3, 5, 14, 0, tzinfo=timezone.utc).timestamp())
    rows = ["time,open,high,low,close,volume"]
    for i in range(120):
        price = 100 + i * 0.1
        rows.append(f"{start + 60 * i},{price:.2f},{price + 0.05:.2f},{price - 0.05:.2f},{price + 0.02:.2f},10")
    path.write_text("\n".join(rows) + "\n")
    with CapitalSimulator(port=0, csv={"AAPL": path}, rate_limits="off") as sim:
        client = SimClient(sim)
        bars = client.get("/prices/AAPL", params={"resolution": "HOUR", "max": 2}).json()["prices"]
        assert [b["snapshotTimeUTC"] for b in bars] == ["2024-03-05T14:00:00", "2024-03-05T15:00:00"]
        assert bars[0]["openPrice"]["bid"] == pytest.approx(100.0 - 0.05, abs=0.011)
        quote = sim.quote("AAPL")
        assert quote.mid == pytest.approx(106.02)
        confirm = client.deal("POST", "/positions", {"epic": "AAPL", "direction": "BUY", "size": 1})
        assert confirm["level"] == quote.offer


def test_client_sentiment(capital_client):
    unknown = capital_client.get("/clientsentiment", params={"marketIds": "AAPL,NOPE"})
    assert (unknown.status_code, unknown.json()) == (404, {"errorCode": "error.not-found.epic"})
    body = capital_client.get("/clientsentiment", params={"marketIds": "AAPL,EURUSD"}).json()
    sentiments = body["clientSentiments"]
    assert [s["marketId"] for s in sentiments] == ["AAPL", "EURUSD"]
    for s in sentiments:
        assert s["longPositionPercentage"] + s["shortPositionPercentage"] == pytest.approx(100)
    single = capital_client.get("/clientsentiment/GOLD").json()
    assert single["marketId"] == "GOLD"
    assert capital_client.get("/clientsentiment/NOPE").json() == {"errorCode": "error.not-found.epic"}
    assert capital_client.get("/clientsentiment").status_code == 400
