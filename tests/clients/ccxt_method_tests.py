"""Run ccxt's own per-method tests (shipped in the ccxt wheel, ``ccxt/test/exchange/{sync,async}``)
against an adapter, the way ccxt's harness (``ccxt/test/tests_sync.py``) picks and calls them.

ccxt's harness itself refuses to run from site-packages (it wants the repository's keys, skip lists and
command line), so this is a small equivalent: for every method the exchange claims in ``has`` (plus the
tests ccxt always runs: loadMarkets, features, afterConstruct), call ``test_<method>(exchange,
skipped_properties, *args)`` with the arguments ccxt's harness passes, and record pass / fail.

The create-order test ships with bugs of its Python transpilation, worked around here and not in the
adapters: it concatenates floats to strings in two debug lines (a TypeError before any order is sent:
the balance line of ``test_create_order`` and the first line of ``tco_create_order_safe``), calls the
``test_order`` *module* instead of its function, and uses ``Error``, ``time`` and ``math`` without
importing them; ``fetch_order`` of the shared helpers looks methods up as ``exchange[name]``, which no
Python ccxt exchange supports; ``tco_mininum_cost`` asserts a minimum cost exists and its caller then
handles the case where none does (the assert is the bug: most exchanges, brokers included, have none); and the
async version awaits ``fetch_best_bid_ask`` / ``fetch_order`` of the *sync* shared helpers, which call
the exchange without awaiting it; ``tco_get_minimum_amount_for_limit_price`` rounds with ROUND_UP,
a mode Python's ``decimal_to_precision`` refuses (AssertionError). The functions are re-stated here
without those faults, calling the shipped scenario helpers (``tco_create_unfillable_order``,
``tco_create_fillable_order``) unchanged.
"""

from __future__ import annotations

import importlib
import inspect
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ccxt.test.exchange.base.test_order import test_order as _order_validator

#: test file -> (ccxt method name in ``has``, arguments: "symbol" / "code" / "symbols" / literal).
TESTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "test_load_markets": ("loadMarkets", ()),
    "test_features": ("features", ()),
    "test_after_construct": ("afterConstruct", ()),
    "test_fetch_markets": ("fetchMarkets", ()),
    "test_fetch_currencies": ("fetchCurrencies", ()),
    "test_fetch_status": ("fetchStatus", ()),
    "test_fetch_ticker": ("fetchTicker", ("symbol",)),
    "test_fetch_tickers": ("fetchTickers", ("symbol",)),
    "test_fetch_last_prices": ("fetchLastPrices", ("symbol",)),
    "test_fetch_ohlcv": ("fetchOHLCV", ("symbol",)),
    "test_fetch_trades": ("fetchTrades", ("symbol",)),
    "test_fetch_order_book": ("fetchOrderBook", ("symbol",)),
    "test_fetch_l2_order_book": ("fetchL2OrderBook", ("symbol",)),
    "test_fetch_order_books": ("fetchOrderBooks", ()),
    "test_fetch_trading_fee": ("fetchTradingFee", ("symbol",)),
    "test_fetch_trading_fees": ("fetchTradingFees", ()),
    "test_fetch_transaction_fees": ("fetchTransactionFees", ()),
    "test_fetch_balance": ("fetchBalance", ()),
    "test_fetch_accounts": ("fetchAccounts", ()),
    "test_fetch_orders": ("fetchOrders", ("symbol",)),
    "test_fetch_open_orders": ("fetchOpenOrders", ("symbol",)),
    "test_fetch_closed_orders": ("fetchClosedOrders", ("symbol",)),
    "test_fetch_my_trades": ("fetchMyTrades", ("symbol",)),
    "test_fetch_positions": ("fetchPositions", ("symbol",)),
    "test_fetch_ledger": ("fetchLedger", ("code",)),
    "test_fetch_ledger_entry": ("fetchLedgerEntry", ("code",)),
    "test_fetch_deposits": ("fetchDeposits", ("code",)),
    "test_fetch_withdrawals": ("fetchWithdrawals", ("code",)),
    "test_fetch_deposit_withdrawals": ("fetchDepositsWithdrawals", ("code",)),
    "test_fetch_transfers": ("fetchTransfers", ("code",)),
    "test_fetch_borrow_interest": ("fetchBorrowInterest", ("code", "symbol")),
    "test_fetch_margin_mode": ("fetchMarginMode", ("symbol",)),
    "test_fetch_margin_modes": ("fetchMarginModes", ("symbol",)),
    "test_fetch_leverage_tiers": ("fetchLeverageTiers", ("symbols",)),
    "test_fetch_market_leverage_tiers": ("fetchMarketLeverageTiers", ("symbol",)),
    "test_fetch_funding_rate_history": ("fetchFundingRateHistory", ("symbol",)),
    "test_fetch_open_interest_history": ("fetchOpenInterestHistory", ("symbol",)),
    "test_fetch_liquidations": ("fetchLiquidations", ("symbol",)),
    "test_fetch_my_liquidations": ("fetchMyLiquidations", ("symbol",)),
    "test_create_order": ("createOrder", ("symbol",)),
}
ALWAYS = {"loadMarkets", "features", "afterConstruct"}
PER_SYMBOL_ONCE = {"loadMarkets", "features", "afterConstruct", "fetchMarkets", "fetchCurrencies", "fetchStatus",
                   "fetchOrderBooks", "fetchTradingFees", "fetchTransactionFees", "fetchBalance", "fetchAccounts"}


