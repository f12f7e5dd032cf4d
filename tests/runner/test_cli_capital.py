"""``ccxt-capital`` against the Capital.com simulator: JSON, exit codes, credentials never printed.

The simulator runs without rate limits and the client's limiter is off (``--config``): these tests are
about the command line; pacing has its own tests. Credentials come from flags or ``CAPITAL_*``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from ccxt_capital.__main__ import add_connection_args, build_config, main
from normalization.runtime.cli import EXIT_EXCHANGE, EXIT_OK, EXIT_USAGE, build_parser
from normalization.runtime.factory import ConfigError
from tests.runner.cli_harness import error, run_main

pytestmark = pytest.mark.capital_sim(rate_limits="off")

# The simulator's clock: Tuesday 2024-03-05 15:00 UTC.
SINCE = "2024-02-05T00:00:00Z"
UNTIL = "2024-02-09T23:59:59Z"


class Cli:
    def __init__(self, sim: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        self.sim = sim
        self.capsys = capsys
        self.config = tmp_path / "cli-config.json"
        self.config.write_text(json.dumps({"options": {"pacing": False}}))

    def flags(self, password: str | None = None) -> list[str]:
        return [
            "--base-url",
            self.sim.base_url,
            "--api-key",
            self.sim.api_key,
            "--login",
            self.sim.identifier,
            "--password",
            password or self.sim.password,
            "--config",
            str(self.config),
        ]

    def __call__(self, *argv: str, password: str | None = None, connect: bool = True) -> tuple[int, Any, str, str]:
        return run_main(main, [*argv, *(self.flags(password) if connect else [])], self.capsys)


@pytest.fixture
def cli(capital_sim: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    return Cli(capital_sim, capsys, tmp_path)


def test_help_and_flag_validation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["balance", "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    for flag in ("--api-key", "--login", "--password", "--base-url", "--live"):
        assert flag in out
    parser = build_parser("ccxt-capital", add_connection_args)
    args = parser.parse_args(
        [
            "health",
            "--login",
            "me@example.com",
            "--base-url",
            "http://127.0.0.1:9",
            "--symbols",
            "AAPL/USD,EUR/USD",
            "--account-id",
            "A1",
            "--cache",
        ]
    )
    config = build_config(args, {"CAPITAL_API_KEY": "env-key", "CAPITAL_PASSWORD": "env-pass", "CAPITAL_LOGIN": "x"})
    assert config["apiKey"] == "env-key" and config["login"] == "me@example.com" and config["password"] == "env-pass"
    options = config["options"]
    assert options["baseUrl"] == "http://127.0.0.1:9" and options["accountId"] == "A1"
    assert options["symbols"] == ["AAPL/USD", "EUR/USD"] and options["ohlcvCache"] is True
    assert options["live"] is False
    with pytest.raises(ConfigError, match=r"ccxt-capital needs --api-key \(CAPITAL_API_KEY\)"):
        build_config(parser.parse_args(["health", "--login", "a", "--password", "b"]), {})


def test_missing_credentials_exit_2(cli: Cli) -> None:
    code, out, _, err = cli("health", connect=False)
    assert code == EXIT_USAGE and out is None and "--password (CAPITAL_PASSWORD)" in error(err)["message"]


def test_environment_supplies_credentials(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPITAL_API_KEY", cli.sim.api_key)
    monkeypatch.setenv("CAPITAL_LOGIN", cli.sim.identifier)
    monkeypatch.setenv("CAPITAL_PASSWORD", cli.sim.password)
    code, out, _, _ = cli("health", "--base-url", cli.sim.base_url, "--config", str(cli.config), connect=False)
    assert code == EXIT_OK and out["ok"] is True and out["exchange"] == "capitalcom"


def test_wrong_password_exits_3_and_never_prints_a_secret(cli: Cli) -> None:
    wrong = "wrong-password-4711"
    code, out, raw, err = cli("balance", "--debug", password=wrong)
    assert code == EXIT_EXCHANGE and out is None
    assert error(err)["type"] == "AuthenticationError"
    for secret in (wrong, cli.sim.api_key):
        assert secret not in raw and secret not in err


def test_health_markets_ticker_balance(cli: Cli) -> None:
    code, out, raw, _ = cli("health")
    assert code == EXIT_OK and out["ok"] is True and out["time"] == 1_709_650_800_000  # the simulator's clock
    code, out, _, _ = cli("markets", "--search", "EUR/USD")
    assert code == EXIT_OK and [m["symbol"] for m in out["markets"]] == ["EUR/USD"]
    code, out, _, _ = cli("ticker", "AAPL/USD", "EUR/USD")
    assert code == EXIT_OK and set(out) == {"AAPL/USD", "EUR/USD"} and out["AAPL/USD"]["bid"] > 0
    code, out, raw, _ = cli("balance", "--info")
    assert code == EXIT_OK and out["USD"]["total"] == pytest.approx(10_000.0)
    assert out["info"]["baseCurrency"] == "USD" and out["info"]["equity"] == pytest.approx(10_000.0)
    assert cli.sim.api_key not in raw and cli.sim.password not in raw


def test_ohlcv_json_csv_and_cached_second_run(cli: Cli, capital_price_counter: Any, tmp_path: Path) -> None:
    cache = str(tmp_path / "bars")
    code, direct, _, _ = cli("ohlcv", "EUR/USD", "-t", "1h", "--since", SINCE, "--until", UNTIL)
    assert code == EXIT_OK and direct["count"] > 100  # FX trades around the clock on weekdays
    code, out, _, _ = cli("ohlcv", "EUR/USD", "-t", "1h", "--since", SINCE, "--until", UNTIL, "--cache", cache)
    assert code == EXIT_OK and out == direct  # the cache changes where bars come from, not which
    assert capital_price_counter.calls >= 1
    capital_price_counter.reset()
    code, text, _, _ = cli(
        "ohlcv", "EUR/USD", "-t", "1h", "--since", SINCE, "--until", UNTIL, "--cache", cache, "--format", "csv"
    )
    assert code == EXIT_OK and capital_price_counter.calls == 0
    rows = list(csv.reader(io.StringIO(text)))
    assert [int(r[0]) for r in rows[1:]] == [r[0] for r in out["ohlcv"]]
    # a month built from daily bars (Capital.com has no monthly resolution)
    code, out, _, _ = cli(
        "ohlcv", "EUR/USD", "-t", "1M", "--since", "2023-10-01", "--until", "2024-01-31", "--cache", cache
    )
    assert code == EXIT_OK and [r[0] for r in out["ohlcv"]] == [
        1696118400000,
        1698796800000,
        1701388800000,
        1704067200000,
    ]


def test_place_dry_run_then_real_then_positions_trades_orders_cancel(cli: Cli) -> None:
    code, out, _, _ = cli("place", "AAPL/USD", "buy", "2", "--dry-run")
    assert code == EXIT_OK and out["dryRun"] is True and cli.sim.positions() == []
    code, order, _, _ = cli("place", "AAPL/USD", "buy", "2", "--client-order-id", "cap-cli-1")
    assert code == EXIT_OK and order["status"] == "closed" and order["filled"] == 2
    code, out, _, _ = cli("positions")
    assert code == EXIT_OK and [(p["symbol"], p["contracts"]) for p in out] == [("AAPL/USD", 2)]
    code, out, _, _ = cli("balance", "--info")
    assert out["AAPL"]["total"] == 2
    # CFDs: the cash figure already is equity (balance = deposit + profitLoss); positions add nothing
    assert out["info"]["equity"] == pytest.approx(out["USD"]["total"])
    code, out, _, _ = cli("trades", "--symbol", "AAPL/USD")
    assert code == EXIT_OK and sum(t["amount"] for t in out) == 2
    quote = cli.sim.quote("AAPL")
    code, resting, _, _ = cli("place", "AAPL/USD", "buy", "1", "--type", "limit", "--price", f"{quote.bid * 0.8:.2f}")
    assert code == EXIT_OK and resting["status"] == "open"
    code, out, _, _ = cli("orders", "--symbol", "AAPL/USD")
    assert code == EXIT_OK and resting["id"] in [o["id"] for o in out]
    code, out, _, _ = cli("cancel", resting["id"], "--symbol", "AAPL/USD")
    assert code == EXIT_OK and out["status"] == "canceled"
    assert cli.sim.working_orders() == []


def test_sim_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--help"]) == EXIT_OK
    assert "--currency" in capsys.readouterr().out
    assert main(["sim", "--no-such-flag"]) == EXIT_USAGE
