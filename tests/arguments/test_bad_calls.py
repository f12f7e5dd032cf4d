"""Generated bad calls on every trading path, at both adapters, against the simulators.

Each example is one unified call with one bad argument (a wrong type, a non-finite or out-of-range
number, an unparseable flag, an unknown param, two params that contradict each other ...). Every call
must raise a ``ccxt.BaseError`` subclass whose message names the argument, within a bounded time, and
nothing may reach the broker: the simulator's books (orders, deals, history requests) and the
adapter's request counter are compared before and after every call.

Hypothesis runs derandomized (the same examples on every run). The default run tries
:data:`DEFAULT_EXAMPLES` calls per adapter; ``-m long`` runs :data:`LONG_EXAMPLES` (the figure the
issue asks for). Both print the tally: tried / reached the broker / non-ccxt exceptions / hangs.
"""

from __future__ import annotations

import concurrent.futures
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ccxt_capital
import ccxt_ibkr
from ccxt_capital.exchange import CAPITAL_ORDER_RULES
from ccxt_capital.sim import CapitalSimulator
from ccxt_ibkr.exchange import IB_ORDER_RULES
from ccxt_ibkr.sim.testing import running_simulator
from normalization import client_ids
from normalization.arguments import UNIFIED_ORDER_PARAMS

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.capital.trader_fixtures import trader_config  # noqa: E402
from tests.ib.trader_fixtures import trader_options  # noqa: E402

DEFAULT_EXAMPLES = 150
LONG_EXAMPLES = 600
#: Seconds one bad call may take before it counts as a hang (refusals take milliseconds).
BOUND = 10.0

TALLY: dict[str, Counter[str]] = {"ibkr": Counter(), "capitalcom": Counter()}
KNOWN = set(UNIFIED_ORDER_PARAMS) | set(IB_ORDER_RULES.broker_fields) | set(IB_ORDER_RULES.extra_params) \
    | set(CAPITAL_ORDER_RULES.broker_fields) | set(CAPITAL_ORDER_RULES.extra_params)

# ------------------------------------------------------------------------------------------ values

NOT_A_NUMBER = st.one_of(
    st.none(), st.booleans(), st.just(math.nan), st.just(math.inf), st.just(-math.inf),
    st.floats(max_value=0.0, allow_nan=False), st.integers(max_value=0), st.just(10**400),
    st.text(alphabet="abcxyz !?", min_size=0, max_size=5), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
NOT_A_SYMBOL = st.one_of(st.integers(), st.floats(allow_nan=True), st.just(""), st.just("   "),
                         st.lists(st.text(max_size=3), max_size=2), st.binary(max_size=4), st.booleans())
NOT_A_FLAG = st.one_of(st.text(alphabet="yesnoYN ", min_size=1, max_size=4).filter(
    lambda t: t.strip().lower() not in ("true", "false")), st.integers().filter(lambda i: i not in (0, 1)),
    st.floats(allow_nan=True), st.lists(st.booleans(), max_size=2))
NOT_PARAMS = st.one_of(st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=2), st.booleans(),
                       st.floats(allow_nan=True))
BAD_SINCE = st.one_of(st.integers(max_value=-1), st.integers(min_value=7_258_118_400_001),
                      st.floats(allow_nan=True).filter(lambda f: not (math.isfinite(f) and f.is_integer() and f >= 0)),
                      st.text(max_size=4), st.booleans())
BAD_LIMIT = st.one_of(st.integers(max_value=0), st.integers(min_value=10**9 + 1),
                      st.floats(allow_nan=True).filter(lambda f: not (math.isfinite(f) and f.is_integer() and f >= 1)),
                      st.text(max_size=4), st.booleans())
NOT_AN_ID = st.one_of(st.just(""), st.floats(allow_nan=True), st.lists(st.integers(), max_size=2), st.booleans(),
                      st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))
UNKNOWN_PARAM = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10).map(
    lambda t: "zz" + t).filter(lambda t: t not in KNOWN)
GOOD_PRICE = 100.0

# ------------------------------------------------------------------------------------------ calls
# A case: (method, args, the word its error must name).


def _order(symbol: Any = "AAPL/USD", type: Any = "limit", side: Any = "buy", amount: Any = 1, price: Any = GOOD_PRICE,
           params: Any = None) -> tuple[Any, ...]:
    return (symbol, type, side, amount, price, {} if params is None else params)


