"""Simulator PROCESSES on the wall clock, as a user runs them (``python -m ccxt_ibkr.sim``).

The client-pattern tests drive unmodified bot code against brokers in another process: real
sockets, real time, real pacing and rate limits on the simulators' side. Nothing here reaches into
the simulator's state; a test sees only what a bot sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: A weekday afternoon (New York open, London open): stocks and FX trade, resting orders rest.
START = None  # the wall clock: ccxt's tests compare timestamps with their own clock


@dataclass
class SimProcess:
    process: subprocess.Popen[str]
    port: int
    banner: list[str]


def _spawn(module: str, *args: str) -> SimProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *(("--start", START) if START else ()), *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # the banner names the port once the socket listens
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"{module} did not start: {line!r}")
    port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
    banner = [line]
    return SimProcess(process, port, banner)


def _stop(sim: SimProcess) -> None:
    sim.process.terminate()
    try:
        sim.process.wait(10)
    except subprocess.TimeoutExpired:
        sim.process.kill()
        sim.process.wait(10)


@pytest.fixture(scope="module")
def ib_process() -> Iterator[SimProcess]:
    sim = _spawn("ccxt_ibkr.sim")
    yield sim
    _stop(sim)


@pytest.fixture(scope="module")
def capital_process() -> Iterator[SimProcess]:
    sim = _spawn("ccxt_capital.sim", "--rate-limits", "wall")
    assert sim.process.stdout is not None
    sim.banner.append(sim.process.stdout.readline())  # the credentials line
    yield sim
    _stop(sim)