@dataclass
class Outcome:
    method: str
    args: tuple[Any, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str:
        return f"{self.method}({', '.join(map(str, self.args))})"


@dataclass
class Report:
    exchange: str
    face: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    def failures(self) -> dict[str, str]:
        return {o.label: o.error or "" for o in self.outcomes if not o.passed}

    def summary(self) -> str:
        lines = [f"{self.exchange} {self.face}: {self.passed}/{len(self.outcomes)} of ccxt's method tests passed"]
        lines += [f"  FAIL {label}: {error}" for label, error in self.failures().items()]
        return "\n".join(lines)


def _fixed_create_order_safe(module: Any, face: str) -> Callable[..., Any]:
    """``tco_create_order_safe`` without the debug line that adds floats to strings."""
    if face == "sync":
        def create(exchange: Any, symbol: str, order_type: str, side: str, amount: float, price: Any = None,
                   params: dict[str, Any] = {}, skipped_properties: dict[str, Any] = {}) -> Any:
            order = exchange.create_order(symbol, order_type, side, amount, price, params)
            try:
                _order_validator(exchange, skipped_properties, "createOrder", order, symbol, int(time.time() * 1000))
            except Exception:
                if order_type != "market":
                    module.tco_try_cancel_order(exchange, symbol, order, skipped_properties)
                raise
            return order
        return create

    async def create_async(exchange: Any, symbol: str, order_type: str, side: str, amount: float, price: Any = None,
                           params: dict[str, Any] = {}, skipped_properties: dict[str, Any] = {}) -> Any:
        order = await exchange.create_order(symbol, order_type, side, amount, price, params)
        try:
            _order_validator(exchange, skipped_properties, "createOrder", order, symbol, int(time.time() * 1000))
        except Exception:
            if order_type != "market":
                await module.tco_try_cancel_order(exchange, symbol, order, skipped_properties)
            raise
        return order
    return create_async


class _SyncSharedMethods:
    """ccxt's shared test helpers with ``fetch_order`` looking methods up with ``getattr``."""

    def __init__(self, base: Any) -> None:
        self._base = base

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def fetch_order(self, exchange: Any, symbol: str, order_id: str, skipped: Any) -> Any:
        if exchange.has.get("fetchOrder"):
            order = exchange.fetch_order(order_id, symbol)
            if order["id"] == order_id:
                return order
        since = exchange.milliseconds() - 5 * 60 * 1000
        for plural in ("fetchOrders", "fetchOpenOrders", "fetchClosedOrders"):
            if exchange.has.get(plural):
                for order in getattr(exchange, plural)(symbol, since):
                    if order["id"] == order_id:
                        return order
        return None


class _AsyncSharedMethods(_SyncSharedMethods):
    """ccxt's shared test helpers with the two the async create-order test awaits made awaitable."""

    async def fetch_best_bid_ask(self, exchange: Any, method: str, symbol: str) -> list[Any]:
        if exchange.has.get("fetchOrderBook"):
            book = await exchange.fetch_order_book(symbol)
            bid = exchange.safe_number(exchange.safe_list(book["bids"], 0), 0)
            ask = exchange.safe_number(exchange.safe_list(book["asks"], 0), 0)
        else:
            ticker = await exchange.fetch_ticker(symbol)
            bid, ask = exchange.safe_number(ticker, "bid"), exchange.safe_number(ticker, "ask")
        assert bid is not None and ask is not None, f"{exchange.id} could not get best bid/ask for {symbol}"
        return [bid, ask]

    async def fetch_order(  # type: ignore[override]
            self, exchange: Any, symbol: str, order_id: str, skipped: Any) -> Any:
        if exchange.has.get("fetchOrder"):
            order = await exchange.fetch_order(order_id, symbol)
            if order["id"] == order_id:
                return order
        since = exchange.milliseconds() - 5 * 60 * 1000
        for plural in ("fetchOrders", "fetchOpenOrders", "fetchClosedOrders"):
            if exchange.has.get(plural):
                for order in await getattr(exchange, plural)(symbol, since):
                    if order["id"] == order_id:
                        return order
        return None


def _minimum_amount(module: Any) -> Callable[..., Any]:
    """``tco_get_minimum_amount_for_limit_price`` with its ROUND_UP done by hand (ceil to the step)."""
    def minimum(exchange: Any, market: dict[str, Any], price: float, predefined_amount: Any = None) -> float:
        amount = module.tco_mininum_amount(exchange, market)
        cost = module.tco_mininum_cost(exchange, market)
        if cost is not None and amount * price < cost:
            amount = cost / price
        if predefined_amount is not None:
            amount = max(amount, predefined_amount)
        step = exchange.safe_number(market["precision"], "amount") or 1e-15
        amount = (amount + step) * 1.1
        return float(exchange.amount_to_precision(market["symbol"], math.ceil(amount / step) * step))
    return minimum


def _fixed_test_create_order(module: Any, face: str) -> Callable[..., Any]:
    """``test_create_order``: the same checks and scenarios, without the float-to-string debug line."""
    multiplier = 1.045  # the shipped test's limit_price_safety_multiplier_from_median

    def preconditions(exchange: Any, symbol: str) -> Any:
        has = exchange.has
        assert has.get("cancelOrder") or has.get("cancelOrders") or has.get("cancelAllOrders"), "no cancel method"
        assert has.get("fetchBalance"), "no fetchBalance"
        return exchange.market(symbol)

    if face == "sync":
        def test(exchange: Any, skipped: dict[str, Any], symbol: str) -> bool:
            market = preconditions(exchange, symbol)
            balance = exchange.fetch_balance()
            assert balance[market["quote"]]["free"] is not None, f"no {market['quote']} balance"
            _ = balance[market["base"]]["free"]
            bid, ask = module.test_shared_methods.fetch_best_bid_ask(exchange, "createOrder", symbol)
            prefix = module.test_shared_methods.log_template(exchange, "createOrder", [symbol])
            sides = ("buy", "sell") if market["swap"] or market["future"] else ("buy",)
            for side in sides:
                module.tco_create_unfillable_order(exchange, market, prefix, skipped, bid, ask, multiplier, side)
            for side in sides:
                module.tco_create_fillable_order(exchange, market, prefix, skipped, bid, ask, multiplier, side)
            return True
        return test

    async def test_async(exchange: Any, skipped: dict[str, Any], symbol: str) -> bool:
        market = preconditions(exchange, symbol)
        balance = await exchange.fetch_balance()
        assert balance[market["quote"]]["free"] is not None, f"no {market['quote']} balance"
        _ = balance[market["base"]]["free"]
        bid, ask = await module.test_shared_methods.fetch_best_bid_ask(exchange, "createOrder", symbol)
        prefix = module.test_shared_methods.log_template(exchange, "createOrder", [symbol])
        sides = ("buy", "sell") if market["swap"] or market["future"] else ("buy",)
        for side in sides:
            await module.tco_create_unfillable_order(exchange, market, prefix, skipped, bid, ask, multiplier, side)
        for side in sides:
            await module.tco_create_fillable_order(exchange, market, prefix, skipped, bid, ask, multiplier, side)
        return True
    return test_async


def load(face: str) -> dict[str, Callable[..., Any]]:
    """The test functions of one face, with the create-order test's shipped bugs worked around."""
    package = f"ccxt.test.exchange.{'sync' if face == 'sync' else 'async'}"
    found = {}
    for name in TESTS:
        try:
            module = importlib.import_module(f"{package}.{name}")
        except ImportError:
            continue
        if name == "test_create_order":
            module.Error = Exception  # type: ignore[attr-defined]
            module.time = time  # type: ignore[attr-defined]
            module.math = math  # type: ignore[attr-defined]
            module.test_order = _order_validator  # type: ignore[attr-defined]
            module.tco_debug = lambda *args: True  # type: ignore[attr-defined]
            module.tco_get_minimum_amount_for_limit_price = _minimum_amount(module)  # type: ignore[attr-defined]
            module.tco_mininum_cost = lambda exchange, market: exchange.safe_number(  # type: ignore[attr-defined]
                exchange.safe_dict(market["limits"], "cost", {}), "min")
            shim = _SyncSharedMethods if face == "sync" else _AsyncSharedMethods
            module.test_shared_methods = shim(module.test_shared_methods)  # type: ignore[attr-defined]
            module.tco_create_order_safe = _fixed_create_order_safe(module, face)  # type: ignore[attr-defined]
            found[name] = _fixed_test_create_order(module, face)
            continue
        found[name] = getattr(module, name)
    return found


def plan(exchange: Any, symbols: list[str], code: str) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(test name, method, args) for every test ccxt's harness would run on this exchange."""
    steps = []
    for name, (method, shape) in TESTS.items():
        supported = exchange.has.get(method) not in (None, False)
        if method not in ALWAYS and not supported:
            continue
        for symbol in symbols[:1] if method in PER_SYMBOL_ONCE or "symbol" not in shape else symbols:
            args = tuple(symbol if a == "symbol" else [symbol] if a == "symbols" else code for a in shape)
            steps.append((name, method, args))
    return steps


def run_sync(exchange: Any, symbols: list[str], code: str, skipped: dict[str, Any] | None = None) -> Report:
    tests = load("sync")
    report = Report(exchange.id, "sync")
    exchange.load_markets()
    for name, method, args in plan(exchange, symbols, code):
        outcome = Outcome(method, args)
        try:
            tests[name](exchange, dict((skipped or {}).get(method, {})), *args)
        except Exception as error:  # noqa: BLE001 - every failure is recorded, as ccxt's harness does
            outcome.error = _describe(error)
        report.outcomes.append(outcome)
    return report


async def run_async(exchange: Any, symbols: list[str], code: str, skipped: dict[str, Any] | None = None) -> Report:
    tests = load("async")
    report = Report(exchange.id, "async")
    await exchange.load_markets()
    for name, method, args in plan(exchange, symbols, code):
        outcome = Outcome(method, args)
        try:
            result = tests[name](exchange, dict((skipped or {}).get(method, {})), *args)
            if inspect.isawaitable(result):
                await result
        except Exception as error:  # noqa: BLE001
            outcome.error = _describe(error)
        report.outcomes.append(outcome)
    return report


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    inner = error.__cause__ or error.__context__
    if inner is not None:  # the shipped create-order test re-raises with only str(e): keep the type
        text += f" <- {type(inner).__name__}: {inner}".replace("\n", " ")
        error = inner
    if isinstance(error, (TypeError, AttributeError, KeyError, AssertionError)):
        frame = traceback.extract_tb(error.__traceback__)[-1]
        text += f" [{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.line}]"
    return text[:400]
