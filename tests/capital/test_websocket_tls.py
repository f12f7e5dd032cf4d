"""``wss://``: the streaming client over TLS, against the simulator served over TLS on loopback.

The certificates are made for the test (trustme): a CA the client is told to trust the way a user
would (``SSL_CERT_FILE``, read by the ``ssl`` default context the client builds and by httpx), and
server certificates it signs. A quote then arrives over ``wss://`` exactly as over ``ws://``; a
certificate the client cannot verify (an unknown CA, another host's name) ends the connect as a
``ccxt.NetworkError`` that says so, before any session token is asked for or sent, and names none
of the credentials.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest
import trustme

from ccxt_capital.sim import CapitalSimulator
from ccxt_capital.streaming import CapitalStreamWire
from tests import streams
from tests.capital.trader_fixtures import trader_config

WAIT = 5.0
SECRETS = ("tls-test-cst-0123456789", "tls-test-token-0123456789")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@contextmanager
def tls_simulator(ca: trustme.CA, *names: str) -> Iterator[CapitalSimulator]:
    """The simulator serving REST and ``/connect`` over TLS with a certificate ``ca`` issued for ``names``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    with CapitalSimulator(rate_limits="off", ssl_context=context) as sim:
        yield sim


def trust(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``ca`` the client's trust store (for ``ssl.create_default_context()`` and httpx alike)."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


async def test_quotes_stream_over_wss_with_the_ca_trusted(ca: trustme.CA, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    trust(ca, tmp_path, monkeypatch)
    with tls_simulator(ca, "127.0.0.1") as sim:
        assert sim.base_url.startswith("https://")
        ex = ccxt.pro.capitalcom(trader_config(sim, tmp_path))
        try:
            assert ex.stream_url() == f"wss://127.0.0.1:{sim.port}/connect"
            first = await asyncio.wait_for(ex.watch_ticker("AAPL/USD"), WAIT)
            quote = sim.quote("AAPL")
            assert (first["bid"], first["ask"]) == (quote.bid, quote.offer)
            ws = ex.stream.connections[0].ws
            assert ws is not None and ws._transport.get_extra_info("ssl_object") is not None  # TLS, not ws://
            sim.pin_price("AAPL", 150.0, at=sim.clock.now() + 60)
            update = await streams.next_update(lambda: ex.watch_ticker("AAPL/USD"), sim, 20.0, WAIT)
            assert update["bid"] == sim.quote("AAPL").bid
        finally:
            await ex.close()


@pytest.mark.parametrize("case", ["unknown CA", "another host's name"])
async def test_a_certificate_that_does_not_verify_is_a_network_error_without_secrets(
        case: str, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("127.0.0.1",) if case == "unknown CA" else ("capital.example",)
    trust(trustme.CA() if case == "unknown CA" else ca, tmp_path, monkeypatch)
    asked: list[int] = []

    async def tokens() -> tuple[str, str]:
        asked.append(1)
        return SECRETS

    with tls_simulator(ca, *names) as sim:
        wire = CapitalStreamWire(f"wss://127.0.0.1:{sim.port}/connect", tokens, lambda *_: None, timeout=WAIT)
        try:
            with pytest.raises(ccxt.NetworkError) as raised:
                await wire.subscribe_quotes(["AAPL"])
        finally:
            await wire.close()
        message = str(raised.value)
        assert f"wss://127.0.0.1:{sim.port}/connect" in message and "CERTIFICATE_VERIFY_FAILED" in message
        assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)
        assert not asked and not sim.streamer.connections  # nothing was sent to a peer it could not verify

        # The whole adapter the same way: its REST login meets the certificate first.
        config: dict[str, Any] = trader_config(sim, tmp_path)
        ex = ccxt.pro.capitalcom(config)
        try:
            with pytest.raises(ccxt.NetworkError) as raised:
                await ex.watch_ticker("AAPL/USD")
        finally:
            await ex.close()
        message = str(raised.value)
        assert "POST /session: not sent" in message and "TLS certificate verify failed" in message
        for secret in (config["apiKey"], config["password"], *SECRETS):
            assert secret not in message
