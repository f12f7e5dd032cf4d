"""run_cli against an in-memory ccxt Exchange: JSON out, JSON errors, exit codes, redaction, dry runs."""

from __future__ import annotations

import argparse
import io
import json
from datetime import datetime, timezone
from decimal import Decimal

import ccxt
import pytest
from ccxt.base.decimal_to_precision import TICK_SIZE

from normalization.runtime.cli import (
    EXIT_ERROR,
    EXIT_EXCHANGE,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_USAGE,
    config_from_args,
    parse_time,
    redact,
    run_cli,
)
from normalization.runtime.factory import ConfigError

H = 3_600_000
T0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z
API_KEY = "ak-live-7f3a9c1e"
PASSWORD = "hunter2-very-secret"


class FakeExchange(ccxt.Exchange):
    """A broker-less ccxt exchange: one stock market, a ticker, 300 hourly bars served 100 a page."""

    def describe(self):
        return self.deep_extend(
            super().describe(),
            {
                "id": "fake",
                "name": "Fake",
                "precisionMode": TICK_SIZE,
                "has": {
                    "fetchTicker": True,
                    "fetchOHLCV": True,
                    "createOrder": True,
                    "cancelOrder": True,
                    "fetchBalance": True,
                    "fetchPositions": True,
                    "fetchOpenOrders": True,
                    "fetchMyTrades": True,
                    "fetchTime": True,
                },
                "timeframes": {"1h": "1h"},
            },
        )

    def __init__(self, config=None):
        super().__init__(config or {})
        self.created: list[tuple] = []
        self.ohlcv_calls: list[tuple] = []
        self.closed = False
        self.fail_with: Exception | None = None

    def fetch_markets(self, params={}):
        return [
            self.safe_market_structure(
                {
                    "id": "265598",
                    "symbol": "AAPL/USD",
                    "base": "AAPL",
                    "quote": "USD",
                    "baseId": "AAPL",
                    "quoteId": "USD",
                    "type": "spot",
                    "spot": True,
                    "active": True,
                    "taker": 0.0005,
                    "maker": 0.0005,
                    "precision": {"amount": 1.0, "price": 0.01},
                    "limits": {
                        "amount": {"min": 1.0, "max": 10_000.0},
                        "price": {"min": 0.01, "max": None},
                        "cost": {"min": 100.0, "max": None},
                    },
                    "info": {"conId": 265598, "apiKey": API_KEY},
                }
            )
        ]

    def fetch_time(self, params={}):
        if self.fail_with:
            raise self.fail_with
        return T0

    def fetch_ticker(self, symbol, params={}):
        return self.safe_ticker({"symbol": symbol, "timestamp": T0, "bid": 187.40, "ask": 187.50, "last": 187.45})

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params={}):
        self.ohlcv_calls.append((since, limit, dict(params)))
        bars = [[T0 + i * H, 1.0 + i, 2.0 + i, 0.5 + i, 1.5 + i, 10.0] for i in range(300)]
        until = params.get("until")
        out = [b for b in bars if (since is None or b[0] >= since) and (until is None or b[0] <= until)]
        return out[: min(100, limit or 100)]

    def fetch_balance(self, params={}):
        return self.safe_balance(
            {"info": {"password": PASSWORD}, "USD": {"free": 1000.0, "used": 0.0, "total": 1000.0}}
        )

    def fetch_positions(self, symbols=None, params={}):
        return [{"symbol": "AAPL/USD", "contracts": 10, "side": "long", "entryPrice": Decimal("187.1")}]

    def fetch_open_orders(self, symbol=None, since=None, limit=None, params={}):
        return [{"id": "1", "symbol": symbol, "datetime": datetime(2024, 6, 1, tzinfo=timezone.utc)}]

    def fetch_my_trades(self, symbol=None, since=None, limit=None, params={}):
        return [{"id": "t1", "price": float("nan")}]

    def create_order(self, symbol, type, side, amount, price=None, params={}):
        self.created.append((symbol, type, side, amount, price, params))
        return {"id": "42", "symbol": symbol, "type": type, "side": side, "amount": amount, "status": "open"}

    def cancel_order(self, id, symbol=None, params={}):
        if self.fail_with:
            raise self.fail_with
        return {"id": id, "status": "canceled"}

    def close(self):
        self.closed = True