def create_cases() -> st.SearchStrategy[tuple[str, tuple[Any, ...], str]]:
    c = "create_order"
    return st.one_of(
        NOT_A_SYMBOL.map(lambda v: (c, _order(symbol=v), "symbol")),
        st.one_of(st.text(max_size=8).filter(lambda t: t.strip().lower().replace("-", "_") not in (
            "market", "limit", "stop", "stop_market", "stopmarket", "stop_limit", "stoplimit")),
            st.integers(), st.none()).map(lambda v: (c, _order(type=v), "type")),
        st.one_of(st.text(max_size=6).filter(lambda t: t not in ("buy", "sell")), st.integers(), st.none()).map(
            lambda v: (c, _order(side=v), "side")),
        NOT_A_NUMBER.map(lambda v: (c, _order(amount=v), "amount")),
        NOT_A_NUMBER.filter(lambda v: v is not None).map(lambda v: (c, _order(price=v), "price")),
        NOT_PARAMS.map(lambda v: (c, _order(params=v), "params")),
        st.tuples(st.sampled_from(["reduceOnly", "postOnly"]), NOT_A_FLAG).map(
            lambda kv: (c, _order(params={kv[0]: kv[1]}), kv[0])),
        UNKNOWN_PARAM.map(lambda k: (c, _order(params={k: 1}), k)),
        NOT_A_NUMBER.filter(lambda v: v is not None).map(
            lambda v: (c, _order(type="market", price=None, params={"triggerPrice": v}), "triggerPrice")),
        st.one_of(st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=2), st.just({})).map(
            lambda v: (c, _order(params={"stopLoss": v}), "stopLoss")),
        NOT_A_NUMBER.filter(lambda v: v is not None).map(
            lambda v: (c, _order(params={"takeProfit": {"triggerPrice": v}}), "takeProfit")),
        st.floats(min_value=1.5, max_value=1e6).map(
            lambda v: (c, _order(params={"stopLoss": {"triggerPrice": 90.0, "amount": v}}), "stopLoss amount")),
        st.floats(min_value=101.0, max_value=200.0).map(
            lambda v: (c, _order(type="market", price=None, params={"triggerPrice": 100.0, "stopPrice": v}),
                       "stopPrice")),
        st.floats(min_value=50.0, max_value=99.0).map(
            lambda v: (c, _order(params={"stopLossPrice": v, "stopLoss": {"triggerPrice": v}}), "stopLoss")),
        st.floats(min_value=101.0, max_value=200.0).map(
            lambda v: (c, _order(type="market", price=None, params={"stopLossPrice": 90.0, "takeProfitPrice": v}),
                       "takeProfitPrice")),
        st.floats(min_value=101.0, max_value=200.0).map(
            lambda v: (c, _order(params={"takeProfitPrice": v}), "takeProfitPrice")),
        st.one_of(st.integers(), st.lists(st.text(max_size=2), max_size=1), st.just("")).map(
            lambda v: (c, _order(params={"timeInForce": v}), "timeInForce")),
        st.one_of(st.text(alphabet=" #/?", min_size=1, max_size=4), st.integers(),
                  st.text(alphabet="ab", min_size=client_ids.MAX_LENGTH + 1, max_size=client_ids.MAX_LENGTH + 9)).map(
            lambda v: (c, _order(params={"clientOrderId": v}), "clientOrderId")),
    )


def edit_cases() -> st.SearchStrategy[tuple[str, tuple[Any, ...], str]]:
    e = "edit_order"

    def args(id: Any = "12345", symbol: Any = "AAPL/USD", type: Any = "limit", side: Any = "buy",
             amount: Any = 1, price: Any = GOOD_PRICE, params: Any = None) -> tuple[Any, ...]:
        return (id, symbol, type, side, amount, price, {} if params is None else params)

    return st.one_of(
        NOT_AN_ID.map(lambda v: (e, args(id=v), "id")),
        st.just((e, args(id=None), "id")),
        NOT_A_SYMBOL.map(lambda v: (e, args(symbol=v), "symbol")),
        NOT_A_NUMBER.filter(lambda v: v is not None).map(lambda v: (e, args(amount=v), "amount")),
        NOT_A_NUMBER.filter(lambda v: v is not None).map(lambda v: (e, args(price=v), "price")),
        st.one_of(st.text(max_size=6).filter(lambda t: t not in ("buy", "sell")), st.integers()).map(
            lambda v: (e, args(side=v), "side")),
        st.one_of(st.text(max_size=6).filter(lambda t: t.strip().lower() not in (
            "market", "limit", "stop", "stop_market", "stopmarket", "stop_limit", "stoplimit", "stop-limit",
            "stop-market")), st.integers()).map(lambda v: (e, args(type=v), "type")),
        NOT_PARAMS.map(lambda v: (e, args(params=v), "params")),
        UNKNOWN_PARAM.map(lambda k: (e, args(params={k: 1}), k)),
        NOT_A_NUMBER.filter(lambda v: v is not None).map(lambda v: (e, args(params={"triggerPrice": v}),
                                                                    "triggerPrice")),
    )


