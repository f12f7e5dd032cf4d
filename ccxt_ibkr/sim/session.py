"""One client connection: handshake, startApi, dispatch to the request handlers.

A session owns nothing the account depends on; it translates between the wire and the
shared simulator state (catalogue, market data, ledger, order engine) held by
``server.IBSimulator``. Everything here runs on the simulator's event loop thread, so no
locking is needed beyond what the shared objects do for test-thread readers. Garbage or a
broken socket ends this session only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .handlers_account import AccountHandlers
from .handlers_market import MarketDataHandlers
from .handlers_orders import OrderHandlers
from .handlers_reference import ReferenceHandlers
from .handlers_streams import StreamHandlers
from .wire import (
    HANDSHAKE_MAX_FRAME,
    Fields,
    ProtocolError,
    encode_fields,
    negotiate,
    read_frame,
    read_greeting,
    split_payload,
)

if TYPE_CHECKING:
    from .server import IBSimulator

log = logging.getLogger("ccxt_ibkr.sim")

FARM_MESSAGES = [
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
]
#: Live and delayed tick ids: bid, ask, last, high, low, close, volume; sizes bid/ask/last.


class Session(MarketDataHandlers, OrderHandlers, AccountHandlers, StreamHandlers, ReferenceHandlers):
    """Serve one socket until it closes; never lets an exception reach other sessions."""

    def __init__(self, sim: IBSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(sim, reader, writer)
        self.handlers: dict[int, Callable[[Fields], None]] = {
            1: self.req_mkt_data, 2: self.cancel_mkt_data, 3: self.place_order, 4: self.cancel_order,
            5: self.req_open_orders, 6: self.req_account_updates, 7: self.req_executions, 8: self.req_ids,
            9: self.req_contract_details, 10: self.req_mkt_depth, 11: self.cancel_mkt_depth,
            15: self.req_auto_open_orders, 16: self.req_all_open_orders, 17: self.req_managed_accts,
            20: self.req_historical_data, 25: self.cancel_historical_data, 49: self.req_current_time,
            58: self.req_global_cancel, 59: self.req_market_data_type, 61: self.req_positions,
            62: self.req_account_summary, 63: self.cancel_account_summary, 64: self.cancel_positions,
            76: self.req_account_updates_multi, 77: self.cancel_account_updates_multi,
            50: self.req_real_time_bars, 51: self.cancel_real_time_bars, 87: self.req_head_timestamp,
            99: self.req_completed_orders,
            # Reference data and requests a paper account answers with TWS's error.
            12: self.req_news_bulletins, 13: self.ignore, 14: self.ignore, 18: self.request_fa,
            19: self.replace_fa, 21: self.exercise_options, 22: self.req_scanner_subscription,
            23: self.cancel_scanner_subscription, 24: self.req_scanner_parameters,
            54: self.calc_implied_volatility, 55: self.calc_option_price, 56: self.ignore, 57: self.ignore,
            65: self.verify_request, 66: self.verify_request, 72: self.verify_and_auth_request,
            73: self.verify_and_auth_request, 67: self.query_display_groups, 68: self.subscribe_to_group_events,
            69: self.update_display_group, 70: self.unsubscribe_from_group_events,
            78: self.req_sec_def_opt_params, 79: self.req_soft_dollar_tiers, 80: self.req_family_codes,
            81: self.req_matching_symbols, 82: self.req_mkt_depth_exchanges, 83: self.req_smart_components,
            84: self.req_news_article, 85: self.req_news_providers, 86: self.req_historical_news,
            89: self.ignore, 90: self.ignore, 91: self.req_market_rule, 100: self.req_wsh_meta_data,
            101: self.ignore, 102: self.req_wsh_event_data, 103: self.ignore, 104: self.req_user_info,
            # Streams: PnL, multi-account positions, tick by tick, tick history.
            74: self.req_positions_multi, 75: self.cancel_positions_multi, 88: self.req_histogram_data,
            92: self.req_pnl, 93: self.cancel_pnl, 94: self.req_pnl_single, 95: self.cancel_pnl_single,
            96: self.req_historical_ticks, 97: self.req_tick_by_tick, 98: self.cancel_tick_by_tick,
        }


    # -- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.sim.handshake_timeout
        try:
            lo, hi, _options = await asyncio.wait_for(read_greeting(self.reader), self.sim.handshake_timeout)
            version = negotiate(lo, hi)
            if version is None:
                log.warning("%s: no common version with client range %s..%s", self.peer, lo, hi)
                return
            self.version = version
            when = dt.datetime.fromtimestamp(self.sim.clock.now(), dt.timezone.utc)
            self.writer.write(encode_fields([version, f"{when:%Y%m%d %H:%M:%S} UTC"]))
            while not self.closed:
                if self.ready:
                    payload = await read_frame(self.reader)
                else:
                    left = max(0.0, deadline - loop.time())
                    payload = await asyncio.wait_for(read_frame(self.reader, HANDSHAKE_MAX_FRAME), left)
                fields = split_payload(payload)
                if not fields:
                    raise ProtocolError("empty message")
                self.sim.stats_messages_in += 1
                self.dispatch(fields)
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            log.info("%s (client %s) disconnected", self.peer, self.client_id)
        except asyncio.TimeoutError:
            log.warning("%s: no startApi within %.1f s, closing", self.peer, self.sim.handshake_timeout)
        except ProtocolError as exc:
            log.warning("%s (client %s) sent garbage, closing: %s", self.peer, self.client_id, exc)
        except Exception:  # noqa: BLE001 - one bad session must not take the server down
            log.exception("%s (client %s) session failed", self.peer, self.client_id)
        finally:
            self.close()
            self.sim.session_closed(self)

    def dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except ValueError as exc:
            raise ProtocolError(f"bad message id {fields[0]!r}") from exc
        if not self.ready and msg_id != 71:
            raise ProtocolError(f"message {msg_id} before startApi")
        if self.ready and self.sim.faults.count_message(self.client_id or 0, "in"):
            log.info("fault: dropping client %s on incoming message", self.client_id)
            self.abort()
            return
        if msg_id == 71:
            self.start_api(Fields(fields[1:]))
            return
        handler = self.handlers.get(msg_id)
        if handler is None:
            log.debug("client %s: ignoring message %s", self.client_id, msg_id)
            return
        reader = Fields(fields[1:])
        try:
            handler(reader)
        except ProtocolError:
            raise
        except Exception:
            log.exception("client %s: handler for %s failed", self.client_id, msg_id)
            self.error(-1, 320, "Server error when reading an API client request.")

    def start_api(self, f: Fields) -> None:
        if self.ready:
            return
        f.int()  # version
        client_id = f.int()
        if client_id in self.sim.faults.busy_client_ids or self.sim.client_in_use(client_id):
            self.error(-1, 326, "Unable to connect as the client id is already in use. Retry with a unique client id.")
            self.close()
            return
        self.client_id = client_id
        self.ready = True
        self.sim.session_ready(self)
        self.send([15, 1, self.account])
        self.send([9, 1, self.sim.engine.next_valid_id(client_id)])
        for code, text in FARM_MESSAGES:
            self.error(-1, code, text)
        if self.sim.faults.outage:
            self.error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")


    # -- connection-level requests ------------------------------------------------------------
    def req_ids(self, f: Fields) -> None:
        self.send([9, 1, self.sim.engine.next_valid_id(self.client_id or 0)])

    def req_managed_accts(self, f: Fields) -> None:
        self.send([15, 1, self.account])

    def req_current_time(self, f: Fields) -> None:
        self.send([49, 1, int(self.sim.clock.now())])

    def req_market_data_type(self, f: Fields) -> None:
        f.int()
        self.md_type = f.int(1)