class Harness:
    def __init__(self) -> None:
        self.exchange = FakeExchange({"apiKey": API_KEY, "password": PASSWORD})
        self.sim_args: list[str] | None = None

    def build(self, args: argparse.Namespace) -> FakeExchange:
        self.args = args
        return self.exchange

    def sim(self, argv: list[str]) -> int:
        self.sim_args = argv
        return 7

    def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run_cli(
            list(argv),
            prog="ccxt-fake",
            build_exchange=self.build,
            run_simulator=self.sim,
            add_connection_args=lambda p: p.add_argument("--port", type=int, default=7497),
            stdout=out,
            stderr=err,
        )
        return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _markets_cache(tmp_path, monkeypatch) -> None:
    """Connected commands cache their markets (for validate): in this test's directory, not the user's."""
    monkeypatch.setenv("CCXT_BROKERS_MARKETS_CACHE", str(tmp_path / "markets"))


@pytest.fixture
def cli() -> Harness:
    return Harness()


def error_of(err: str) -> dict:
    return json.loads(err)["error"]


def test_help_lists_commands_and_exit_codes(cli: Harness) -> None:
    code, printed, err = cli.run("--help")
    assert code == EXIT_OK and err == ""
    for command in (
        "health",
        "markets",
        "ticker",
        "ohlcv",
        "balance",
        "positions",
        "orders",
        "trades",
        "place",
        "cancel",
        "sim",
    ):
        assert command in printed
    assert "exit codes" in printed
    code, printed, _ = cli.run("place", "--help")
    assert code == EXIT_OK and "--dry-run" in printed and "--port" in printed


def test_usage_errors_are_json_with_exit_2(cli: Harness) -> None:
    code, out, err = cli.run()
    assert code == EXIT_USAGE and out == "" and "command is required" in error_of(err)["message"]
    code, out, err = cli.run("place", "AAPL/USD", "hold", "1")
    assert code == EXIT_USAGE and error_of(err)["type"] == "UsageError" and "usage" in error_of(err)
    code, _, err = cli.run("ohlcv", "AAPL/USD", "--since", "yesterday-ish")
    assert code == EXIT_USAGE and "time" in error_of(err)["message"]


def test_health_and_connection_flags(cli: Harness) -> None:
    code, out, _ = cli.run("health", "--port", "4002")
    doc = json.loads(out)
    assert code == EXIT_OK and doc["ok"] is True and doc["markets"] == 1 and doc["time"] == T0
    assert cli.args.port == 4002 and cli.exchange.closed


def test_markets_drop_info_and_redact_secrets(cli: Harness) -> None:
    code, out, _ = cli.run("markets", "--search", "aapl")
    doc = json.loads(out)
    assert code == EXIT_OK and doc["count"] == 1 and "info" not in doc["markets"][0]
    code, out, _ = cli.run("markets", "--info")
    assert json.loads(out)["markets"][0]["info"]["apiKey"] == "***"
    assert API_KEY not in out


def test_ticker_balance_positions_orders_trades(cli: Harness) -> None:
    assert json.loads(cli.run("ticker", "AAPL/USD")[1])["bid"] == 187.40
    code, out, _ = cli.run("balance", "--info")
    assert code == EXIT_OK and PASSWORD not in out and json.loads(out)["USD"]["total"] == 1000.0
    assert json.loads(cli.run("positions")[1])[0]["entryPrice"] == 187.1  # Decimal -> number
    assert json.loads(cli.run("orders", "--symbol", "AAPL/USD")[1])[0]["datetime"] == "2024-06-01T00:00:00Z"
    assert json.loads(cli.run("trades")[1])[0]["price"] is None  # NaN is not JSON


