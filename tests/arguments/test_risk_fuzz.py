"""Generated pre-trade limits and orders at both adapters, both faces, counted at the simulators.

Each example is one ``options['risk']`` (valid or not: unknown keys, NaN, infinities, zero, negative,
huge, wrong types, a symbol both allowed and denied, percentages of 100 and more, fractional counts,
currency codes that are not, a ``notionalCurrency`` without its ``maxOrderNotional``)
and one to three orders (clean ones sized and priced around the quote, or with one odd field: an
unknown type, a side that is not one, a NaN / infinite / negative / huge amount or price, a symbol
that does not exist). What must hold, counted where the orders arrive (IB: every placeOrder message
the fake TWS reads; Capital.com: every deal POST the REST simulator handles):

* a bad config is refused when the exchange is built -- ``BadRequest`` (the library's
  ``ConfigError``) naming the risk setting -- and nothing is sent; a good one is accepted;
* an order refused by a limit raises ``InvalidOrder`` ("risk limit refused ...") and sends nothing;
* an order that clearly breaks a rule the test can judge alone (symbols, kinds, amount, the notional
  of a limit order, the price collar) is refused unless it only reduces a position (the collar
  applies even then); an order that breaks no limit by a clear margin is not refused by a limit;
* whatever else is raised is a ccxt ``ExchangeError`` (never a Python error, never a network one),
  and an order reaches the broker at most once; one that is returned reached it exactly once, under
  its clientOrderId at IB.

Hypothesis runs derandomized (seeded by the examples' own bytes); the whole module is in the ``long``
group. The tally (examples, configs refused, orders sent / refused by a limit / refused otherwise /
broker rejections) is printed.
"""

from __future__ import annotations

import asyncio
import math
import sys
import uuid
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
from ccxt_capital.async_support import CapitalTrader as AsyncCapitalTrader
from ccxt_capital.sim import CapitalSimulator, routes
from ccxt_ibkr.async_support import IBTrader as AsyncIBTrader
from ccxt_ibkr.sim.session import Session
from ccxt_ibkr.sim.testing import running_simulator

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.capital.trader_fixtures import trader_config  # noqa: E402
from tests.ib.trader_fixtures import trader_options  # noqa: E402

pytestmark = pytest.mark.long

EXAMPLES = 80  # per broker and face
STOCKS = ("AAPL/USD", "MSFT/USD")
#: The kinds ``allowTypes`` may name for these stocks, as each broker classifies them.
STOCK_KINDS = {"ibkr": {"spot", "stock"}, "capitalcom": {"spot", "stock", "cfd"}}
ALL_KINDS = ("spot", "swap", "future", "option", "stock", "forex", "crypto", "cfd", "index", "commodity", "bond",
             "fund")
TALLY: dict[str, Counter[str]] = {}

# ------------------------------------------------------------------------------------- the configs

GOOD_NUMBER = st.one_of(st.integers(1, 10**6), st.floats(0.01, 1e7), st.just(1e308), st.just("250"))
#: Valid limits of the size the generated orders meet (1-40 shares of a 100-500 USD stock), so they bind.
TIGHT = {"maxOrderAmount": st.one_of(st.integers(1, 60), st.floats(0.5, 80), st.just("25")),
         "maxPositionAmount": st.one_of(st.integers(1, 200), st.just("150")),
         "maxOrderNotional": st.one_of(st.floats(100, 20_000), st.integers(500, 50_000), st.just("2500"))}
BAD_NUMBER = st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, -3, -1e-9, "abc", " ", "nan", True, 10**400,
                              [1]])
SYMBOL_NAMES = st.sampled_from(["AAPL/USD", "MSFT/USD", "TSLA/USD", "EUR/USD", "NOPE/USD"])
Tagged = tuple[Any, bool]  # (value, whether the config reader must accept it)


@st.composite
def per_symbol(draw: Any, key: str) -> Tagged:
    good = not draw(st.booleans())  # (hypothesis leans to False: valid is the common case)
    number = st.one_of(TIGHT[key], TIGHT[key], GOOD_NUMBER) if good else BAD_NUMBER
    if draw(st.booleans()):
        return draw(number), good
    table = {draw(SYMBOL_NAMES): draw(TIGHT[key])}
    if draw(st.booleans()):
        table["*"] = draw(GOOD_NUMBER)
    if not good:
        table[draw(st.sampled_from(["AAPL/USD", "*", "", "  "]))] = draw(BAD_NUMBER)
    return table, good


@st.composite
def names(draw: Any) -> Tagged:
    if not draw(st.booleans()):
        return draw(st.one_of(st.lists(SYMBOL_NAMES, min_size=1, max_size=3), SYMBOL_NAMES)), True
    return draw(st.sampled_from([[""], [5], 5, {"AAPL/USD": 1}, ["AAPL/USD", None]])), False


