"""The transport prepares its requests itself instead of through ``client.request`` (for latency; see
``CapitalTransport._prepare``). These tests pin that it sends what httpx's client would have sent, keeps
the client's cookies, and leaves a proxy configured in the environment in charge.

They talk to an ``httpx.MockTransport``, not the simulator: what is under test is the request on the
wire, which the end-to-end tests against the simulator cannot see.
"""

from __future__ import annotations

import importlib.util
import json
import time

import httpx
import pytest

from ccxt_capital.transport import DEMO_HOST, CapitalSettings, CapitalTransport
from normalization.runtime.retry import RequestNotSent

HOST = "http://broker.test"


class Recorder:
    """A broker that logs in anyone, sets a cookie on login, and records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/api/v1/session":
            return httpx.Response(200, json={"currentAccountId": "A1", "currencyIsoCode": "USD", "accounts": []},
                                  headers={"CST": "cst-1", "X-SECURITY-TOKEN": "tok-1",
                                           "Set-Cookie": "balancer=node-7; Path=/"})
        return httpx.Response(200, json={"echo": request.url.path})


def transport(recorder: Recorder) -> CapitalTransport:
    return CapitalTransport(HOST, lambda: ("key", "me", "secret"),
                            CapitalSettings(pacing=False, http_transport=httpx.MockTransport(recorder)))


def _wire(request: httpx.Request) -> tuple[str, str, bytes, dict[str, str]]:
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in ("cookie",)}
    return request.method, str(request.url), request.content, headers


async def test_requests_are_what_the_httpx_client_would_send() -> None:
    recorder = Recorder()
    wire = transport(recorder)
    await wire.request("POST", "/positions", body={"epic": "EURUSD", "direction": "BUY", "size": 1.5, "name": "é"},
                       kind="deal")
    await wire.request("GET", "/history/activity", params={"lastPeriod": 600, "detailed": "true"})
    ours = recorder.requests[-2:]
    client = wire.client()
    tokens = {"CST": "cst-1", "X-SECURITY-TOKEN": "tok-1"}
    theirs = [
        client.build_request("POST", "/positions", headers=tokens,
                             json={"epic": "EURUSD", "direction": "BUY", "size": 1.5, "name": "é"}),
        client.build_request("GET", "/history/activity", headers=tokens,
                             params={"lastPeriod": 600, "detailed": "true"}),
    ]
    for mine, reference in zip(ours, theirs, strict=True):
        assert _wire(mine) == _wire(reference)
    assert json.loads(ours[0].content) == {"epic": "EURUSD", "direction": "BUY", "size": 1.5, "name": "é"}
    assert ours[0].extensions["timeout"] == httpx.Timeout(wire.timeout).as_dict()
    await wire.close()


async def test_cookies_the_broker_sets_are_sent_back() -> None:
    recorder = Recorder()
    wire = transport(recorder)
    assert await wire.request("GET", "/accounts") == {"echo": "/api/v1/accounts"}
    login, read = recorder.requests
    assert "cookie" not in login.headers
    assert read.headers["cookie"] == "balancer=node-7"
    await wire.close()


async def test_a_body_that_is_not_json_is_refused_before_anything_is_sent() -> None:
    recorder = Recorder()
    wire = transport(recorder)
    await wire.ensure_session()
    with pytest.raises(ValueError):
        await wire.request("POST", "/positions", body={"size": float("nan")}, kind="deal")
    assert [r.url.path for r in recorder.requests] == ["/api/v1/session"]
    await wire.close()


async def test_a_proxy_from_the_environment_carries_the_requests(monkeypatch) -> None:
    # httpx honours the environment's proxies only for a client without an explicit transport, so the
    # wire here has none. Nothing listens at the proxy: the login fails without a request leaving.
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    wire = CapitalTransport(HOST, lambda: ("key", "me", "secret"), CapitalSettings(pacing=False))
    with pytest.raises(RequestNotSent):
        await wire.ensure_session()
    client = wire.client()
    proxies = [transport for pattern, transport in client._mounts.items() if pattern.matches(httpx.URL(HOST))]
    assert proxies and wire._direct is proxies[0]  # the proxy's transport, not the plain connection pool
    await wire.close()


def test_http2_is_used_towards_https_hosts_when_httpx_can_speak_it() -> None:
    # The simulator speaks HTTP/1.1 in clear on loopback; the real hosts negotiate HTTP/2 over TLS.
    can = importlib.util.find_spec("h2") is not None
    credentials = lambda: ("key", "me", "secret")  # noqa: E731
    assert CapitalTransport(DEMO_HOST, credentials).http2 is can
    assert CapitalTransport(HOST, credentials).http2 is False
    assert CapitalTransport(HOST, credentials, CapitalSettings(http2=False)).http2 is False
    assert CapitalTransport(DEMO_HOST, credentials, CapitalSettings(http2=False)).http2 is False


def test_settings_are_read_once_from_the_options_typed_and_frozen() -> None:
    # The options dict stays the user's surface; the transport is configured from its typed, frozen reading.
    async def sleep(seconds: float) -> None:
        return None

    clock = lambda: 1_000.0  # noqa: E731
    settings = CapitalSettings.from_options(
        {"pacing": False, "sessionRefreshAfter": "300", "accountId": 42, "http2": False, "rateLimitWait": 3,
         "orderTimeout": 4, "clock": clock, "sleep": sleep}, timeout_ms=2500, demo=False)
    assert (settings.timeout, settings.pacing, settings.demo, settings.refresh_after, settings.account_id) == (
        2.5, False, False, 300.0, "42")
    assert (settings.http2, settings.rate_limit_wait, settings.deal_wait) == (False, 3.0, 4.0)
    assert settings.clock is clock and settings.sleep is sleep and settings.pacer_clock is clock
    with pytest.raises(AttributeError):
        settings.timeout = 1.0  # type: ignore[misc]
    default = CapitalSettings.from_options({"pacing": None, "accountId": ""})  # unset, as ccxt's safe_value reads
    assert default.pacing is True and default.account_id is None and default.refresh_after == 540.0
    assert default.pacer_clock is time.monotonic and default.clock is time.time
    wire = CapitalTransport(HOST, lambda: ("key", "me", "secret"), settings)
    assert wire.timeout == 2.5 and wire.pacer is None and wire.account_id == "42" and wire.http2 is False
