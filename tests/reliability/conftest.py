"""Fixtures of the fault matrix: both simulators, a journal per test, and the scenario tally.

The tally is the report the issue asks for: every scenario records how many duplicate orders it
found at the broker and how many fills the journal lost; ``pytest_terminal_summary`` prints the
totals at the end of the run (both must be 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ccxt_capital.sim.testing import capital_sim  # noqa: F401 - fixture re-export
from ccxt_ibkr.sim.testing import ib_sim  # noqa: F401 - fixture re-export


@dataclass
class ScenarioResult:
    broker: str
    scenario: str
    duplicates: int
    lost_fills: int
    fills: int
    orders: int


@dataclass
class Tally:
    """Collected across the session; one row per scenario that reached its invariant check."""

    rows: list[ScenarioResult] = field(default_factory=list)

    def record(self, broker: str, scenario: str, *, duplicates: int, lost_fills: int, fills: int, orders: int) -> None:
        self.rows.append(ScenarioResult(broker, scenario, duplicates, lost_fills, fills, orders))


_TALLY = Tally()


@pytest.fixture
def tally() -> Tally:
    return _TALLY


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """A fresh journal file per test (SQLite, WAL): the process-death test shares it across processes."""
    return tmp_path / "journal.sqlite"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "capital_sim(**options): options for the capital_sim fixture")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = _TALLY.rows
    if not rows:
        return
    tr = terminalreporter
    tr.section("fault matrix")
    for row in rows:
        tr.write_line(
            f"{row.broker:<10} {row.scenario:<44} orders={row.orders:<3} fills={row.fills:<3} "
            f"duplicates={row.duplicates} lost_fills={row.lost_fills}"
        )
    tr.write_line(
        f"scenarios checked: {len(rows)}; duplicate orders found: {sum(r.duplicates for r in rows)}; "
        f"fills lost: {sum(r.lost_fills for r in rows)}"
    )