@st.composite
def kinds(draw: Any) -> Tagged:
    if not draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(ALL_KINDS), min_size=1, max_size=3))
        return [k.upper() if draw(st.booleans()) else k for k in chosen], True
    return draw(st.sampled_from([["weird"], ["stock", "shares"], 5, [""]])), False


@st.composite
def count(draw: Any) -> Tagged:
    if not draw(st.booleans()):
        return draw(st.one_of(st.integers(1, 50), st.sampled_from([3.0, "4"]))), True
    return draw(st.sampled_from([2.5, 0, -1, math.nan, math.inf, True, "x"])), False


@st.composite
def percent(draw: Any) -> Tagged:
    if not draw(st.booleans()):
        return draw(st.floats(0.1, 99.9)), True
    return draw(st.sampled_from([100, 150.0, 0, -5, math.nan, math.inf, "lots"])), False


@st.composite
def currency(draw: Any) -> Tagged:
    if not draw(st.booleans()):
        return draw(st.sampled_from(["USD", "EUR", "usd", "SEK"])), True
    return draw(st.sampled_from([5, "euro!", "", "U", "US D"])), False


READERS = {"maxOrderNotional": lambda: per_symbol("maxOrderNotional"),
           "maxOrderAmount": lambda: per_symbol("maxOrderAmount"),
           "maxPositionAmount": lambda: per_symbol("maxPositionAmount"), "allowSymbols": names,
           "denySymbols": names, "allowTypes": kinds, "maxOpenOrders": count,
           "maxOrdersPerDay": count, "priceCollarPct": percent, "notionalCurrency": currency}


@st.composite
def risk_configs(draw: Any) -> Tagged:
    """An ``options['risk']`` and whether it is valid. Mostly valid (so orders get tried)."""
    shape = draw(st.sampled_from(["dict"] * 14 + ["none", "not a dict"]))
    if shape == "none":
        return None, True
    if shape == "not a dict":
        return draw(st.sampled_from([[1], "maxOrderAmount=5", 5, True])), False
    keys = draw(st.lists(st.sampled_from(sorted(set(READERS) - {"notionalCurrency"})), min_size=1, max_size=4,
                         unique=True))
    if draw(st.booleans()) if "maxOrderNotional" in keys else draw(st.integers(0, 14)) == 14:
        keys.append("notionalCurrency")  # mostly with its maxOrderNotional, now and then without
    config: dict[str, Any] = {}
    valid = True
    for key in keys:
        value, good = draw(READERS[key]())
        if not good and draw(st.integers(0, 5)) < 5:  # mostly valid values: a bad one kept a sixth of times
            value, good = draw(READERS[key]().filter(lambda tagged: tagged[1]))
        config[key], valid = value, valid and good
    if draw(st.integers(0, 14)) == 14:
        config[draw(st.sampled_from(["maxNotional", "max_order_amount", "MaxOrderAmount", ""]))] = 5
        valid = False
    if valid and _listed(config.get("allowSymbols")) & _listed(config.get("denySymbols")):
        valid = False  # a symbol both allowed and denied
    if "notionalCurrency" in config and "maxOrderNotional" not in config:
        valid = False  # the currency of a limit that is not set
    return config, valid


def _listed(value: Any) -> set[str]:
    if value is None:
        return set()
    return {value.strip()} if isinstance(value, str) else {str(v).strip() for v in value}


# -------------------------------------------------------------------------------------- the orders

ODD = {
    "symbol": st.sampled_from(["NOPE/USD", "", None, 5, "aapl/usd", "AAPL"]),
    "type": st.sampled_from(["LIMIT", "foo", None, 3, "stop", ""]),
    "side": st.sampled_from(["BUY", "hold", None, 1, ""]),
    "amount": st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, 1e30, 10**400, "x", True, None, 1e-9]),
    "price": st.sampled_from([math.nan, math.inf, -1.0, 0.0, None, 1e30, "abc"]),
}


@st.composite
def orders(draw: Any) -> dict[str, Any]:
    """A clean order (a stock, whole shares, a limit resting on its side of the quote) or one odd field."""
    side = draw(st.sampled_from(["buy", "sell"]))
    factor = draw(st.sampled_from([0.5, 0.8, 0.95, 0.99] if side == "buy" else [1.01, 1.05, 1.2, 2.0]))
    order = {"symbol": draw(st.sampled_from(STOCKS)), "type": draw(st.sampled_from(["limit", "limit", "market"])),
             "side": side, "amount": draw(st.integers(1, 40)), "factor": factor, "odd": None}
    if draw(st.integers(0, 2)) == 2:
        field = draw(st.sampled_from(sorted(ODD)))
        order["odd"] = field
        order[field] = draw(ODD[field])
        if field == "price":
            order["type"] = "limit"
    return order


