"""Fixtures for the runner tests: both simulators, an isolated environment, and request counters.

Every test gets a private journal directory, cache directory and an environment without ``IB_*``,
``CAPITAL_*`` or ``ACTIVE_EXCHANGE`` (so a developer's own settings never leak into a test).

``count_ib_history(sim)`` / ``count_capital_prices(sim)`` count the historical-bar requests *the
simulator* serves -- the only honest way to prove a cached re-run asks the broker nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ccxt_capital.sim.testing import capital_sim, pytest_configure  # noqa: F401
from ccxt_ibkr.sim.testing import ib_sim  # noqa: F401

_PREFIXES = ("IB_", "CAPITAL_", "ACTIVE_EXCHANGE", "CLIENT_ORDER_PREFIX", "CCXT_BROKERS_")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No broker settings from the developer's shell; journals and bar caches under ``tmp_path``."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("CCXT_BROKERS_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.setenv("CCXT_BROKERS_PROGRESS", "0")
    return tmp_path


class Counter:
    """Counts calls to one simulator method (installed on the instance, removed afterwards)."""

    def __init__(self) -> None:
        self.calls = 0

    def reset(self) -> None:
        self.calls = 0


def _wrap(owner: Any, name: str, counter: Counter) -> Callable[[], None]:
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        counter.calls += 1
        return original(*args, **kwargs)

    setattr(owner, name, counted)
    return lambda: setattr(owner, name, original)


@pytest.fixture
def ib_history_counter(ib_sim: Any) -> Iterator[Counter]:  # noqa: F811 - the imported fixture
    """Historical-data requests the IB simulator answers (one ``MarketData.bars`` call each).

    Also relaxes the simulator's pacing to IB's own rule for bars of a minute and more (no hard
    limits): the simulated clock is frozen, so five requests in a test would otherwise count as five
    within two seconds. The adapter's own pacer still runs, in real time.
    """
    ib_sim.pacer.strict = False
    counter = Counter()
    restore = _wrap(ib_sim.market, "bars", counter)
    yield counter
    restore()


@pytest.fixture
def capital_price_counter(capital_sim: Any) -> Iterator[Counter]:  # noqa: F811 - the imported fixture
    """``GET /prices/{epic}`` requests the Capital.com simulator receives (its fault plan sees every
    request's method and path first, so counting there counts what arrived on the wire)."""
    counter = Counter()
    faults = capital_sim.broker.faults
    original = faults.take

    def take(method: str, path: str) -> Any:
        if method == "GET" and path.startswith("/prices/"):
            counter.calls += 1
        return original(method, path)

    faults.take = take
    yield counter
    faults.take = original


def sim_sleep(sim: Any) -> Callable[[float], Any]:
    """An async sleep that advances the simulator's clock instead of waiting."""

    async def sleep(seconds: float) -> None:
        if seconds > 0:
            sim.advance(seconds)
        await asyncio.sleep(0)

    return sleep


async def _ib_account_base_currency(self: Any) -> str | None:
    """IB hook (proposed for ccxt_ibkr/exchange.py): the base currency TWS reports as ``Currency``."""
    await self._ready()
    for value in self.transport.account_values():
        if value.tag == "Currency" and value.currency not in ("", "BASE"):
            return str(value.value)
    return None


def _capital_balance_unrealized_pnl(self: Any, balance: dict[str, Any]) -> float | None:
    """Capital.com hook (proposed for ccxt_capital/exchange.py): the account's own ``profitLoss``."""
    info = balance.get("info")
    return self.safe_number(self.safe_dict(info, "balance", {}), "profitLoss") if isinstance(info, dict) else None


def runner_classes(venue: str) -> tuple[type, type]:
    """(sync, async) adapter classes with the runtime mixins (OHLCV cache, base-currency equity) and the
    small adapter hooks proposed with them.

    Once the adapters carry the mixins and hooks themselves these are the adapters' own classes; until
    then the same composition is built here, so these tests show the state after the hooks are applied.
    """
    import ccxt

    from normalization.runtime.facade import SyncFacade
    from normalization.runtime.ohlcv_service import with_runner_mixins

    if venue == "IB":
        import ccxt_ibkr

        sync_cls, async_cls, holdings = ccxt_ibkr.IBTrader, ccxt_ibkr.AsyncIBTrader, "market"
        hooks = {"account_base_currency": _ib_account_base_currency}
    else:
        import ccxt_capital

        sync_cls, async_cls, holdings = ccxt_capital.CapitalTrader, ccxt_capital.AsyncCapitalTrader, "none"
        hooks = {"balance_unrealized_pnl": _capital_balance_unrealized_pnl}
    composed = with_runner_mixins(async_cls, equity_holdings=holdings)
    missing = {name: fn for name, fn in hooks.items() if not hasattr(async_cls, name)}
    if missing:
        composed = type(async_cls.__name__, (composed,), {"__module__": async_cls.__module__, **missing})
    if composed is async_cls:
        return sync_cls, async_cls
    namespace = {"async_class": composed, "__module__": sync_cls.__module__}
    return type(sync_cls.__name__, (SyncFacade, ccxt.Exchange), namespace), composed


@pytest.fixture
def runtime_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``create_exchange()`` return adapters with the runtime mixins, as the adapter hooks will.

    A no-op once ``ccxt_ibkr`` / ``ccxt_capital`` list the mixins themselves; until then the factory's
    lazy ``ccxt_ibkr.IBTrader`` / ``ccxt_capital.CapitalTrader`` lookups see the composed classes for
    the duration of one test.
    """
    import ccxt_capital
    import ccxt_ibkr

    for module, attr, venue in ((ccxt_ibkr, "IBTrader", "IB"), (ccxt_capital, "CapitalTrader", "CAPITAL")):
        sync_cls, _ = runner_classes(venue)
        if sync_cls is not getattr(module, attr):
            monkeypatch.setattr(module, attr, sync_cls)