def test_ohlcv_paginates_to_until_json_and_csv(cli: Harness) -> None:
    until = T0 + 249 * H
    code, out, _ = cli.run("ohlcv", "AAPL/USD", "--since", "2024-06-01", "--until", str(until))
    doc = json.loads(out)
    assert code == EXIT_OK and doc["count"] == 250
    assert doc["ohlcv"][0][0] == T0 and doc["ohlcv"][-1][0] == until
    assert len(cli.exchange.ohlcv_calls) == 3 and cli.exchange.ohlcv_calls[0][2] == {"until": until}
    code, out, _ = cli.run("ohlcv", "AAPL/USD", "--since", str(T0), "--limit", "2", "--format", "csv")
    assert out.splitlines() == [
        "timestamp,datetime,open,high,low,close,volume",
        f"{T0},2024-06-01T00:00:00Z,1.0,2.0,0.5,1.5,10.0",
        f"{T0 + H},2024-06-01T01:00:00Z,2.0,3.0,1.5,2.5,10.0",
    ]


def test_place_dry_run_validates_prices_and_never_sends(cli: Harness) -> None:
    code, out, _ = cli.run("place", "AAPL/USD", "buy", "10.7", "--dry-run")
    doc = json.loads(out)
    assert code == EXIT_OK and doc["dryRun"] is True and doc["sent"] is False
    assert doc["order"]["amount"] == 10.0  # truncated to whole shares
    assert doc["estimate"]["price"] == 187.50  # a market buy pays the ask
    assert doc["estimate"]["cost"] == pytest.approx(1875.0)
    assert doc["estimate"]["fee"] == pytest.approx(0.9375)
    code, out, _ = cli.run(
        "validate",
        "AAPL/USD",
        "sell",
        "5",
        "--type",
        "limit",
        "--price",
        "190.123",
        "--tif",
        "DAY",
        "--client-order-id",
        "bot-1",
    )
    doc = json.loads(out)
    assert doc["order"]["price"] == 190.12 and doc["order"]["params"] == {
        "clientOrderId": "bot-1",
        "timeInForce": "DAY",
    }
    assert cli.exchange.created == []


def test_place_rejections_exit_3(cli: Harness) -> None:
    code, _, err = cli.run("place", "AAPL/USD", "buy", "0.4", "--dry-run")
    assert code == EXIT_EXCHANGE and error_of(err)["type"] == "InvalidOrder"
    code, _, err = cli.run("place", "AAPL/USD", "buy", "1", "--dry-run")  # 187.5 > 100 ok
    assert code == EXIT_OK
    code, _, err = cli.run("place", "AAPL/USD", "buy", "1", "--type", "limit", "--price", "50", "--dry-run")
    assert code == EXIT_EXCHANGE and "cost" in error_of(err)["message"]
    code, _, err = cli.run("place", "AAPL/USD", "buy", "1", "--type", "limit")
    assert code == EXIT_EXCHANGE and error_of(err)["type"] == "ArgumentsRequired"
    code, _, err = cli.run("place", "MSFT/USD", "buy", "1", "--dry-run")
    assert code == EXIT_EXCHANGE and error_of(err)["type"] == "BadSymbol"
    assert cli.exchange.created == []


def test_place_sends_with_unified_params(cli: Harness) -> None:
    code, out, _ = cli.run(
        "place",
        "AAPL/USD",
        "buy",
        "3",
        "--type",
        "stop-limit",
        "--price",
        "190",
        "--trigger-price",
        "189.999",
        "--stop-loss",
        "180",
        "--reduce-only",
        "--param",
        "outsideRth=true",
    )
    assert code == EXIT_OK and json.loads(out)["id"] == "42"
    ((symbol, type_, side, amount, price, params),) = cli.exchange.created
    assert (symbol, type_, side, amount, price) == ("AAPL/USD", "limit", "buy", 3.0, 190.0)
    assert params == {
        "outsideRth": True,
        "triggerPrice": 190.0,
        "stopLoss": {"triggerPrice": 180.0},
        "reduceOnly": True,
    }


