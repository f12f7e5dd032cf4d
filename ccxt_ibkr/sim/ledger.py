"""Account state: multi-currency cash, positions at IB-style average cost, PnL, commissions.

The ledger is the one place money moves, so the invariant a test checks after every fill
holds by construction: for each currency, ``cash + invested == initial + realized`` where
``invested`` is what the open positions tie up (stock/crypto cost basis including opening
commissions, a future's unpaid opening commissions, an FX position's quote-currency cost and
base-currency holding). Like IB, average cost includes commissions and realized PnL is net of
them, so the same numbers appear in updatePortfolio, position and commissionReport messages.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from normalization.fees import IB_FIXED_SCHEDULES, find_schedule

from .catalogue import Instrument


def order_fee(inst: Instrument, qty: float, value: float, usd_to_ccy: float = 1.0) -> float:
    """Total commission for an order that has executed ``qty`` for ``value`` (instrument ccy).

    IB's fixed plan, from :mod:`normalization.fees` (the schedule the adapter's estimates quote).
    Minimums and maximums apply per order: each execution is charged the order's cumulative fee
    minus what earlier executions of the same order already paid, as IB does."""
    if qty <= 0:
        return 0.0
    schedule = find_schedule(IB_FIXED_SCHEDULES, inst.sec_type, inst.currency, inst.primary_exchange)
    if schedule is None:
        return 0.0
    return schedule.for_value(qty, value, usd_rate=usd_to_ccy)


@dataclass
class Position:
    """One holding. ``cost`` includes commissions (IB avgCost); ``notional`` excludes them."""

    instrument: Instrument
    qty: float = 0.0
    cost: float = 0.0
    notional: float = 0.0
    realized: float = 0.0

    @property
    def avg_cost(self) -> float:
        """IB's avgCost: per unit including the multiplier (ES: price*50)."""
        return self.cost / self.qty if self.qty else 0.0

    @property
    def avg_price(self) -> float:
        return self.notional / self.qty / self.instrument.mult if self.qty else 0.0


@dataclass
class FillResult:
    realized: float
    position: Position


