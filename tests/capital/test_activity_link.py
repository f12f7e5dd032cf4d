"""ccxt_capital.activity.link: a position line a working order's fill opened is filed under the order.

Lines shaped as in Capital.com's official Postman collection (``GET /history/activity``): the order's
lines carry its ``o_`` dealReference, the position's lines ``p_`` + the position's dealId.
"""

from __future__ import annotations

import copy
from typing import Any

from ccxt_capital.activity import link

AT = "2022-01-17T15:09:47.344"


def line(kind: str, deal_id: str, reference: str, action: str, *, size: float = 1, direction: str = "BUY",
         at: str = AT, epic: str = "OIL_CRUDE", affected: str | None = None, source: str = "USER") -> dict[str, Any]:
    return {"date": at, "dateUTC": at, "epic": epic, "dealId": deal_id, "source": source, "type": kind,
            "status": "ACCEPTED",
            "details": {"dealReference": reference, "size": size, "direction": direction, "level": 75.3,
                        "actions": [{"actionType": action, "affectedDealId": affected or deal_id}]}}


def order_lines(deal_id: str, reference: str, **kw: Any) -> list[dict[str, Any]]:
    created = line("WORKING_ORDER", deal_id, reference, "WORKING_ORDER_CREATED",
                   **{**kw, "at": "2022-01-17T15:00:00.000"})
    filled = line("WORKING_ORDER", deal_id, reference, "LIMIT_ORDER_FILLED", source="SYSTEM", **kw)
    return [created, filled]


def references(entries: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(e["dealId"], e["details"]["dealReference"], e["details"].get("positionReference")) for e in entries]


def test_the_position_a_fill_opened_is_filed_under_the_order_and_the_input_is_left_alone() -> None:
    entries = [line("POSITION", "0164", "p_0164", "POSITION_OPENED"), *order_lines("0163", "o_a")]
    before = copy.deepcopy(entries)
    linked = link(entries)
    assert references(linked) == [("0164", "o_a", "p_0164"), ("0163", "o_a", None), ("0163", "o_a", None)]
    assert entries == before


def test_orders_filled_together_are_told_apart_by_size_or_by_the_deal_the_fill_names() -> None:
    entries = [line("POSITION", "P2", "p_P2", "POSITION_OPENED", size=2),
               line("POSITION", "P1", "p_P1", "POSITION_OPENED", size=1),
               *order_lines("W1", "o_one", size=1), *order_lines("W2", "o_two", size=2)]
    assert [r[1] for r in references(link(entries))[:2]] == ["o_two", "o_one"]
    # The fill line naming the position it opened wins over time and size.
    named = [line("POSITION", "P9", "p_P9", "POSITION_OPENED", at="2022-01-17T16:00:00.000"),
             line("WORKING_ORDER", "W9", "o_nine", "LIMIT_ORDER_FILLED", affected="P9")]
    assert references(link(named))[0] == ("P9", "o_nine", "p_P9")


def test_lines_with_no_fill_beside_them_and_ambiguous_netted_ones_are_not_guessed() -> None:
    market = [line("POSITION", "P1", "p_P1", "POSITION_OPENED"),  # a deal with no working order
              line("POSITION", "P1", "p_P1", "POSITION_CLOSED", direction="SELL", source="CLOSE_OUT")]
    assert link(market) == market
    # A smaller position than either fill (one of them netted an opposite position first): which one?
    netted = [line("POSITION", "P3", "p_P3", "POSITION_OPENED", size=1),
              *order_lines("W1", "o_one", size=5), *order_lines("W2", "o_two", size=4)]
    assert references(link(netted))[0] == ("P3", "p_P3", None)
    # Another market, another side or another minute is not the fill either.
    for other in ({"epic": "GOLD"}, {"direction": "SELL"}, {"at": "2022-01-17T15:09:49.000"}):
        lines = [line("POSITION", "P4", "p_P4", "POSITION_OPENED", **other), *order_lines("W4", "o_four")]
        assert references(link(lines))[0] == ("P4", "p_P4", None)
