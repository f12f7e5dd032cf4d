"""Builders for server-to-client messages, per negotiated server version.

Field lists follow ib_async 2.1.0's ``decoder.py`` (the client wins where ib-protocol.md
differs) and the official ``ibapi`` order: ib_async unpacks several messages into fixed-size
tuples, so a missing or extra field is a crash on the client, not a cosmetic issue.
Only the few version gates the supported clients exercise are modelled: 157 (integer
sizes, versioned contractDetails), 163/164 (size rules), 166 (reject JSON in errors),
176/177 (faProfile), 178 (pendingPriceRevision).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .catalogue import Instrument
from .ledger import Ledger, order_fee
from .matching import Execution, SimOrder
from .wire import fmt_size

Fields = list[object]


def exec_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y%m%d %H:%M:%S") + " UTC"


def error(version: int, req_id: int, code: int, text: str, json: str = "") -> Fields:
    fields: Fields = [4, 2, req_id, code, text]
    if version >= 166:
        fields.append(json)
    return fields


def contract12(inst: Instrument, exchange: str = "") -> Fields:
    """conId..tradingClass as in execDetails/openOrder (exchange, not primaryExchange)."""
    return [
        inst.con_id, inst.symbol, inst.sec_type, inst.last_trade_date, 0.0, "", inst.multiplier,
        exchange or inst.exchange, inst.currency, inst.local_symbol, inst.trading_class,
    ]


def contract_details(version: int, req_id: int, inst: Instrument, exchange: str, now: float) -> Fields:
    ltd = inst.last_trade_date
    fields: Fields = [10]
    if version < 164:
        fields.append(8)
    fields += [
        req_id, inst.symbol, inst.sec_type, ltd, 0.0, "", exchange or inst.exchange, inst.currency,
        inst.local_symbol, inst.trading_class, inst.trading_class, inst.con_id, inst.min_tick,
    ]
    if version < 164:
        fields.append(1)  # mdSizeMultiplier
    fields += [
        inst.multiplier, inst.order_types, ",".join(inst.valid_exchanges), 1, inst.under_con_id, inst.long_name,
        inst.primary_exchange, inst.contract_month, inst.industry, inst.category, inst.subcategory,
        inst.hours.tz, inst.hours.describe(now, liquid=False), inst.hours.describe(now, liquid=True),
        "", "", 0,  # evRule, evMultiplier, secIdList count
        inst.agg_group, inst.under_symbol, inst.under_sec_type, inst.rule_ids, inst.last_trade_date, inst.stock_type,
    ]
    if version == 163:
        fields.append(fmt_size(inst.size_increment, version))
    if version >= 164:
        fields += [
            fmt_size(inst.min_size, version), fmt_size(inst.size_increment, version),
            fmt_size(inst.size_increment, version),
        ]
    return fields


def order_status(order: SimOrder, version: int) -> Fields:
    return [
        3, order.order_id, order.status, fmt_size(order.filled, version), fmt_size(order.remaining, version),
        order.avg_fill_price, order.perm_id, order.req.parent_id, order.last_fill_price, order.client_id,
        order.why_held, "",
    ]


def _price(value: float | None) -> object:
    return "" if value is None else value


def estimate_fee(inst: Instrument, qty: float, price: float, ledger: Ledger) -> float:
    usd_to_ccy = ledger.rate("USD") / max(ledger.rate(inst.currency), 1e-12)
    return order_fee(inst, qty, qty * price * inst.mult, usd_to_ccy)


def _what_if_state(state: dict[str, Any]) -> list[object]:
    # TWS order: before x3, change x3, after x3 (init, maint, equity with loan)
    befores = [f"{state[k][0]:.2f}" for k in ("init", "maint", "equity")]
    changes = [f"{state[k][1]:.2f}" for k in ("init", "maint", "equity")]
    afters = [f"{state[k][0] + state[k][1]:.2f}" for k in ("init", "maint", "equity")]
    fee = state["commission"]
    return [*befores, *changes, *afters, fee, fee, fee, state["currency"], ""]


def _algo(strategy: str, params: list[tuple[str, str]]) -> list[object]:
    """algoStrategy, then (when set) its TagValue params."""
    if not strategy:
        return [""]
    return [strategy, len(params), *(item for pair in params for item in pair)]


def open_order(order: SimOrder, version: int, account: str, what_if: dict[str, Any] | None = None) -> Fields:
    r = order.req
    inst = order.inst
    f: Fields = [5, order.order_id]
    f += contract12(inst, order.exchange)
    f += [
        r.action, fmt_size(r.total_qty, version), r.order_type, _price(r.lmt_price), _price(r.aux_price),
        r.tif or "DAY", r.oca_group, r.account or account, "O", 0, r.order_ref, order.client_id,
        order.perm_id, int(r.outside_rth), 0, "", "", "", "", "", "",
    ]
    if version < 177:
        f.append("")  # faProfile
    f += [
        "",  # modelCode
        r.good_till_date, "", "", "", 0, "", -1, "",  # goodTillDate rule80A percentOffset settlingFirm
        "", "", "", "", "",  # startingPrice stockRefPrice delta stockRangeLower stockRangeUpper
        "", 0, 0, 0, "",  # displaySize blockOrder sweepToFill allOrNone minQty
        r.oca_type, 0, 0, "", r.parent_id, 0, "", "", "", "",  # ... deltaNeutralAuxPrice
        0, "", _price(order.trail_stop), _price(r.trailing_percent), "", "", "",  # continuousUpdate .. comboLegsDescrip
        0, 0, 0,  # combo legs, order combo legs, smart combo params
        "", "", "",  # scale init/subs/increment
        "",  # hedgeType
        0, "", "IB", 0, 0,  # optOutSmartRouting clearingAccount clearingIntent notHeld dncPresent
        *_algo(r.algo_strategy, r.algo_params),
        0, int(what_if is not None), order.status,
        *(_what_if_state(what_if) if what_if else [""] * 14),  # margins, commissions, warningText
        0, 0,  # randomizeSize randomizePrice
        0,  # conditions
        "", "", _price(order.trail_stop), _price(r.lmt_price_offset), "", "", "", 0,  # adjustedOrderType .. unit
        "", "", "",  # softDollarTier
        "", 0, 0, "", 0,  # cashQty dontUseAutoPriceForHedge isOmsContainer discretionaryUpToLimitPrice usePMA
    ]
    if version >= 159:
        f.append("")  # duration
    if version >= 160:
        f.append("")  # postToAts
    if version >= 162:
        f.append(0)  # autoCancelParent
    if version >= 170:
        f += ["", "", "", "", ""]
    return f


def completed_order(order: SimOrder, version: int, account: str) -> Fields:
    r = order.req
    inst = order.inst
    f: Fields = [101]
    f += contract12(inst, order.exchange)
    f += [
        r.action, fmt_size(r.total_qty, version), r.order_type, _price(r.lmt_price), _price(r.aux_price),
        r.tif or "DAY", r.oca_group, r.account or account, "O", 0, r.order_ref, order.perm_id,
        int(r.outside_rth), 0, "", "", "", "", "",
    ]
    if version < 177:
        f.append("")
    f += [
        "", r.good_till_date, "", "", "", 0, "", -1,  # modelCode .. exemptCode
        "", "", "", "", "",  # startingPrice stockRefPrice delta stockRangeLower/Upper
        "", 0, 0, "", r.oca_type, 0, "", "", "", "",  # displaySize .. deltaNeutralAuxPrice
        0, "", "", "", "",  # continuousUpdate referencePriceType trailStopPrice trailingPercent comboLegsDescrip
        0, 0, 0,
        "", "", "",
        "",
        "", "IB", 0, 0,  # clearingAccount clearingIntent notHeld dncPresent
        "",
        0, order.status, 0, 0,  # solicited status randomizeSize randomizePrice
        0,  # conditions
        "", "", "", 0, 0, "", fmt_size(order.filled, version), 0, 0, "", 0, 0, 0,
        exec_time(order.completed_at or order.placed_at), order.status,
    ]
    if version >= 170:
        f += ["", "", "", "", ""]
    return f


def exec_details(req_id: int, ex: Execution, version: int, account: str) -> Fields:
    order = ex.order
    f: Fields = [11, req_id, order.order_id]
    f += contract12(order.inst, order.exchange)
    f += [
        ex.exec_id, exec_time(ex.time), account, ex.venue, ex.side, fmt_size(ex.shares, version), ex.price,
        order.perm_id, order.client_id, 0, fmt_size(ex.cum_qty, version), ex.avg_price, order.req.order_ref,
        "", "", "", 2 if order.req.order_type in {"LMT"} else 1,
    ]
    if version >= 178:
        f.append(0)
    return f


UNSET = "1.7976931348623157E308"


def commission_report(ex: Execution) -> Fields:
    realized = UNSET if ex.realized is None else round(ex.realized, 8)
    return [59, 1, ex.exec_id, ex.commission, ex.order.inst.currency, realized, UNSET, ""]


def listing_exchange(inst: Instrument) -> str:
    """The exchange TWS names on positions: the listing venue for stocks, the trading venue otherwise."""
    return inst.primary_exchange or inst.exchange


def position(account: str, inst: Instrument, qty: float, avg_cost: float, version: int) -> Fields:
    return [
        61, 3, account, inst.con_id, inst.symbol, inst.sec_type, inst.last_trade_date, 0.0, "", inst.multiplier,
        listing_exchange(inst), inst.currency, inst.local_symbol, inst.trading_class,
        fmt_size(qty, version), avg_cost,
    ]


def portfolio(
    account: str, inst: Instrument, qty: float, mark: float, value: float, avg_cost: float, unrealized: float,
    realized: float, version: int,
) -> Fields:
    return [
        7, 8, inst.con_id, inst.symbol, inst.sec_type, inst.last_trade_date, 0.0, "", inst.multiplier,
        inst.primary_exchange or inst.exchange, inst.currency, inst.local_symbol, inst.trading_class,
        fmt_size(qty, version), mark, round(value, 4), avg_cost, round(unrealized, 4), round(realized, 4), account,
    ]


def tick_price(req_id: int, tick_type: int, price: float, size: float, version: int) -> Fields:
    return [1, 6, req_id, tick_type, price, fmt_size(size, version), 0]


def tick_size(req_id: int, tick_type: int, size: float, version: int) -> Fields:
    return [2, 6, req_id, tick_type, fmt_size(size, version)]


def bar_fields(date: str, o: float, h: float, lo: float, c: float, volume: float, wap: float, count: int,
               version: int) -> Fields:
    vol: object = -1 if volume < 0 else fmt_size(volume, version)
    return [date, o, h, lo, c, vol, wap, count]
