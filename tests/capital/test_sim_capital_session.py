"""Session endpoints of the Capital.com simulator over real HTTP: login, tokens, expiry, accounts."""

from __future__ import annotations

import base64

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ccxt_capital.sim import CapitalSimulator
from ccxt_capital.sim.testing import SimClient

pytestmark = pytest.mark.capital_sim(rate_limits="off")


def _login(sim, *, key="demo-api-key", identifier="demo@example.com", password="demo-password", **extra):
    headers = {} if key is None else {"X-CAP-API-KEY": key}
    return httpx.post(sim.api_url + "/session", headers=headers,
                      json={"identifier": identifier, "password": password, **extra})


def test_login_returns_tokens_and_account_info(capital_sim):
    response = _login(capital_sim, encryptedPassword=False)
    assert response.status_code == 200
    assert response.headers["CST"] and response.headers["X-SECURITY-TOKEN"]
    body = response.json()
    assert body["accountType"] == "CFD"
    assert body["currencyIsoCode"] == "USD"
    assert body["accountInfo"] == {"balance": 10000.0, "deposit": 10000.0, "profitLoss": 0.0, "available": 10000.0}
    assert body["currentAccountId"] == body["accounts"][0]["accountId"]
    assert [a["preferred"] for a in body["accounts"]] == [True, False]
    assert {a["currency"] for a in body["accounts"]} == {"USD", "EUR"}
    for key in ("clientId", "timezoneOffset", "streamingHost", "hasActiveDemoAccounts", "trailingStopsEnabled"):
        assert key in body


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"key": "wrong-key"}, 401, "error.invalid.api.key"),
        ({"key": None}, 400, "error.null.api.key"),
        ({"password": "nope"}, 401, "error.invalid.details"),
        ({"identifier": "someone@else.com"}, 401, "error.invalid.details"),
    ],
)
def test_bad_credentials_are_refused(capital_sim, kwargs, status, code):
    response = _login(capital_sim, **kwargs)
    assert response.status_code == status
    assert response.json() == {"errorCode": code}
    assert "CST" not in response.headers


def test_encrypted_password_login(capital_sim):
    key_response = httpx.get(capital_sim.api_url + "/session/encryptionKey",
                             headers={"X-CAP-API-KEY": "demo-api-key"})
    assert key_response.status_code == 200
    body = key_response.json()
    public_key = serialization.load_der_public_key(base64.b64decode(body["encryptionKey"]))
    # The way real clients do it: base64 the "password|timestamp", RSA/PKCS#1 v1.5, base64 again.
    inner = base64.b64encode(f"demo-password|{body['timeStamp']}".encode())
    cipher = base64.b64encode(public_key.encrypt(inner, padding.PKCS1v15())).decode()
    assert _login(capital_sim, password=cipher, encryptedPassword=True).status_code == 200
    wrong = base64.b64encode(public_key.encrypt(b"bad|1", padding.PKCS1v15())).decode()
    assert _login(capital_sim, password=wrong, encryptedPassword=True).json() == {"errorCode": "error.invalid.details"}
    assert _login(capital_sim, password="not-base64!", encryptedPassword=True).status_code == 401


def test_encryption_key_needs_api_key(capital_sim):
    response = httpx.get(capital_sim.api_url + "/session/encryptionKey", headers={"X-CAP-API-KEY": "x"})
    assert response.status_code == 401


def test_time_is_the_simulated_clock_and_needs_no_session(capital_sim):
    response = httpx.get(capital_sim.api_url + "/time")
    assert response.json() == {"serverTime": capital_sim.clock.now_ms()}
    capital_sim.advance(3600)
    assert httpx.get(capital_sim.api_url + "/time").json()["serverTime"] == capital_sim.clock.now_ms()


def test_requests_without_tokens_are_refused(capital_sim):
    response = httpx.get(capital_sim.api_url + "/accounts")
    assert response.status_code == 401
    assert response.json() == {"errorCode": "error.null.client.token"}
    response = httpx.get(capital_sim.api_url + "/accounts", headers={"CST": "abc", "X-SECURITY-TOKEN": "def"})
    assert response.status_code == 401
    assert response.json() == {"errorCode": "error.invalid.session.token"}


def test_token_pair_must_match(capital_sim, capital_client):
    other = SimClient(capital_sim)
    mixed = {"CST": capital_client.http.headers["CST"], "X-SECURITY-TOKEN": other.http.headers["X-SECURITY-TOKEN"]}
    assert httpx.get(capital_sim.api_url + "/ping", headers=mixed).status_code == 401


def test_get_session_ping_and_logout(capital_client):
    session = capital_client.get("/session").json()
    assert session["accountId"] == "200000000000001"
    assert session["currency"] == "USD"
    assert {"clientId", "timezoneOffset", "locale", "streamEndpoint"} <= set(session)
    assert capital_client.get("/ping").json() == {"status": "OK"}
    assert capital_client.delete("/session").json() == {"status": "SUCCESS"}
    after = capital_client.get("/ping")
    assert after.status_code == 401
    assert after.json() == {"errorCode": "error.invalid.session.token"}