def lookup_cases() -> st.SearchStrategy[tuple[str, tuple[Any, ...], str]]:
    return st.one_of(
        st.tuples(st.sampled_from(["cancel_order", "fetch_order"]), NOT_AN_ID).map(
            lambda mv: (mv[0], (mv[1], None, {}), "id")),
        st.sampled_from(["cancel_order", "fetch_order"]).map(lambda m: (m, (None, None, {}), "id")),
        st.tuples(st.sampled_from(["cancel_order", "fetch_order"]), NOT_A_SYMBOL).map(
            lambda mv: (mv[0], ("12345", mv[1], {}), "symbol")),
        st.tuples(st.sampled_from(["cancel_order", "fetch_order"]), NOT_PARAMS).map(
            lambda mv: (mv[0], ("12345", None, mv[1]), "params")),
    )


LISTS = ["fetch_orders", "fetch_open_orders", "fetch_closed_orders", "fetch_my_trades"]


def list_cases() -> st.SearchStrategy[tuple[str, tuple[Any, ...], str]]:
    return st.one_of(
        st.tuples(st.sampled_from(LISTS), NOT_A_SYMBOL).map(lambda mv: (mv[0], (mv[1], None, None, {}), "symbol")),
        st.tuples(st.sampled_from(LISTS), BAD_SINCE).map(lambda mv: (mv[0], (None, mv[1], None, {}), "since")),
        st.tuples(st.sampled_from(LISTS), BAD_LIMIT).map(lambda mv: (mv[0], (None, None, mv[1], {}), "limit")),
        st.tuples(st.sampled_from(LISTS), NOT_PARAMS).map(lambda mv: (mv[0], (None, None, None, mv[1]), "params")),
        st.tuples(st.sampled_from(LISTS), BAD_SINCE).map(
            lambda mv: (mv[0], (None, None, None, {"until": mv[1]}), "until")),
    )


def ohlcv_cases() -> st.SearchStrategy[tuple[str, tuple[Any, ...], str]]:
    o = "fetch_ohlcv"
    return st.one_of(
        NOT_A_SYMBOL.map(lambda v: (o, (v, "1h", None, 10, {}), "symbol")),
        st.just((o, (None, "1h", None, 10, {}), "symbol")),
        st.one_of(st.text(alphabet="xyz7q", max_size=4), st.integers(), st.lists(st.text(max_size=2), max_size=1),
                  st.none()).map(lambda v: (o, ("AAPL/USD", v, None, 10, {}), "timeframe")),
        BAD_SINCE.map(lambda v: (o, ("AAPL/USD", "1h", v, 10, {}), "since")),
        BAD_LIMIT.map(lambda v: (o, ("AAPL/USD", "1h", None, v, {}), "limit")),
        NOT_PARAMS.map(lambda v: (o, ("AAPL/USD", "1h", None, 10, v), "params")),
        st.text(alphabet="xyzq", min_size=1, max_size=4).map(
            lambda v: (o, ("AAPL/USD", "1h", None, 10, {"price": v}), "price")),
    )


def account_cases() -> st.SearchStrategy[tuple[str, tuple[Any, ...], str]]:
    return st.one_of(
        NOT_PARAMS.map(lambda v: ("fetch_balance", (v,), "params")),
        NOT_A_SYMBOL.map(lambda v: ("close_position", (v, None, {}), "symbol")),
        st.just(("close_position", (None, None, {}), "symbol")),
        st.one_of(st.text(max_size=6).filter(lambda t: t not in ("buy", "sell", "long", "short")),
                  st.integers()).map(lambda v: ("close_position", ("AAPL/USD", v, {}), "side")),
        NOT_PARAMS.map(lambda v: ("close_position", ("AAPL/USD", None, v), "params")),
    )


#: A group first, then a case in it (``st.one_of`` would flatten the groups and favour the biggest).
BAD_CALLS = st.sampled_from([create_cases(), edit_cases(), lookup_cases(), list_cases(), ohlcv_cases(),
                             account_cases()]).flatmap(lambda group: group)

# ------------------------------------------------------------------------------------------ brokers


class Broker:
    """One adapter (sync face) on its simulator, with what "reached the broker" means there."""

    def __init__(self, name: str, exchange: Any, footprint: Callable[[], tuple[int, ...]]) -> None:
        self.name = name
        self.exchange = exchange
        self.footprint = footprint
        self.pool = concurrent.futures.ThreadPoolExecutor(1)

    def call(self, method: str, args: tuple[Any, ...]) -> tuple[BaseException | None, float, bool]:
        """(exception or None, seconds, hung)."""
        started = time.monotonic()
        future = self.pool.submit(getattr(self.exchange, method), *args)
        try:
            future.result(timeout=BOUND)
        except concurrent.futures.TimeoutError:
            return None, time.monotonic() - started, True
        except BaseException as exc:  # noqa: BLE001 - judged by the caller
            return exc, time.monotonic() - started, False
        return None, time.monotonic() - started, False


