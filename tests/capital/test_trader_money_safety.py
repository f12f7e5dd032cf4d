"""Money safety at Capital.com (issue #15): CFD equity, a journaled close_position, the live-host gate."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import ccxt
import httpx
import pytest

from ccxt_capital.sim import CapitalSimulator
from ccxt_capital.transport import LIVE_HOST

from .trader_fixtures import Face, face_fixture, face_kind_fixture, make_face_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def _hand_pnl(sim: CapitalSimulator) -> float:
    """Every open position's PnL in USD from the simulator's quotes: a long closes at the bid, a short at
    the offer; EUR/USD's PnL is already in USD (its quote currency), AAPL's too."""
    total = 0.0
    for position in sim.positions():
        quote = sim.quote(position.epic)
        if position.direction == "BUY":
            total += (quote.bid - position.level) * position.size
        else:
            total += (position.level - quote.offer) * position.size
    return total


async def test_equity_counts_cfd_pnl_not_notional(face: Face, capital_sim: CapitalSimulator) -> None:
    await face.call("create_order", "EUR/USD", "market", "buy", 20_000, None, {"clientOrderId": "eq-fx"})
    await face.call("create_order", "AAPL/USD", "market", "sell", 5, None, {"clientOrderId": "eq-stock"})
    capital_sim.advance(3600)  # prices move: the PnL is not just the spread
    balance = await face.call("fetch_balance")
    deposit = 10_000.0 + sum(t.amount for t in capital_sim.transactions() if t.type != "DEPOSIT")
    hand = deposit + _hand_pnl(capital_sim)  # cash plus open PnL: the two notionals (~21.6k, ~1k USD) are not cash
    assert balance["info"]["equity"] == pytest.approx(hand, abs=0.02)
    assert balance["info"]["unrealizedPnl"] == pytest.approx(_hand_pnl(capital_sim), abs=0.02)
    assert abs(balance["info"]["equity"] - 10_000.0) < 500, "an FX CFD's notional must never count as cash"
    assert await face.call("fetch_equity") == pytest.approx(hand, abs=0.02)


async def test_close_position_is_journaled_idempotent_and_has_its_fill(face: Face,
                                                                       capital_sim: CapitalSimulator) -> None:
    await face.call("create_order", "AAPL/USD", "market", "buy", 3, None, {"clientOrderId": "cp-open"})
    closed = await face.call("close_position", "AAPL/USD", None, {"clientOrderId": "cp-close"})
    assert closed["clientOrderId"] == "cp-close" and closed["status"] == "closed" and closed["reduceOnly"]
    assert capital_sim.positions() == []
    journal = await face.journal()
    row = journal.get("cp-close")
    assert row is not None and row.state == "closed" and row.deal_reference == closed["id"]
    fills = journal.fills("cp-close")
    assert len(fills) == 1 and fills[0].amount == 3 and fills[0].side == "sell" and fills[0].info is not None
    again = await face.call("close_position", "AAPL/USD", None, {"clientOrderId": "cp-close"})  # a bot's retry
    assert again["id"] == closed["id"] and capital_sim.positions() == []
    trades = await face.call("fetch_my_trades", "AAPL/USD")
    assert sum(1 for t in trades if t["order"] == closed["id"]) == 1


# ------------------------------------------------------------------------------- the live-host gate


class LiveEndpoint:
    """A stand-in for the live host: counts every request that reaches it (there must be none)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return httpx.Response(500)
        return httpx.MockTransport(handle)


@pytest.mark.parametrize("where", ["baseUrl", "urls"])
async def test_a_live_host_named_in_the_options_is_refused_without_both_opt_ins(
        where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ccxt_capital.async_support import CapitalTrader

    monkeypatch.delenv("CCXT_BROKERS_ALLOW_LIVE", raising=False)
    live = LiveEndpoint()
    options: dict[str, Any] = {"journal": str(tmp_path / "j.sqlite"), "httpTransport": live.transport()}
    config: dict[str, Any] = {"apiKey": "k", "login": "l", "password": "p", "options": options}
    if where == "baseUrl":
        options["baseUrl"] = LIVE_HOST
    ex = CapitalTrader(config)
    if where == "urls":
        ex.urls["api"] = {"rest": LIVE_HOST}  # set after construction, as a bot might
    try:
        with pytest.raises(ccxt.PermissionDenied, match=r"options\['live'\] = True and the environment"):
            await ex.fetch_balance()
        with pytest.raises(ccxt.PermissionDenied, match="missing"):
            await ex.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "never"})
        monkeypatch.setenv("CCXT_BROKERS_ALLOW_LIVE", "1")  # one opt-in alone is not enough
        with pytest.raises(ccxt.PermissionDenied, match=r"missing: options\['live'\] = True$"):
            await ex.fetch_balance()
    finally:
        await ex.close()
    assert live.requests == [], "nothing may reach the live endpoint"


async def test_a_live_host_set_after_connecting_is_refused_before_the_order(
        face: Face, capital_sim: CapitalSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCXT_BROKERS_ALLOW_LIVE", raising=False)
    face.impl.options["baseUrl"] = LIVE_HOST  # the demo/sim transport is up; the options now say live
    with pytest.raises(ccxt.PermissionDenied, match="not the demo host"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "gate-late"})
    assert capital_sim.positions() == []


def test_the_cli_base_url_to_a_live_host_is_refused(tmp_path: Path) -> None:
    """``ccxt-capital balance --base-url <live>``: refused before any request (the URL is unroutable, so
    a request would fail differently)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "CAPITAL_API_KEY": "k", "CAPITAL_LOGIN": "l", "CAPITAL_PASSWORD": "p"}
    done = subprocess.run(
        [sys.executable, "-m", "ccxt_capital", "balance", "--base-url", "http://192.0.2.1:9"],
        cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "PermissionDenied" in out or "refusing live trading" in out, out
    assert "192.0.2.1" in out and "ConnectError" not in out and "RequestTimeout" not in out, out
    json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None


async def test_two_callers_placing_one_client_order_id_get_one_deal(face: Face, capital_sim: CapitalSimulator) -> None:
    """Two tasks (async face) or two threads (sync face) with the same clientOrderId: one deal, one answer."""
    level = round(capital_sim.quote("AAPL").bid * 0.8, 2)
    first, second = await asyncio.gather(
        face.call("create_order", "AAPL/USD", "limit", "buy", 1, level, {"clientOrderId": "twin"}),
        face.call("create_order", "AAPL/USD", "limit", "buy", 1, level, {"clientOrderId": "twin"}),
    )
    assert first["id"] == second["id"] and first["status"] == second["status"] == "open"
    assert len(capital_sim.working_orders()) == 1
