"""Secrets never reach a log record, also at DEBUG over HTTP/2 (the ``http2`` extra: h2 + hpack).

hpack logs every header it codes (``Adding b'x-cap-api-key'=b'...'``), and decodes the login answer's
tokens before the adapter has read them; httpcore's trace prints raw headers. The test drives a real
HTTP/2 connection (httpx -> httpcore -> h2 -> hpack) to the simulator through an h2c front and reads
every record every logger produced.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from ccxt_capital.async_support import CapitalTrader as AsyncCapitalTrader
from normalization.runtime.redaction import LOGGERS, redactor

from .h2_proxy import H2Proxy
from .trader_fixtures import trader_config

pytest.importorskip("h2")


async def test_debug_logs_over_http2_carry_no_secret(capital_sim, tmp_path: Path, caplog) -> None:
    proxy = await H2Proxy(capital_sim.base_url).start()
    config = trader_config(capital_sim, tmp_path, symbols=["AAPL/USD"], baseUrl=proxy.url,
                           httpTransport=httpx.AsyncHTTPTransport(http1=False, http2=True))
    caplog.set_level(logging.DEBUG)
    ex = AsyncCapitalTrader(config)
    try:
        await ex.load_markets()
        await ex.fetch_ticker("AAPL/USD")
        order = await ex.create_order("AAPL/USD", "limit", "buy", 1, 100.0)
        await ex.cancel_order(order["id"])
        cst, token = ex._wire()._tokens
    finally:
        await ex.close()
        await proxy.stop()
    assert proxy.streams_served >= 4  # the calls really went over HTTP/2
    names = {record.name for record in caplog.records}
    assert any(name.startswith("hpack") for name in names), names  # the h2 header codec logged headers
    assert names & {"httpcore.http2"}  # and httpcore's HTTP/2 trace
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "[redacted]" in text
    for secret in (capital_sim.api_key, capital_sim.password, cst, token):
        assert secret not in text


def test_every_dependency_logger_carries_the_redactor() -> None:
    for name in ("h2", "hpack.hpack", "hpack.table", "httpcore.http2", "httpcore.http11", "httpcore.connection",
                 "httpx"):
        assert name in LOGGERS
        assert redactor() in logging.getLogger(name).filters


def test_values_are_redacted_in_any_shape() -> None:
    from normalization.runtime.redaction import register_secrets

    register_secrets("s3cr3t-value-1234")
    shapes = ["Adding b'cst'=b's3cr3t-value-1234' to the header table", "(b'x', b's3cr3t-value-1234')",
              "{'password': 's3cr3t-value-1234'}", "Evicting b'x-security-token': b'abc' from the header table"]
    for shape in shapes:
        record = logging.LogRecord("hpack.hpack", logging.DEBUG, __file__, 1, "%s", (shape,), None)
        redactor().filter(record)
        assert "s3cr3t-value-1234" not in record.getMessage() and "abc" not in record.getMessage()