@pytest.fixture(scope="module")
def ib_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with running_simulator() as sim:
        journal = tmp_path_factory.mktemp("ib") / "journal.sqlite"
        ex = ccxt_ibkr.IBTrader({"options": trader_options(sim, journal, symbols=["AAPL/USD", "EUR/USD"])})
        ex.load_markets()
        ex.fetch_balance()  # connected, synced: later calls need nothing but their own requests

        def footprint() -> tuple[int, ...]:
            return (len(sim.orders()), len(sim.executions()), sim.stats_historical_requests)

        broker = Broker("ibkr", ex, footprint)
        yield broker
        ex.close()
        broker.pool.shutdown()


@pytest.fixture(scope="module")
def capital_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    sim = CapitalSimulator(port=0, rate_limits="sim")
    sim.start()
    try:
        ex = ccxt_capital.CapitalTrader(trader_config(sim, tmp_path_factory.mktemp("capital"),
                                                      symbols=["AAPL/USD", "EUR/USD"]))
        ex.load_markets()
        ex.fetch_balance()
        wire = ex.impl._wire()
        dealer = sim.broker.dealer

        def footprint() -> tuple[int, ...]:
            with sim.broker.lock:
                books = (len(sim.positions()), len(sim.working_orders()), len(dealer.confirms),
                         len(dealer.activities))
            return (*books, wire.stats["requests"])

        broker = Broker("capitalcom", ex, footprint)
        yield broker
        ex.close()
        broker.pool.shutdown()
    finally:
        sim.stop()


def _names(message: str, word: str) -> bool:
    return word.lower() in message.lower()


def check_bad_call(broker: Broker, case: tuple[str, tuple[Any, ...], str]) -> None:
    method, args, word = case
    tally = TALLY[broker.name]
    before = broker.footprint()
    error, _, hung = broker.call(method, args)
    after = broker.footprint()
    tally["tried"] += 1
    tally["method " + method] += 1
    tally["reached the broker"] += after != before
    tally["hangs"] += hung
    tally["non-ccxt exceptions"] += error is not None and not isinstance(error, ccxt.BaseError)
    tally["accepted"] += error is None and not hung
    assert not hung, f"{method}{args!r} did not return within {BOUND} s"
    assert after == before, f"{method}{args!r} reached the broker: {before} -> {after}"
    assert isinstance(error, ccxt.BaseError), f"{method}{args!r} raised {error!r}, not a ccxt error"
    assert _names(str(error), word), f"{method}{args!r}: {type(error).__name__}({error}) does not name {word!r}"


SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


@settings(max_examples=DEFAULT_EXAMPLES, **SETTINGS)
@given(case=BAD_CALLS)
def test_bad_calls_ibkr(ib_broker: Broker, case: tuple[str, tuple[Any, ...], str]) -> None:
    check_bad_call(ib_broker, case)


@settings(max_examples=DEFAULT_EXAMPLES, **SETTINGS)
@given(case=BAD_CALLS)
def test_bad_calls_capitalcom(capital_broker: Broker, case: tuple[str, tuple[Any, ...], str]) -> None:
    check_bad_call(capital_broker, case)


@pytest.mark.long
@settings(max_examples=LONG_EXAMPLES, **SETTINGS)
@given(case=BAD_CALLS)
def test_many_bad_calls_ibkr(ib_broker: Broker, case: tuple[str, tuple[Any, ...], str]) -> None:
    check_bad_call(ib_broker, case)


@pytest.mark.long
@settings(max_examples=LONG_EXAMPLES, **SETTINGS)
@given(case=BAD_CALLS)
def test_many_bad_calls_capitalcom(capital_broker: Broker, case: tuple[str, tuple[Any, ...], str]) -> None:
    check_bad_call(capital_broker, case)


def test_tally(capsys: pytest.CaptureFixture[str]) -> None:
    """The figures the issue asks for, per adapter (printed; the tests above already assert each call)."""
    with capsys.disabled():
        for name, tally in TALLY.items():
            if tally["tried"]:
                print(f"\n{name}: bad calls tried {tally['tried']}, reached the broker {tally['reached the broker']}, "
                      f"non-ccxt exceptions {tally['non-ccxt exceptions']}, hangs {tally['hangs']}, "
                      f"accepted {tally['accepted']}")
                print("  per method: " + ", ".join(f"{k[7:]} {v}" for k, v in sorted(tally.items())
                                                  if k.startswith("method ")))
    for tally in TALLY.values():
        assert tally["reached the broker"] == tally["non-ccxt exceptions"] == tally["hangs"] == 0
