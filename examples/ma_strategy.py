"""A moving-average crossover whose signal is written once: backtested on cached bars, then traded live.

    python examples/ma_strategy.py                      # IB, on the embedded simulator
    python examples/ma_strategy.py --venue CAPITAL      # Capital.com, same strategy code
    ACTIVE_EXCHANGE=IB IB_PORT=7497 python examples/ma_strategy.py --no-sim   # a real paper account

What it shows:

1. **One signal.** :func:`wants_long` decides from closes alone; the backtest and the live loop both
   call it, so what was tested is what trades.
2. **Backtest on cached bars.** The bars come from the exchange's own ``fetch_ohlcv`` with
   ``options["ohlcvCache"]`` on: the first run downloads (paced, in the fewest requests), every later
   run with the same ``--cache`` directory reads Parquet and asks the broker nothing.
3. **The same code live, through the factory.** The exchange is ``create_exchange()`` with
   ``ACTIVE_EXCHANGE=IB`` or ``CAPITAL`` -- the runner knows no broker class. On a simulator, "wait
   for the next bar" moves the simulator's clock; on a real account it sleeps.
4. **A JSON summary** on stdout (backtest result, orders placed, final position, equity), exit 0.

Long-only and flat at the end of the session, so a run leaves the account as it found it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from normalization.runtime.equity import account_equity_sync  # noqa: E402
from normalization.runtime.factory import config_from_env, create_exchange, normalize_exchange_name  # noqa: E402
from normalization.runtime.ohlcv_cache import default_cache_root  # noqa: E402

FAST, SLOW = 4, 12
AMOUNT = {"IB": 10.0, "CAPITAL": 1.0}


# -- the strategy: written once -------------------------------------------------------------------


def sma(values: Sequence[float], n: int) -> float:
    return sum(values[-n:]) / n


def wants_long(closes: Sequence[float], fast: int = FAST, slow: int = SLOW) -> bool | None:
    """Long while the fast average is above the slow one; ``None`` until there is enough history."""
    if len(closes) < slow:
        return None
    return sma(closes, fast) > sma(closes, slow)


# -- backtest -------------------------------------------------------------------------------------


def backtest(exchange: Any, symbol: str, timeframe: str, since: int, until: int, amount: float) -> dict[str, Any]:
    """Replay :func:`wants_long` over the bars from ``exchange.fetch_ohlcv``, trading at each close."""
    bars = exchange.fetch_ohlcv(symbol, timeframe, since, None, {"until": until})
    closes = [float(b[4]) for b in bars]
    position, cash, trades = 0.0, 0.0, 0
    for i in range(len(closes)):
        want = wants_long(closes[: i + 1])
        if want is None:
            continue
        target = amount if want else 0.0
        if target != position:
            cash -= (target - position) * closes[i]
            position, trades = target, trades + 1
    pnl = cash + position * closes[-1] if closes else 0.0
    return {
        "bars": len(bars),
        "first": bars[0][0] if bars else None,
        "last": bars[-1][0] if bars else None,
        "trades": trades,
        "pnl": round(pnl, 6),
    }


# -- live -----------------------------------------------------------------------------------------


def holding(exchange: Any, base: str) -> float:
    return float((exchange.fetch_balance().get(base) or {}).get("total") or 0.0)


def trade(exchange: Any, symbol: str, side: str, amount: float, orders: list[dict[str, Any]]) -> None:
    order = exchange.create_order(symbol, "market", side, amount)
    orders.append(
        {
            "id": order["id"],
            "side": side,
            "amount": amount,
            "status": order["status"],
            "filled": order["filled"],
            "average": order["average"],
        }
    )


def run_live(
    exchange: Any, symbol: str, timeframe: str, steps: int, amount: float, wait_for_next_bar: Callable[[], None]
) -> dict[str, Any]:
    """Each bar: read complete bars, ask :func:`wants_long`, trade the difference; flat at the end."""
    market = exchange.market(symbol)
    bar_ms = exchange.parse_timeframe(timeframe) * 1000
    orders: list[dict[str, Any]] = []
    for _ in range(steps):
        now = exchange.fetch_time() or exchange.milliseconds()
        bars = exchange.fetch_ohlcv(symbol, timeframe, None, SLOW + 5)
        closes = [float(b[4]) for b in bars if b[0] + bar_ms <= now]  # the forming bar is not a signal
        want = wants_long(closes)
        held = holding(exchange, market["base"])
        if want is not None and (amount if want else 0.0) != held:
            trade(exchange, symbol, "buy" if want else "sell", abs((amount if want else 0.0) - held), orders)
        wait_for_next_bar()
    for order in exchange.fetch_open_orders(symbol):  # nothing left working when the session ends
        exchange.cancel_order(order["id"], symbol)
    held = holding(exchange, market["base"])
    if held > 0:
        trade(exchange, symbol, "sell", held, orders)
    return {
        "steps": steps,
        "orders": orders,
        "finalPosition": holding(exchange, market["base"]),
        "equity": round(account_equity_sync(exchange), 2),
    }


# -- wiring: the only venue-aware part ------------------------------------------------------------


def _advancing(sim: Any) -> Callable[[float], Any]:
    """An async sleep that moves the simulator's clock instead of waiting."""

    async def sleep(seconds: float) -> None:
        if seconds > 0:
            sim.advance(seconds)

    return sleep


