"""``examples/ma_strategy.py`` end to end on both simulators: backtest on cached bars, the same signal live
through the factory, a JSON summary, exit 0 -- and a re-run that asks the simulator for no history."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ma_strategy.py"


@pytest.fixture(scope="module")
def ma() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ma_strategy", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(ma: ModuleType, *argv: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = ma.main(list(argv))
    return code, json.loads(out.getvalue())


def test_signal_is_plain_code(ma: ModuleType) -> None:
    rising = [float(i) for i in range(30)]
    assert ma.wants_long(rising[:5]) is None  # not enough history
    assert ma.wants_long(rising) is True
    assert ma.wants_long(rising[::-1]) is False


def _history_counter(venue: str, sim: Any) -> list[int]:
    """Count historical-bar requests at the simulator (IB: bars served per request; Capital: GET /prices)."""
    calls = [0]
    if venue == "IB":
        original = sim.market.bars

        def bars(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            return original(*args, **kwargs)

        sim.market.bars = bars
    else:
        faults = sim.broker.faults
        take = faults.take

        def counted(method: str, path: str) -> Any:
            calls[0] += method == "GET" and path.startswith("/prices/")
            return take(method, path)

        faults.take = counted
    return calls


@pytest.mark.usefixtures("runtime_hooks")
@pytest.mark.parametrize("venue, exchange_id", [("IB", "ibkr"), ("CAPITAL", "capitalcom")])
def test_backtest_then_live_on_the_simulator(ma: ModuleType, venue: str, exchange_id: str, tmp_path: Path) -> None:
    cache = str(tmp_path / "bars")
    code, summary = run_main(ma, "--venue", venue, "--cache", cache, "--days", "30")
    assert code == 0
    assert summary["exchange"] == exchange_id and summary["symbol"] == "AAPL/USD"
    backtest, live = summary["backtest"], summary["live"]
    assert backtest["bars"] > 100 and backtest["trades"] > 0
    sides = [o["side"] for o in live["orders"]]
    assert sides[0] == "buy" and sides[-1] == "sell" and len(sides) >= 2
    assert all(o["status"] == "closed" and o["filled"] == o["amount"] for o in live["orders"])
    assert live["finalPosition"] == 0 and live["equity"] > 0

    # Same seed, a new simulator: the backtest's bars all come from the cache the first run filled.
    with ma.embedded_simulator(venue, 3) as (sim, env, options):
        calls = _history_counter(venue, sim)
        exchange = ma.build_exchange(venue, cache, env, options)
        try:
            exchange.load_markets()
            since, until = ma.backtest_window(exchange, 30)
            again = ma.backtest(exchange, "AAPL/USD", "1h", since, until, ma.AMOUNT[venue])
        finally:
            exchange.close()
    assert again == backtest
    assert calls[0] == 0


def test_runs_as_a_script(tmp_path: Path) -> None:
    env = {"PATH": "", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--cache", str(tmp_path / "bars"), "--days", "10", "--steps", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["exchange"] == "ibkr"