def test_cancel_and_exit_codes_by_error_family(cli: Harness) -> None:
    code, out, _ = cli.run("cancel", "42", "--symbol", "AAPL/USD")
    assert code == EXIT_OK and json.loads(out)["status"] == "canceled"
    cli.exchange.fail_with = ccxt.OrderNotFound("order 42 not found")
    assert cli.run("cancel", "42")[0] == EXIT_EXCHANGE
    cli.exchange.fail_with = ccxt.RequestTimeout("timed out")
    code, _, err = cli.run("health")
    assert code == EXIT_NETWORK and error_of(err)["type"] == "RequestTimeout"
    cli.exchange.fail_with = RuntimeError("boom")
    code, _, err = cli.run("health", "--debug")
    assert code == EXIT_ERROR and "Traceback" in error_of(err)["traceback"]


def test_secrets_never_printed_in_errors(cli: Harness) -> None:
    cli.exchange.fail_with = ccxt.AuthenticationError(
        f'401 {{"apiKey": "{API_KEY}", "X-SECURITY-TOKEN": "tok123456", "password": "{PASSWORD}"}}'
    )
    code, out, err = cli.run("cancel", "1", "--debug")
    assert code == EXIT_EXCHANGE and out == ""
    assert API_KEY not in err and PASSWORD not in err and "tok123456" not in err
    assert "***" in error_of(err)["message"]


def test_build_errors_and_sim_dispatch(cli: Harness) -> None:
    def bad_build(args: argparse.Namespace):
        raise ConfigError("IB_PORT='x' is not an integer")

    err = io.StringIO()
    code = run_cli(["health"], prog="p", build_exchange=bad_build, run_simulator=cli.sim, stderr=err)
    assert code == EXIT_USAGE and "IB_PORT" in error_of(err.getvalue())["message"]
    assert cli.run("sim", "--port", "0", "--help") == (7, "", "")
    assert cli.sim_args == ["--port", "0", "--help"]


def test_async_exchange_is_driven_on_a_private_loop(cli: Harness) -> None:
    class AsyncFake:
        id = "afake"
        has = {"fetchTime": True}
        closed = False

        async def load_markets(self):
            return {"X/USD": {}}

        async def fetch_time(self):
            return 123

        async def close(self):
            AsyncFake.closed = True

    out = io.StringIO()
    code = run_cli(["health"], prog="p", build_exchange=lambda a: AsyncFake(), run_simulator=cli.sim, stdout=out)
    assert code == EXIT_OK and json.loads(out.getvalue())["time"] == 123 and AsyncFake.closed


def test_helpers(tmp_path) -> None:
    assert parse_time("2024-06-01") == T0
    assert parse_time("2024-06-01T00:00:00Z") == T0
    assert parse_time("now", now=lambda: 100.0) == 100_000
    assert parse_time("-1h", now=lambda: 7200.0) == 3_600_000
    assert redact({"nested": [{"Cst": "abcd1234", "ok": "x"}]}) == {"nested": [{"Cst": "***", "ok": "x"}]}
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({"apiKey": "k", "options": {"host": "h"}}))
    args = argparse.Namespace(config=str(cfg_file), timeout=2.5, live=True)
    assert config_from_args(args, {"options": {"port": 1}}) == {
        "apiKey": "k",
        "options": {"port": 1, "host": "h", "live": True},
        "timeout": 2500,
    }
    with pytest.raises(ConfigError):
        config_from_args(argparse.Namespace(config=str(tmp_path / "missing.json")))
