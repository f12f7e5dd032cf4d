"""``ccxt-ibkr`` against the IB simulator: every command's JSON, exit codes, flags over environment."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ccxt_ibkr.__main__ import add_connection_args, build_config, main
from normalization.runtime.cli import EXIT_EXCHANGE, EXIT_NETWORK, EXIT_OK, EXIT_USAGE, build_parser
from normalization.runtime.factory import ConfigError
from tests.runner.cli_harness import error, run_main

H = 3_600_000
# The simulator's clock: Tuesday 2025-06-10 14:00 UTC.
SINCE = "2025-05-05T00:00:00Z"
UNTIL = "2025-05-09T23:59:59Z"


class Cli:
    def __init__(self, sim: Any, capsys: pytest.CaptureFixture[str]) -> None:
        self.sim = sim
        self.capsys = capsys
        self.client_id = 41  # one clientId for every command: IB shows a client the orders it placed

    def __call__(self, *argv: str, connect: bool = True) -> tuple[int, Any, str]:
        """Run ``ccxt-ibkr argv`` in-process; returns (exit code, parsed stdout, stderr)."""
        extra = ["--port", str(self.sim.port), "--client-id", str(self.client_id)] if connect else []
        code, parsed, _, err = run_main(main, [*argv, *extra], self.capsys)
        return code, parsed, err


@pytest.fixture
def cli(ib_sim: Any, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(ib_sim, capsys)


def test_help_needs_no_connection(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
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
        assert command in out
    assert main(["ohlcv", "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--client-id", "--account", "--since", "--until", "--timeframe", "--cache"):
        assert flag in out


def test_flags_override_environment_and_are_validated_like_the_factory() -> None:
    parser = build_parser("ccxt-ibkr", add_connection_args)
    args = parser.parse_args(
        [
            "health",
            "--host",
            "10.0.0.2",
            "--port",
            "4002",
            "--client-id",
            "9",
            "--account",
            "DU42",
            "--symbols",
            "AAPL/USD, EUR/USD",
            "--cache",
            "/tmp/bars",
        ]
    )
    config = build_config(args, {"IB_HOST": "ignored", "IB_CLIENT_ID": "3", "IB_BASE_CURRENCY": "aud"})
    options = config["options"]
    assert options["host"] == "10.0.0.2" and options["port"] == 4002 and options["clientId"] == 9
    assert options["account"] == "DU42" and options["baseCurrency"] == "AUD" and options["live"] is False
    assert options["symbols"] == ["AAPL/USD", "EUR/USD"] and options["ohlcvCache"] == "/tmp/bars"
    with pytest.raises(ConfigError, match=r"--port 4001 \(IB_PORT\)"):
        build_config(parser.parse_args(["health", "--port", "4001"]), {})
    with pytest.raises(ConfigError, match=r"--client-id 'x' \(IB_CLIENT_ID\) is not an integer"):
        build_config(parser.parse_args(["health", "--client-id", "x"]), {})
    live = build_config(parser.parse_args(["health", "--port", "7496", "--live"]), {})
    assert live["options"]["live"] is True


def test_usage_and_config_errors_exit_2(cli: Cli) -> None:
    code, out, err = cli("health", "--port", "4001", connect=False)
    assert code == EXIT_USAGE and out is None and "--port 4001" in error(err)["message"]
    code, _, err = cli("ohlcv", connect=False)
    assert code == EXIT_USAGE and error(err)["type"] == "UsageError"


def test_unreachable_gateway_exits_4_with_json_only(cli: Cli, ib_sim: Any) -> None:
    port = ib_sim.port
    ib_sim.stop()
    code, out, err = cli("health", "--port", str(port), "--timeout", "2", connect=False)
    assert code == EXIT_NETWORK and out is None
    assert error(err)["exitCode"] == EXIT_NETWORK
    assert len(err.strip().splitlines()) == 1  # stderr holds the JSON error only, no library log lines


def test_health_markets_ticker(cli: Cli) -> None:
    code, out, _ = cli("health")
    assert code == EXIT_OK and out["ok"] is True and out["exchange"] == "ibkr"
    assert out["time"] == 1_749_564_000_000  # the simulator's clock, through reqCurrentTime
    code, out, _ = cli("markets", "--symbols", "AAPL/USD,EUR/USD")
    assert code == EXIT_OK and out["count"] == 2
    assert {m["symbol"] for m in out["markets"]} == {"AAPL/USD", "EUR/USD"}
    assert all("info" not in m for m in out["markets"])  # raw payloads only with --info
    code, out, _ = cli("ticker", "AAPL/USD")
    assert code == EXIT_OK and out["symbol"] == "AAPL/USD" and 0 < out["bid"] < out["ask"]
    code, _, err = cli("ticker", "NOSUCH/USD")
    assert code == EXIT_EXCHANGE and error(err)["type"] in ("BadSymbol", "BadRequest")


def test_ohlcv_csv_and_json_second_run_served_from_cache(cli: Cli, ib_history_counter: Any, tmp_path: Path) -> None:
    cache = str(tmp_path / "bars")
    code, direct, _ = cli("ohlcv", "AAPL/USD", "-t", "1h", "--since", SINCE, "--until", UNTIL)
    assert code == EXIT_OK and direct["timeframe"] == "1h" and direct["count"] > 40
    ib_history_counter.reset()
    code, out, _ = cli("ohlcv", "AAPL/USD", "-t", "1h", "--since", SINCE, "--until", UNTIL, "--cache", cache)
    assert code == EXIT_OK and out == direct  # the cache changes where bars come from, not which
    times = [row[0] for row in out["ohlcv"]]
    assert times == sorted(set(times)) and times[0] >= 1_746_403_200_000
    assert ib_history_counter.calls >= 1
    ib_history_counter.reset()
    code, text, _ = cli(
        "ohlcv", "AAPL/USD", "-t", "1h", "--since", SINCE, "--until", UNTIL, "--cache", cache, "--format", "csv"
    )
    assert code == EXIT_OK and ib_history_counter.calls == 0  # the simulator was asked nothing
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["timestamp", "datetime", "open", "high", "low", "close", "volume"]
    assert [int(r[0]) for r in rows[1:]] == times
    assert rows[1][1].endswith("Z")


def test_balance_place_positions_orders_trades_cancel(cli: Cli, ib_sim: Any) -> None:
    code, out, _ = cli("balance", "--info")
    assert code == EXIT_OK and out["USD"]["total"] == pytest.approx(1_000_000.0)
    assert out["info"]["baseCurrency"] == "USD" and out["info"]["equity"] == pytest.approx(1_000_000.0)

    code, out, _ = cli("place", "AAPL/USD", "buy", "10", "--dry-run")
    assert code == EXIT_OK and out["dryRun"] is True and out["sent"] is False
    assert out["estimate"]["price"] > 0 and out["estimate"]["currency"] == "USD"
    assert ib_sim.orders() == []  # a dry run never reaches the broker

    code, order, _ = cli("place", "AAPL/USD", "buy", "10", "--client-order-id", "cli-buy-1")
    assert code == EXIT_OK and order["status"] == "closed" and order["filled"] == 10
    assert order["clientOrderId"] == "cli-buy-1"
    code, again, _ = cli("place", "AAPL/USD", "buy", "10", "--client-order-id", "cli-buy-1")
    # idempotent across processes (the journal): the first order comes back, nothing is placed again
    assert code == EXIT_OK and again["clientOrderId"] == "cli-buy-1" and again["filled"] == 10
    assert len(ib_sim.orders()) == 1

    code, out, _ = cli("positions")
    assert code == EXIT_OK and [(p["symbol"], p["contracts"]) for p in out] == [("AAPL/USD", 10)]
    code, out, _ = cli("trades", "--symbol", "AAPL/USD")
    assert code == EXIT_OK and sum(t["amount"] for t in out) == 10

    quote = ib_sim.quote("AAPL")
    limit = round(quote.bid * 0.5, 2)
    code, resting, _ = cli("place", "AAPL/USD", "buy", "1", "--type", "limit", "--price", str(limit))
    assert code == EXIT_OK and resting["status"] == "open"
    code, out, _ = cli("orders", "--symbol", "AAPL/USD")
    assert code == EXIT_OK and resting["id"] in [o["id"] for o in out]
    code, out, _ = cli("cancel", resting["id"], "--symbol", "AAPL/USD")
    assert code == EXIT_OK and out["status"] == "canceled"
    code, _, err = cli("place", "AAPL/USD", "buy", "1", "--type", "limit")
    assert code == EXIT_EXCHANGE and "--price" in error(err)["message"]


def test_sim_subcommand_dispatches_to_the_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--help"]) == EXIT_OK
    assert "--base-currency" in capsys.readouterr().out


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    """``python -m ccxt_ibkr sim`` serves; ``python -m ccxt_ibkr health`` talks to it; both real processes."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "ccxt_ibkr", "sim", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = sim.stdout.readline() if sim.stdout else ""
        assert "listening on 127.0.0.1:" in line
        port = line.split("127.0.0.1:")[1].split()[0]
        env = {"PATH": "", "XDG_STATE_HOME": str(tmp_path), "HOME": str(tmp_path)}
        done = subprocess.run(
            [sys.executable, "-m", "ccxt_ibkr", "health", "--port", port, "--client-id", "77"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == EXIT_OK, done.stderr
        assert json.loads(done.stdout)["ok"] is True
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def test_watch_follows_an_order_to_its_end_and_times_out_on_one_that_rests(cli: Cli) -> None:
    code, placed, _ = cli("place", "AAPL/USD", "buy", "1")
    assert code == EXIT_OK and placed["status"] == "closed"
    cli.capsys.readouterr()
    code = main(["watch", "--id", placed["id"], "--interval", "0.05", "--max-wait", "5",
                 "--port", str(cli.sim.port), "--client-id", str(cli.client_id)])
    lines = [json.loads(line) for line in cli.capsys.readouterr().out.splitlines() if line.strip()]
    assert code == EXIT_OK and lines and lines[-1]["status"] == "closed" and lines[-1]["id"] == placed["id"]
    bid = cli.sim.quote("AAPL").bid
    code, resting, _ = cli("place", "AAPL/USD", "buy", "1", "--type", "limit", "--price", str(round(bid - 20, 2)))
    assert code == EXIT_OK and resting["status"] == "open"
    code, lines, err = cli("watch", "--id", resting["id"], "--interval", "0.05", "--max-wait", "0.3")
    assert code == EXIT_NETWORK and lines["status"] == "open" and "still open" in error(err)["message"]
    assert cli("cancel", resting["id"])[0] == EXIT_OK


def test_stream_prints_json_lines(cli: Cli) -> None:
    code, lines, _ = cli("stream", "ticker", "AAPL/USD", "--count", "1")
    assert code == EXIT_OK and lines["symbol"] == "AAPL/USD" and (lines["bid"] or lines["ask"])