# ------------------------------------------------------------------------------------- the brokers


class Broker:
    """One simulator, what "reached the broker" means there, and how to build an exchange on it."""

    def __init__(self, name: str, build: Callable[[str, Any], Any], sent: Callable[[], int],
                 booked: Callable[[str], int], loop: asyncio.AbstractEventLoop) -> None:
        self.name, self.build, self.sent, self.booked, self.loop = name, build, sent, booked, loop

    def call(self, ex: Any, method: str, *args: Any) -> Any:
        result = getattr(ex, method)(*args)
        return self.loop.run_until_complete(result) if asyncio.iscoroutine(result) else result


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The loop the async face runs on (the sync face brings its own thread)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def ib(loop: asyncio.AbstractEventLoop) -> Iterator[Broker]:
    messages: list[str] = []
    original = Session.place_order

    def counting(self: Session, fields: Any) -> None:
        messages.append(str(self.client_id))
        original(self, fields)

    Session.place_order = counting  # type: ignore[method-assign]
    try:
        with running_simulator() as sim:
            def build(face: str, risk: Any) -> Any:
                options = trader_options(sim, None, symbols=list(STOCKS), risk=risk)
                return (ccxt_ibkr.IBTrader if face == "sync" else AsyncIBTrader)({"options": options})

            def booked(cid: str) -> int:
                return sum(1 for o in sim.orders() if o.req.order_ref == cid)

            yield Broker("ibkr", build, lambda: len(messages), booked, loop)
    finally:
        Session.place_order = original  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def capital(loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    posts: list[bool] = []
    original = routes.deal_request

    def counting(body: Any, working: bool) -> Any:
        posts.append(working)
        return original(body, working=working)

    routes.deal_request = counting
    sim = CapitalSimulator(port=0, rate_limits="off", balance=10_000_000)
    sim.start()
    folder = tmp_path_factory.mktemp("capital-risk")
    try:
        def build(face: str, risk: Any) -> Any:
            config = trader_config(sim, folder, symbols=list(STOCKS), journal=None, risk=risk)
            return (ccxt_capital.CapitalTrader if face == "sync" else AsyncCapitalTrader)(config)

        yield Broker("capitalcom", build, lambda: len(posts), lambda cid: 1, loop)
    finally:
        sim.stop()
        routes.deal_request = original


# ---------------------------------------------------------------------------------------- the oracle


def _cap(value: Any, symbol: str) -> float | None:
    """A per-symbol limit for ``symbol`` as configured (a plain number, or the map's entry, else ``*``)."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get(symbol, value.get("*"))
        if value is None:
            return None
    return float(value)


def judge(broker: str, risk: dict[str, Any] | None, order: dict[str, Any], price: float | None, quote: float,
          held: float) -> str:
    """``refuse`` (a rule the test can judge alone is clearly broken), ``pass`` (no rule is broken by a
    clear margin, and none needs what only the broker knows), or ``unknown``."""
    if order["odd"] is not None or not risk:
        return "pass" if order["odd"] is None else "unknown"
    symbol, amount = order["symbol"], float(order["amount"])
    reduces = (held > 0 and order["side"] == "sell" or held < 0 and order["side"] == "buy") and amount <= abs(held)
    broken, close = [], []
    if "allowSymbols" in risk:
        broken.append(symbol not in _listed(risk["allowSymbols"]))
    if "denySymbols" in risk:
        broken.append(symbol in _listed(risk["denySymbols"]))
    if "allowTypes" in risk:
        broken.append(not {k.lower() for k in risk["allowTypes"]} & STOCK_KINDS[broker])
    for key, value in (("maxOrderAmount", amount), ("maxOrderNotional", amount * (price or quote))):
        cap = _cap(risk.get(key), symbol)
        if cap is not None and key == "maxOrderNotional" and str(risk.get("notionalCurrency", "USD")).upper() != "USD":
            close.append(True)  # converted at the broker's rate (or refused without one): not judged here
        elif cap is not None:
            broken.append(value > cap * 1.02)
            close.append(abs(value - cap) <= cap * 0.02 or (key == "maxOrderNotional" and price is None))
    collar = risk.get("priceCollarPct")
    collar_broken = False
    if collar is not None and price is not None:
        away = abs(price - quote) / quote * 100
        collar_broken = away > float(collar) + 2
        close.append(abs(away - float(collar)) <= 2)
    if collar_broken or (any(broken) and not reduces):
        return "refuse"
    dynamic = {"maxPositionAmount", "maxOpenOrders", "maxOrdersPerDay"} & set(risk)
    if dynamic or any(close) or any(broken):  # broken but reducing: passes, unless the position moved meanwhile
        return "unknown"
    return "pass"


# ------------------------------------------------------------------------------------------ the check


def check(broker: Broker, face: str, config: Any, valid: bool, plan: list[dict[str, Any]]) -> None:
    tally = TALLY.setdefault(f"{broker.name} {face}", Counter())
    tally["examples"] += 1
    before = broker.sent()
    try:
        ex = broker.build(face, config)
    except Exception as error:  # noqa: BLE001 - judged below
        tally["configs refused"] += 1
        assert not valid, f"a valid options['risk'] {config!r} was refused: {error!r}"
        assert isinstance(error, ccxt.BadRequest) and "risk" in str(error).lower(), repr(error)
        assert broker.sent() == before, "a refused config sent something"
        return
    assert valid, f"options['risk'] = {config!r} was accepted"
    tally["configs accepted"] += 1
    try:
        broker.call(ex, "load_markets")
        for order in plan:
            place(broker, ex, config, order, tally)
    finally:
        try:
            broker.call(ex, "cancel_all_orders")
        finally:
            broker.call(ex, "close")


def place(broker: Broker, ex: Any, risk: Any, order: dict[str, Any], tally: Counter[str]) -> None:
    symbol = order["symbol"]
    quote = price = None
    held = 0.0
    if order["odd"] is None or symbol in STOCKS:
        ticker = broker.call(ex, "fetch_ticker", order["symbol"] if symbol in STOCKS else STOCKS[0])
        quote = float(ticker["last"] or (ticker["bid"] + ticker["ask"]) / 2)
    if order["type"] == "limit" and order["odd"] != "price":
        price = round(quote * order["factor"], 2) if quote else 1.0
    elif order["odd"] == "price":
        price = order["price"]
    if order["odd"] is None and risk:
        held = sum(float(p["contracts"]) * (1 if p["side"] == "long" else -1)
                   for p in broker.call(ex, "fetch_positions") if p["symbol"] == symbol)
    verdict = judge(broker.name, risk, order, price if order["odd"] is None else None, quote or 0.0, held)
    tally[f"judged {verdict}"] += 1
    cid = f"rf-{uuid.uuid4().hex[:12]}"
    sent = broker.sent()
    args = (symbol, order["type"], order["side"], order["amount"], price, {"clientOrderId": cid})
    try:
        result = broker.call(ex, "create_order", *args)
    except Exception as error:  # noqa: BLE001 - judged below
        reached = broker.sent() - sent
        by_limit = isinstance(error, ccxt.InvalidOrder) and "risk limit refused" in str(error)
        tally["refused by a limit" if by_limit else "broker rejections" if reached else "refused otherwise"] += 1
        assert isinstance(error, ccxt.ExchangeError) and not isinstance(error, ccxt.NetworkError), (args, error)
        assert reached <= 1, f"{args!r} reached the broker {reached} times"
        if by_limit or verdict == "refuse":
            assert reached == 0, f"{args!r} refused ({error}) but sent"
        assert verdict != "pass" or not by_limit, f"{args!r} under {risk!r} refused by a limit: {error}"
        assert verdict != "refuse" or by_limit or reached == 0, (args, risk, error)
        return
    tally["sent"] += 1
    assert verdict != "refuse", f"{args!r} under {risk!r} was sent: {result.get('status')}"
    assert broker.sent() - sent == 1, f"{args!r} reached the broker {broker.sent() - sent} times"
    assert broker.booked(cid) == 1


SETTINGS = dict(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])
CASES = dict(config=risk_configs(), plan=st.lists(orders(), min_size=1, max_size=3))


@pytest.mark.parametrize("face", ["sync", "async"])
@settings(**SETTINGS)
@given(**CASES)
def test_risk_limits_ibkr(ib: Broker, face: str, config: tuple[Any, bool], plan: list[dict[str, Any]]) -> None:
    check(ib, face, *config, plan)


@pytest.mark.parametrize("face", ["sync", "async"])
@settings(**SETTINGS)
@given(**CASES)
def test_risk_limits_capitalcom(capital: Broker, face: str, config: tuple[Any, bool],
                                plan: list[dict[str, Any]]) -> None:
    check(capital, face, *config, plan)


def test_tally(capsys: pytest.CaptureFixture[str]) -> None:
    """The counts (printed; the tests above assert each example)."""
    with capsys.disabled():
        for name, tally in TALLY.items():
            print(f"\nrisk fuzz {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    assert TALLY, "the fuzz tests did not run"