@contextlib.contextmanager
def embedded_simulator(venue: str, seed: int) -> Iterator[tuple[Any, dict[str, str], dict[str, Any]]]:
    """The venue's simulator in-process: (sim, the environment a runner would have, extra options)."""
    if venue == "IB":
        from ccxt_ibkr.sim import IBSimulator
        from normalization.runtime.pacing import ib_historical_pacer

        with IBSimulator(port=0, seed=seed) as sim:
            # The adapter paces historical requests (IB: no identical request within 15 s ...); on a
            # simulator whose clock only moves when told, the pacer must wait on that clock.
            pacer = ib_historical_pacer(clock=sim.clock.now, sleep=_advancing(sim))
            env = {"ACTIVE_EXCHANGE": "IB", "IB_PORT": str(sim.port), "IB_CLIENT_ID": "11"}
            yield sim, env, {"pacer": pacer, "journal": None}  # no order journal for a throw-away account
        return
    from ccxt_capital.sim import CapitalSimulator

    with CapitalSimulator(port=0, seed=seed, rate_limits="sim") as sim:
        sleep = _advancing(sim)  # the adapter's limiter waits on simulated time
        env = {
            "ACTIVE_EXCHANGE": "CAPITAL",
            "CAPITAL_API_KEY": sim.api_key,
            "CAPITAL_LOGIN": sim.identifier,
            "CAPITAL_PASSWORD": sim.password,
        }
        yield sim, env, {"baseUrl": sim.base_url, "clock": sim.clock.now, "sleep": sleep, "journal": None}


def build_exchange(
    venue: str, cache: str, env: dict[str, str] | None = None, options: dict[str, Any] | None = None
) -> Any:
    """The runner's exchange: ``create_exchange`` on the environment, with the OHLCV cache switched on."""
    environ = {**os.environ, **(env or {})}
    name = environ.get("ACTIVE_EXCHANGE", venue)
    config = config_from_env(name, environ)
    config["options"].update({"ohlcvCache": cache, **(options or {})})
    return create_exchange(name, config)


def backtest_window(exchange: Any, days: int) -> tuple[int, int]:
    """``days`` of hourly bars up to the last complete one (a forming bar is not history yet).

    ``until`` is inclusive, as in ccxt: the start of the last complete bar. Asking up to "now" would
    include the hour that may still be forming, which the cache (rightly) asks the broker again.
    """
    now = exchange.fetch_time() or exchange.milliseconds()
    until = now - now % 3_600_000 - 3_600_000
    return until + 3_600_000 - days * 86_400_000, until


def run(
    venue: str,
    *,
    symbol: str,
    timeframe: str,
    days: int,
    steps: int,
    cache: str,
    sim: Any = None,
    env: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the exchange with the factory, backtest, trade; return the summary."""
    exchange = build_exchange(venue, cache, env, options)
    try:
        exchange.load_markets()
        since, until = backtest_window(exchange, days)
        result = backtest(exchange, symbol, timeframe, since, until, AMOUNT[venue])
        bar_seconds = exchange.parse_timeframe(timeframe)
        wait = (lambda: sim.advance(bar_seconds)) if sim is not None else (lambda: time.sleep(bar_seconds))
        live = run_live(exchange, symbol, timeframe, steps, AMOUNT[venue], wait)
        return {
            "venue": venue,
            "exchange": exchange.id,
            "symbol": symbol,
            "timeframe": timeframe,
            "signal": {"fast": FAST, "slow": SLOW},
            "backtest": result,
            "live": live,
        }
    finally:
        exchange.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venue", default=os.environ.get("ACTIVE_EXCHANGE", "IB"), help="IB or CAPITAL")
    parser.add_argument("--symbol", default="AAPL/USD")
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--days", type=int, default=90, help="backtest window, ending at the last full hour")
    parser.add_argument("--steps", type=int, default=5, help="live bars to trade (5 h: inside US trading hours)")
    parser.add_argument("--cache", default=str(default_cache_root() / "ma_strategy"), help="OHLCV cache dir")
    parser.add_argument("--seed", type=int, default=3, help="simulator price seed")
    parser.add_argument("--no-sim", action="store_true", help="use the broker configured in the environment")
    args = parser.parse_args(argv)
    venue = normalize_exchange_name(args.venue)
    if venue not in AMOUNT:
        parser.error(f"--venue must be IB or CAPITAL, not {args.venue!r}")
    settings = {
        "symbol": args.symbol,
        "timeframe": args.timeframe,
        "days": args.days,
        "steps": args.steps,
        "cache": args.cache,
    }
    if args.no_sim:
        summary = run(venue, **settings)
    else:
        with embedded_simulator(venue, args.seed) as (sim, env, options):
            summary = run(venue, sim=sim, env=env, options=options, **settings)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
