"""Bad input never yields a 500 or a changed book: malformed bodies, wrong types, unknown paths."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.capital_sim(rate_limits="off")


def _snapshot(sim):
    return ([(p.deal_id, p.size, p.stop_level, p.profit_level) for p in sim.positions()],
            [(o.deal_id, o.level) for o in sim.working_orders()],
            [t.amount for t in sim.transactions()])


@pytest.mark.parametrize("raw", [b"{", b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"42", b"null"])
@pytest.mark.parametrize("path", ["/positions", "/workingorders", "/accounts/topUp"])
def test_malformed_bodies(capital_sim, capital_client, raw, path):
    before = _snapshot(capital_sim)
    response = capital_client.http.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500
    assert response.json()["errorCode"].startswith("error.")
    assert _snapshot(capital_sim) == before


def test_login_with_malformed_body(capital_sim):
    for raw in (b"{", b"[]", b'{"identifier": 1, "password": 2}'):
        response = httpx.post(capital_sim.api_url + "/session", content=raw,
                              headers={"X-CAP-API-KEY": "demo-api-key"})
        assert response.status_code == 400
        assert response.json()["errorCode"].startswith("error.")
    empty = httpx.post(capital_sim.api_url + "/session", headers={"X-CAP-API-KEY": "demo-api-key"})
    assert empty.status_code == 400


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"direction": "BUY", "size": 1}, "error.invalid.epic"),
        ({"epic": 5, "direction": "BUY", "size": 1}, "error.invalid.epic"),
        ({"epic": "AAPL", "direction": "buy", "size": 1}, "error.invalid.direction"),
        ({"epic": "AAPL", "direction": "BUY"}, "error.invalid.size"),
        ({"epic": "AAPL", "direction": "BUY", "size": "1"}, "error.invalid.size"),
        ({"epic": "AAPL", "direction": "BUY", "size": True}, "error.invalid.size"),
        ({"epic": "AAPL", "direction": "BUY", "size": -1}, "error.invalid.size"),
        ({"epic": "AAPL", "direction": "BUY", "size": 1, "stopLevel": "90"}, "error.invalid.stopLevel"),
        ({"epic": "AAPL", "direction": "BUY", "size": 1, "stopDistance": -5}, "error.invalid.stopDistance"),
        ({"epic": "AAPL", "direction": "BUY", "size": 1, "guaranteedStop": "yes"}, "error.invalid.guaranteedStop"),
        ({"epic": "AAPL", "direction": "BUY", "size": 1, "trailingStop": True}, "error.invalid.trailingstop"),
        ({"epic": "AAPL", "direction": "BUY", "size": 1, "trailingStop": True, "guaranteedStop": True,
          "stopDistance": 5}, "error.invalid.guaranteedstop"),
    ],
)
def test_wrong_types_on_positions(capital_sim, capital_client, body, code):
    response = capital_client.post("/positions", body)
    assert response.status_code == 400
    assert response.json() == {"errorCode": code}
    assert capital_sim.positions() == []


def test_missing_and_partial_headers(capital_sim, capital_client):
    for headers in ({}, {"CST": capital_client.http.headers["CST"]},
                    {"X-SECURITY-TOKEN": capital_client.http.headers["X-SECURITY-TOKEN"]}):
        response = httpx.post(capital_sim.api_url + "/positions", headers=headers,
                              json={"epic": "AAPL", "direction": "BUY", "size": 1})
        assert response.status_code == 401
        assert response.json() == {"errorCode": "error.null.client.token"}
    assert capital_sim.positions() == []


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/positions", "/", "/api/v1/positions/a/b"])
def test_unknown_paths(capital_sim, path):
    response = httpx.get(capital_sim.base_url + path)
    assert response.status_code == 404
    assert response.json() == {"errorCode": "error.not-found.path"}


def test_wrong_method(capital_sim, capital_client):
    response = capital_client.http.patch("/positions")
    assert response.status_code == 405
    assert response.json()["errorCode"].startswith("error.")


def test_oversized_body(capital_sim, capital_client):
    response = capital_client.http.post("/positions", content=b"x" * (2 * 1024 * 1024))
    assert 400 <= response.status_code < 500
    assert response.json()["errorCode"].startswith("error.")


def test_bad_query_values(capital_client):
    for path, params in [("/prices/AAPL", {"max": "-3"}), ("/prices/AAPL", {"to": "yesterday"}),
                         ("/history/activity", {"lastPeriod": "x"}), ("/history/transactions", {"to": "x"}),
                         ("/marketnavigation/hierarchy_v1.shares", {"limit": "0"})]:
        response = capital_client.get(path, params=params)
        assert response.status_code == 400, (path, params)
        assert response.json()["errorCode"].startswith("error.")


#: Fixed examples (derandomized, no example database) keep the fuzz tests deterministic.
FUZZ = {"deadline": None, "derandomize": True, "database": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["epic", "direction", "size", "level", "type", "stopLevel", "stopDistance", "stopAmount", "profitLevel",
          "profitDistance", "profitAmount", "guaranteedStop", "trailingStop", "goodTillDate", "amount", "accountId",
          "hedgingMode", "leverages"]
plausible = st.fixed_dictionaries({}, optional={
    "epic": st.sampled_from(["AAPL", "EURUSD", "BHP", "NOPE", ""]) | json_values,
    "direction": st.sampled_from(["BUY", "SELL", "HOLD"]) | json_values,
    "size": st.sampled_from([1, 0.5, 1000, 0, -1]) | json_values,
    "level": st.floats(min_value=-10, max_value=1e6) | json_values,
    "type": st.sampled_from(["LIMIT", "STOP", "MARKET"]),
    "stopLevel": json_values, "profitDistance": json_values, "goodTillDate": json_values,
    "trailingStop": json_values, "guaranteedStop": json_values, "amount": json_values,
    "hedgingMode": json_values, "leverages": json_values, "accountId": json_values,
})
bodies = plausible | st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6) | json_values


@settings(max_examples=150, **FUZZ)
@given(method_path=st.sampled_from([("POST", "/positions"), ("POST", "/workingorders"),
                                    ("PUT", "/accounts/preferences"), ("POST", "/accounts/topUp"),
                                    ("PUT", "/session"), ("PUT", "/positions/x"), ("PUT", "/workingorders/x")]),
       body=bodies)
def test_fuzzed_bodies_never_500(capital_sim, capital_client, method_path, body):
    method, path = method_path
    before = _snapshot(capital_sim)
    response = capital_client.http.request(method, path, json=body)
    assert response.status_code < 500, response.text
    payload = response.json()
    if response.status_code >= 400:
        assert payload["errorCode"].startswith("error.")
        assert _snapshot(capital_sim) == before
    capital_sim.check_books()
    if path == "/session" and response.status_code == 200:
        capital_client.put("/session", {"accountId": "200000000000001"})


@pytest.mark.parametrize("raw", [b'{"epic": "AAPL", "direction": "BUY", "size": NaN}',
                                 b'{"epic": "AAPL", "direction": "BUY", "size": Infinity}',
                                 b'{"epic": "AAPL", "direction": "BUY", "size": 1e400}'])
def test_non_finite_numbers(capital_sim, capital_client, raw):
    response = capital_client.http.post("/positions", content=raw)
    assert response.status_code == 400
    assert response.json() == {"errorCode": "error.invalid.size"}
    assert capital_sim.positions() == []


dates = st.sampled_from(["2024-03-04T00:00:00", "2024-03-05T14:59:00", "0001-01-01T00:00:00",
                         "9999-12-31T23:59:59", "2024-02-30T00:00:00", "1999-06-01T00:00:00"]) | st.text(max_size=12)
query_values = st.one_of(dates, st.integers(-5, 2000).map(str), st.text(max_size=6))


@settings(max_examples=120, **FUZZ)
@given(path=st.sampled_from(["/prices/AAPL", "/prices/BTCUSD", "/history/activity", "/history/transactions",
                             "/markets", "/clientsentiment", "/marketnavigation/hierarchy_v1.indices"]),
       params=st.dictionaries(st.sampled_from(["from", "to", "max", "resolution", "lastPeriod", "filter", "epics",
                                               "searchTerm", "marketIds", "limit", "type", "detailed"]),
                              query_values | st.sampled_from(list(["MINUTE", "DAY", "WEEK", "HOUR_4"])),
                              max_size=4))
def test_fuzzed_queries_never_500(capital_client, path, params):
    response = capital_client.get(path, params=params)
    assert response.status_code < 500, (path, params, response.text)
    if response.status_code >= 400:
        assert response.json()["errorCode"].startswith("error.")


def test_deeply_nested_json(capital_sim, capital_client):
    raw = b"[" * 200_000 + b"]" * 200_000
    response = capital_client.http.post("/positions", content=raw)
    assert response.status_code == 400
    assert response.json() == {"errorCode": "error.malformed.request"}


def test_unsupported_account_currency_is_refused_at_start():
    from ccxt_capital.sim import CapitalSimulator

    with pytest.raises(ValueError):
        CapitalSimulator(currency="XYZ")
    assert CapitalSimulator(currency="CHF").broker.preferred_account.currency == "CHF"