def test_session_expires_after_ten_idle_minutes_on_the_sim_clock(capital_sim, capital_client):
    capital_sim.advance(599)
    assert capital_client.get("/ping").status_code == 200  # activity restarts the ten minutes
    capital_sim.advance(599)
    assert capital_client.get("/accounts").status_code == 200
    capital_sim.advance(600)
    expired = capital_client.get("/accounts")
    assert expired.status_code == 401
    assert expired.json() == {"errorCode": "error.invalid.session.token"}
    # It stays dead, and a new login works.
    assert capital_client.get("/ping").status_code == 401
    assert capital_client.login().status_code == 200
    assert capital_client.get("/ping").status_code == 200


def test_pinging_every_nine_minutes_keeps_the_session(capital_sim, capital_client):
    for _ in range(10):
        capital_sim.advance(540)
        assert capital_client.get("/ping").status_code == 200


def test_switch_account(capital_sim, capital_client):
    response = capital_client.put("/session", {"accountId": "200000000000002"})
    assert response.status_code == 200
    assert response.json()["dealingEnabled"] is True
    assert capital_client.get("/session").json()["currency"] == "EUR"
    confirm = capital_client.deal("POST", "/positions", {"epic": "EURUSD", "direction": "BUY", "size": 1000})
    assert confirm["dealStatus"] == "ACCEPTED"
    assert [p.account_id for p in capital_sim.positions()] == ["200000000000002"]
    # Positions belong to the account they were opened in.
    capital_client.put("/session", {"accountId": "200000000000001"})
    assert capital_client.get("/positions").json() == {"positions": []}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"accountId": "200000000000001"}, "error.not-different.accountId"),
        ({"accountId": "999"}, "error.invalid.accountId"),
        ({"accountId": 7}, "error.invalid.accountId"),
        ({}, "error.invalid.accountId"),
    ],
)
def test_switch_account_refusals(capital_client, body, code):
    response = capital_client.put("/session", body)
    assert response.status_code == 400
    assert response.json() == {"errorCode": code}
    assert capital_client.get("/session").json()["accountId"] == "200000000000001"


@pytest.mark.capital_sim(currency="EUR", rate_limits="off")
def test_preferred_currency_is_configurable(capital_client):
    session = capital_client.get("/session").json()
    assert session["currency"] == "EUR"
    accounts = capital_client.get("/accounts").json()["accounts"]
    assert [(a["currency"], a["preferred"]) for a in accounts] == [("EUR", True), ("USD", False)]


def test_header_names_are_case_insensitive(capital_sim, capital_client):
    headers = capital_client.http.headers
    lower = {"cst": headers["CST"], "x-security-token": headers["X-SECURITY-TOKEN"]}
    assert httpx.get(capital_sim.api_url + "/ping", headers=lower).status_code == 200
    login = httpx.post(capital_sim.api_url + "/session", headers={"x-cap-api-key": "demo-api-key"},
                       json={"identifier": "demo@example.com", "password": "demo-password"})
    assert login.status_code == 200


def test_session_tokens_do_not_follow_the_seed():
    """Prices and deal ids are seeded; bearer tokens must not be, or knowing the seed is a key."""
    tokens = []
    for _ in range(2):
        with CapitalSimulator(port=0, seed=7, rate_limits="off") as sim:
            client = SimClient(sim)
            tokens.append((client.http.headers["CST"], client.http.headers["X-SECURITY-TOKEN"]))
            assert len(tokens[-1][0]) >= 32 and tokens[-1][0] != tokens[-1][1]
    assert tokens[0] != tokens[1]


def test_encryption_key_is_2048_bit_and_old_ciphertexts_are_refused(capital_sim):
    body = httpx.get(capital_sim.api_url + "/session/encryptionKey",
                     headers={"X-CAP-API-KEY": capital_sim.api_key}).json()
    public_key = serialization.load_der_public_key(base64.b64decode(body["encryptionKey"]))
    assert public_key.key_size == 2048

    def cipher(stamp: int) -> str:
        inner = base64.b64encode(f"{capital_sim.password}|{stamp}".encode())
        return base64.b64encode(public_key.encrypt(inner, padding.PKCS1v15())).decode()

    stale = cipher(body["timeStamp"])
    capital_sim.advance(3600)  # an hour later the same ciphertext is a replay
    refused = _login(capital_sim, password=stale, encryptedPassword=True)
    assert (refused.status_code, refused.json()) == (401, {"errorCode": "error.invalid.details"})
    capital_sim.advance(1)
    assert _login(capital_sim, password=cipher(capital_sim.clock.now_ms()), encryptedPassword=True).status_code == 200


def test_authenticated_answers_carry_the_session_tokens(capital_sim, capital_client):
    cst, token = capital_client.http.headers["CST"], capital_client.http.headers["X-SECURITY-TOKEN"]
    for response in (capital_client.get("/ping"), capital_client.get("/positions/nope"),
                     capital_client.get("/marketnavigation/")):
        assert (response.headers["CST"], response.headers["X-SECURITY-TOKEN"]) == (cst, token)
    assert "CST" not in httpx.get(capital_sim.api_url + "/time").headers