@dataclass
class Ledger:
    """Cash per currency and positions per conId for one account; thread-safe via one lock."""

    account: str = "DU1234567"
    base_currency: str = "USD"
    cash: dict[str, float] = field(default_factory=dict)
    #: base-currency units per unit of a currency; injected so FX follows the price paths.
    rate: Callable[[str], float] = lambda ccy: 1.0
    buying_power_multiplier: float = 4.0

    def __post_init__(self) -> None:
        if not self.cash:
            self.cash = {self.base_currency: 1_000_000.0}
        self.initial: dict[str, float] = dict(self.cash)
        self.positions: dict[int, Position] = {}
        self.commissions: dict[str, float] = {}
        self.realized: dict[str, float] = {}
        self.lock = threading.RLock()

    # -- mutations -------------------------------------------------------------------------
    def apply_fill(
        self, inst: Instrument, side: str, qty: float, price: float, commission: float
    ) -> FillResult:
        """Book one execution; ``side`` is BOT/SLD; commission is in the instrument currency."""
        with self.lock:
            ccy = inst.currency
            signed = qty if side == "BOT" else -qty
            mult = inst.mult
            pos = self.positions.get(inst.con_id)
            if pos is None:
                pos = self.positions[inst.con_id] = Position(inst)
            # Split into the part that closes the existing position and the part that opens.
            closing = 0.0
            if pos.qty and (pos.qty > 0) != (signed > 0):
                closing = min(abs(signed), abs(pos.qty))
            opening = abs(signed) - closing
            fee_close = commission * closing / qty if qty else 0.0
            fee_open = commission - fee_close
            realized = 0.0
            if closing:
                direction = 1.0 if pos.qty > 0 else -1.0
                unit_cost = pos.cost / pos.qty
                unit_notional = pos.notional / pos.qty
                gross = (price * mult - unit_notional) * closing * direction
                realized = (price * mult - unit_cost) * closing * direction - fee_close
                paid_open_fees = (unit_cost - unit_notional) * closing * direction
                pos.cost -= unit_cost * closing * direction
                pos.notional -= unit_notional * closing * direction
                pos.qty -= closing * direction
                if abs(pos.qty) < 1e-12:
                    pos.qty = pos.cost = pos.notional = 0.0
                self._cash_close(inst, closing * direction, price, gross, fee_close, paid_open_fees)
            if opening:
                direction = 1.0 if signed > 0 else -1.0
                pos.qty += opening * direction
                pos.notional += opening * direction * price * mult
                pos.cost += opening * direction * price * mult + fee_open
                self._cash_open(inst, opening * direction, price, fee_open)
            pos.realized += realized
            self.realized[ccy] = self.realized.get(ccy, 0.0) + realized
            self.commissions[ccy] = self.commissions.get(ccy, 0.0) + commission
            return FillResult(realized=realized, position=pos)

    def _add(self, ccy: str, amount: float) -> None:
        self.cash[ccy] = self.cash.get(ccy, 0.0) + amount

    def _cash_open(self, inst: Instrument, signed: float, price: float, fee: float) -> None:
        if inst.sec_type == "FUT":
            self._add(inst.currency, -fee)
            return
        self._add(inst.currency, -signed * price * inst.mult - fee)
        if inst.sec_type == "CASH":
            self._add(inst.symbol, signed)

    def _cash_close(
        self, inst: Instrument, signed_closed: float, price: float, gross: float, fee: float, paid_fees: float
    ) -> None:
        if inst.sec_type == "FUT":
            # Futures settle the price difference only; opening fees were paid in cash already.
            self._add(inst.currency, gross - fee)
            return
        self._add(inst.currency, signed_closed * price * inst.mult - fee)
        if inst.sec_type == "CASH":
            self._add(inst.symbol, -signed_closed)

    # -- views -----------------------------------------------------------------------------
    def invested(self) -> dict[str, float]:
        """What open positions tie up per currency; see the module docstring's invariant."""
        out: dict[str, float] = {}
        with self.lock:
            for pos in self.positions.values():
                inst = pos.instrument
                if inst.sec_type == "FUT":
                    amount = pos.cost - pos.notional
                else:
                    amount = pos.cost
                out[inst.currency] = out.get(inst.currency, 0.0) + amount
                if inst.sec_type == "CASH":
                    out[inst.symbol] = out.get(inst.symbol, 0.0) - pos.qty
        return out

    def check_invariants(self, tolerance: float = 1e-6) -> None:
        """Raise AssertionError unless cash, positions at cost and realized PnL add up."""
        with self.lock:
            invested = self.invested()
            currencies = set(self.cash) | set(invested) | set(self.initial) | set(self.realized)
            for ccy in sorted(currencies):
                lhs = self.cash.get(ccy, 0.0) + invested.get(ccy, 0.0)
                rhs = self.initial.get(ccy, 0.0) + self.realized.get(ccy, 0.0)
                scale = max(1.0, abs(lhs), abs(rhs))
                if not math.isclose(lhs, rhs, rel_tol=0, abs_tol=tolerance * scale):
                    raise AssertionError(f"{ccy}: cash+invested={lhs} != initial+realized={rhs}")

    def market_value(self, pos: Position, mark: float) -> float:
        return pos.qty * mark * pos.instrument.mult

    def unrealized(self, pos: Position, mark: float) -> float:
        return self.market_value(pos, mark) - pos.cost

    def summary(self, marks: Callable[[Instrument], float]) -> dict[str, float]:
        """Base-currency totals that TWS reports as account values / account summary tags."""
        with self.lock:
            cash_base = sum(amount * self.rate(ccy) for ccy, amount in self.cash.items())
            stock_value = 0.0
            fut_pnl = 0.0
            gross = 0.0
            init_margin = 0.0
            unrealized = 0.0
            for pos in self.positions.values():
                if not pos.qty:
                    continue
                inst = pos.instrument
                mark = marks(inst)
                rate = self.rate(inst.currency)
                value = self.market_value(pos, mark) * rate
                unrealized += self.unrealized(pos, mark) * rate
                gross += abs(value)
                init_margin += abs(value) * inst.margin_rate
                if inst.sec_type == "FUT":
                    fut_pnl += (self.market_value(pos, mark) - pos.notional) * rate
                elif inst.sec_type != "CASH":
                    stock_value += value
            net_liq = cash_base + stock_value + fut_pnl
            maint = init_margin * 0.8
            available = net_liq - init_margin
            realized = sum(v * self.rate(c) for c, v in self.realized.items())
            return {
                "NetLiquidation": net_liq,
                "TotalCashValue": cash_base,
                "SettledCash": cash_base,
                "AccruedCash": 0.0,
                "EquityWithLoanValue": net_liq,
                "GrossPositionValue": gross,
                "StockMarketValue": stock_value,
                "FuturesPNL": fut_pnl,
                "InitMarginReq": init_margin,
                "MaintMarginReq": maint,
                "FullInitMarginReq": init_margin,
                "FullMaintMarginReq": maint,
                "AvailableFunds": available,
                "FullAvailableFunds": available,
                "ExcessLiquidity": net_liq - maint,
                "FullExcessLiquidity": net_liq - maint,
                "BuyingPower": max(available, 0.0) * self.buying_power_multiplier,
                "Cushion": (net_liq - maint) / net_liq if net_liq else 0.0,
                "UnrealizedPnL": unrealized,
                "RealizedPnL": realized,
            }

    def currency_values(self, marks: Callable[[Instrument], float]) -> dict[str, dict[str, float]]:
        """Per-currency CashBalance / ExchangeRate / NetLiquidationByCurrency / PnL."""
        with self.lock:
            out: dict[str, dict[str, float]] = {}
            currencies = set(self.cash) | {p.instrument.currency for p in self.positions.values()}
            for ccy in sorted(currencies):
                cash = self.cash.get(ccy, 0.0)
                stock = fut = unreal = 0.0
                for pos in self.positions.values():
                    inst = pos.instrument
                    if inst.currency != ccy or not pos.qty:
                        continue
                    mark = marks(inst)
                    unreal += self.unrealized(pos, mark)
                    if inst.sec_type == "FUT":
                        fut += self.market_value(pos, mark) - pos.notional
                    elif inst.sec_type != "CASH":
                        stock += self.market_value(pos, mark)
                out[ccy] = {
                    "CashBalance": cash,
                    "TotalCashBalance": cash,
                    "ExchangeRate": self.rate(ccy),
                    "NetLiquidationByCurrency": cash + stock + fut,
                    "StockMarketValue": stock,
                    "FuturesPNL": fut,
                    "UnrealizedPnL": unreal,
                    "RealizedPnL": self.realized.get(ccy, 0.0),
                }
            return out

    def margin_for(self, inst: Instrument, side: str, qty: float, price: float) -> float:
        """Initial margin (base ccy) an order adds; closing trades add none."""
        with self.lock:
            pos = self.positions.get(inst.con_id)
            held = pos.qty if pos else 0.0
        signed = qty if side == "BUY" else -qty
        increase = abs(held + signed) - abs(held)
        if increase <= 0:
            return 0.0
        return increase * price * inst.mult * inst.margin_rate * self.rate(inst.currency)
