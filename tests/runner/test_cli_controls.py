"""The command line's operator controls, in-process through ``main(argv)`` against both simulators:
``validate`` from cached markets with no connection, orders as JSON (unknown keys refused), the
journal commands, ``cancel-all`` and ``panic`` (twice: the second finds nothing)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from ccxt_capital.__main__ import main as capital_main
from ccxt_ibkr.__main__ import main as ib_main
from normalization.runtime.account_lock import account_lock
from normalization.runtime.cli import EXIT_EXCHANGE, EXIT_OK, EXIT_USAGE
from normalization.runtime.journal import OrderJournal
from tests.runner.cli_harness import error, run_main

# Each command logs in afresh: the simulator's login pacing is not what these tests are about.
pytestmark = pytest.mark.capital_sim(rate_limits="off")


class Cli:
    def __init__(self, main: Any, flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        self.main, self.flags, self.capsys = main, flags, capsys

    def __call__(self, *argv: str, connect: bool = True) -> tuple[int, Any, str]:
        code, parsed, _, err = run_main(self.main, [*argv, *(self.flags if connect else [])], self.capsys)
        return code, parsed, err


@pytest.fixture
def ib(ib_sim: Any, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(ib_main, ["--port", str(ib_sim.port), "--client-id", "43"], capsys)


@pytest.fixture
def capital(capital_sim: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    config = tmp_path / "cli-config.json"
    config.write_text(json.dumps({"options": {"pacing": False}}))
    flags = ["--base-url", capital_sim.base_url, "--api-key", capital_sim.api_key, "--login", capital_sim.identifier,
             "--password", capital_sim.password, "--config", str(config)]
    return Cli(capital_main, flags, capsys)


def test_validate_needs_cached_markets_and_no_connection(ib: Cli, ib_sim: Any, tmp_path: Path) -> None:
    code, _, err = ib("validate", "AAPL/USD", "buy", "10", connect=False)
    assert code == EXIT_USAGE and "no cached markets" in error(err)["message"]
    assert ib("markets")[0] == EXIT_OK  # a connected command caches what it loaded
    ib_sim.stop()  # from here on nothing answers: validate must not need it

    code, out, _ = ib("validate", "AAPL/USD", "buy", "10.7", "--ref-price", "190", connect=False)
    assert code == EXIT_OK and out["offline"] is True and out["sent"] is False
    assert out["order"]["amount"] == 10.0  # IB stocks trade whole shares
    assert out["estimate"]["cost"] == pytest.approx(1900.0)
    assert out["estimate"]["fee"] == pytest.approx(1.0)  # IB fixed: USD 0.005/share, minimum 1.00
    code, out, _ = ib("validate", "--json", json.dumps({"symbol": "AAPL/USD", "type": "limit", "side": "sell",
                                                         "amount": 100, "price": 190.123}), connect=False)
    assert code == EXIT_OK and out["order"]["price"] == 190.12 and out["estimate"]["fee"] == pytest.approx(1.0)

    code, _, err = ib("validate", "NOPE/USD", "buy", "1", connect=False)
    assert code == EXIT_EXCHANGE and error(err)["type"] == "BadSymbol"
    code, _, err = ib("validate", "AAPL/USD", "buy", "0.4", connect=False)
    assert code == EXIT_EXCHANGE and error(err)["type"] == "InvalidOrder"
    code, _, err = ib("validate", "--json", '{"symbol": "AAPL/USD", "type": "market", "side": "buy", "amount": 1, '
                                            '"qty": 5}', connect=False)
    assert code == EXIT_USAGE and "qty" in error(err)["message"]
    code, _, err = ib("validate", "AAPL/USD", "--json", "{}", connect=False)
    assert code == EXIT_USAGE and "JSON only" in error(err)["message"]

    config = tmp_path / "risk.json"
    config.write_text(json.dumps({"options": {"risk": {"maxOrderNotional": 1000, "maxOpenOrders": 3}}}))
    code, _, err = ib("validate", "AAPL/USD", "buy", "10", "--ref-price", "190", "--config", str(config),
                      connect=False)
    assert code == EXIT_EXCHANGE and "maxOrderNotional" in error(err)["message"]
    code, out, _ = ib("validate", "AAPL/USD", "buy", "5", "--ref-price", "190", "--config", str(config),
                      connect=False)
    assert code == EXIT_OK and out["risk"]["unchecked"] == ["maxOpenOrders"]  # needs the broker: said, not passed
    config.write_text(json.dumps({"options": {"risk": {"maxOrderNotional": 1, "notionalCurrency": "EUR"}}}))
    code, out, _ = ib("validate", "AAPL/USD", "buy", "5", "--ref-price", "190", "--config", str(config),
                      connect=False)
    assert code == EXIT_OK and out["risk"]["unchecked"] == ["maxOrderNotional"]  # no FX quote offline: not passed


def test_json_order_is_placed_as_create_order_would(ib: Cli, ib_sim: Any, tmp_path: Path) -> None:
    order = {"symbol": "AAPL/USD", "type": "market", "side": "buy", "amount": 3,
             "params": {"clientOrderId": "cli-json-1"}}
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order))
    code, placed, _ = ib("place", "--json-file", str(path))
    assert code == EXIT_OK and placed["clientOrderId"] == "cli-json-1" and placed["filled"] == 3
    code, again, _ = ib("place", "--json", json.dumps(order))
    assert code == EXIT_OK and again["id"] == placed["id"] and len(ib_sim.orders()) == 1


def test_journal_list_show_export_purge(ib: Cli, ib_sim: Any) -> None:
    assert ib("place", "AAPL/USD", "buy", "2", "--client-order-id", "cli-j-1")[0] == EXIT_OK
    limit = str(round(ib_sim.quote("AAPL").bid * 0.5, 2))
    _, resting, _ = ib("place", "AAPL/USD", "buy", "1", "--type", "limit", "--price", limit,
                       "--client-order-id", "cli-j-2")
    assert ib("cancel", resting["id"])[0] == EXIT_OK

    code, out, _ = ib("journal", "list", connect=False)
    assert code == EXIT_OK and out["account"] == ib_sim.ledger.account
    states = [(o["client_order_id"], o["state"]) for o in out["orders"]]
    assert states == [("cli-j-1", "closed"), ("cli-j-2", "canceled")]  # the cancel ran in another process
    code, out, _ = ib("journal", "list", "--state", "canceled", connect=False)
    assert [o["client_order_id"] for o in out["orders"]] == ["cli-j-2"]
    code, out, _ = ib("journal", "show", "cli-j-1", connect=False)
    assert code == EXIT_OK and out["order"]["filled"] == 2 and sum(f["amount"] for f in out["fills"]) == 2
    assert out["fills"][0]["fee_cost"] == pytest.approx(1.0) and out["history"][-1]["state"] == "closed"
    code, _, err = ib("journal", "show", "nope", connect=False)
    assert code == EXIT_USAGE

    code, text, _ = ib("journal", "export", "--format", "csv", connect=False)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert code == EXIT_OK and [r["client_order_id"] for r in rows] == ["cli-j-1", "cli-j-2"]
    code, exported, _ = ib("journal", "export", "--fills", connect=False)
    assert code == EXIT_OK and {f["client_order_id"] for f in exported} == {"cli-j-1"}

    code, out, _ = ib("journal", "purge", connect=False)
    assert code == EXIT_USAGE
    code, out, _ = ib("journal", "purge", "--before", "2000-01-01", connect=False)
    assert code == EXIT_OK and out["purged"] == 0
    code, out, _ = ib("journal", "purge", "--before", "2100-01-01", connect=False)
    assert code == EXIT_OK and out["purged"] == 2
    assert ib("journal", "list", connect=False)[1]["count"] == 0


@pytest.mark.parametrize("broker", ["ib", "capital"])
def test_cancel_all_and_panic_twice(broker: str, request: pytest.FixtureRequest) -> None:
    cli: Cli = request.getfixturevalue(broker)
    sim = request.getfixturevalue("ib_sim" if broker == "ib" else "capital_sim")
    name = "AAPL"
    touch = sim.quote(name).bid
    far = str(round(touch * 0.5, 2))
    assert cli("place", "AAPL/USD", "buy", "2")[0] == EXIT_OK
    for _ in range(2):
        assert cli("place", "AAPL/USD", "buy", "1", "--type", "limit", "--price", far)[0] == EXIT_OK
    code, out, _ = cli("cancel-all")
    assert code == EXIT_OK and out["count"] == 2 and {o["status"] for o in out["canceled"]} == {"canceled"}
    assert cli("place", "AAPL/USD", "buy", "1", "--type", "limit", "--price", far)[0] == EXIT_OK

    code, out, _ = cli("panic")
    assert code == EXIT_OK and out["ok"] is True and len(out["canceled"]) == 1 and out["remaining"] == []
    assert [(o["symbol"], o["side"], o["amount"]) for o in out["closed"]] == [("AAPL/USD", "sell", 2)]
    code, out, _ = cli("panic")
    assert code == EXIT_OK and out == {"ok": True, "canceled": [], "closed": [], "remaining": []}
    code, out, _ = cli("positions")
    assert code == EXIT_OK and [p for p in out if p["contracts"]] == []


def test_panic_reports_a_run_in_progress_on_the_account(ib: Cli, ib_sim: Any, tmp_path: Path) -> None:
    """Another process's kill switch holds the account (here: a thread holding its lock on the shared journal
    file): ``panic --wait 0`` says so and sends nothing; once it ends, panic runs."""
    journal = tmp_path / "shared.sqlite"
    config = tmp_path / "shared.json"
    config.write_text(json.dumps({"options": {"journal": str(journal)}}))
    held, release = threading.Event(), threading.Event()

    async def hold() -> None:
        other = OrderJournal(journal, exchange="ibkr", account=ib_sim.ledger.account, sync="normal")
        async with account_lock(other, "kill-switch", wait=0):
            held.set()
            await asyncio.to_thread(release.wait, 30)
        other.close()

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        assert held.wait(10)
        orders = len(ib_sim.orders())
        code, _, err = ib("panic", "--wait", "0", "--config", str(config))
        assert code == EXIT_EXCHANGE and error(err)["type"] == "OperationRejected"
        assert "kill-switch for account" in error(err)["message"] and "already running (pid" in error(err)["message"]
        assert len(ib_sim.orders()) == orders
    finally:
        release.set()
        holder.join(10)
    code, out, _ = ib("panic", "--wait", "0", "--config", str(config))
    assert code == EXIT_OK and out["ok"] is True
