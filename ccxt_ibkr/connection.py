"""The connection to TWS / IB Gateway and the live-trading gate, for one exchange object.

A mixin of ``IBTrader`` (as :mod:`ccxt_capital.connection` is of Capital's exchange), declared against
:class:`ConnectionHost`, the part of the exchange it relies on:

* **one connection per (host, port, clientId) per process**: IB knows a client by its clientId, so every
  exchange object of that clientId shares one transport on one home loop
  (:mod:`normalization.runtime.home`), and the last one to close it closes it;
* **the live gate** (:mod:`normalization.runtime.safety`) with IB's facts: a live port, or a live account
  (``U...``) among those TWS manages, needs the explicit opt-in; checked at construction, on every
  connect and before every order;
* **each object's on-connect work**: the journal opened on the connected account and hooked to IB's
  events (:mod:`ccxt_ibkr.journaling`), then the order sync that reconciles it; the sync runs again when
  IB says connectivity is back after an outage the socket survived.

The socket itself and every call into the client library are :mod:`ccxt_ibkr.transport`'s.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import ccxt
import ccxt.async_support

from normalization.runtime.home import SharedConnection, after_last_close, leave_connection, shared_connection
from normalization.runtime.safety import require_live_opt_in, resolve_live
from normalization.runtime.supervisor import EXECUTION, ConnectionSupervisor, ReconnectEvent

from .transport import IBSettings, IBTransport

__all__ = ["LIVE_PORT", "LIVE_PORTS", "PAPER_PORT", "ConnectionHost", "IBConnection"]

PAPER_PORT = 7497
LIVE_PORT = 7496
LIVE_PORTS = frozenset({7496, 4001})


class ConnectionHost(Protocol):
    """What the connection needs from the exchange beyond ccxt's ``Exchange`` (:mod:`ccxt_ibkr.journaling`
    and :mod:`ccxt_ibkr.orders` provide it)."""

    def _attach_journal(self, transport: IBTransport) -> None: ...
    def _detach_journal(self, transport: IBTransport) -> None: ...
    async def _sync_orders(self, *, executions: bool) -> None: ...


if TYPE_CHECKING:
    class _Base(ccxt.async_support.Exchange, ConnectionHost):
        pass
else:
    _Base = object


class IBConnection(_Base):
    """The shared transport, the live gate and the on-connect work; mixed into ``IBTrader``."""

    def _init_connection(self) -> None:
        """Once ccxt's constructor has read the options: the live switch, no connection yet (it opens on
        first use), and the live gate at once, so a live setting without the opt-in fails here."""
        self.live = resolve_live(self.id, self.options.get("live"))
        self._transport: IBTransport | None = None
        self._shared: SharedConnection | None = None  # the process-wide connection record (normalization.runtime.home)
        self._attached = False  # this object's on-connect work (journal, events, order sync) has run
        self._check_live()

    def _home_key(self) -> tuple[Any, ...]:
        """What IB knows a client by: one connection per (host, port, clientId) per process."""
        settings = self._settings()
        return ("ibkr", settings.host, settings.port, settings.client_id)

    def _home_loop(self, create: bool = True) -> asyncio.AbstractEventLoop | None:
        """The loop the shared connection lives on (every public coroutine runs there: ``hop_to_home``)."""
        shared = self._shared
        if shared is None:
            if not create:
                return None
            shared = self._shared = shared_connection(self._home_key(), self)
        return shared.loop

    def _check_live(self, accounts: list[str] | None = None) -> None:
        """The live gate (normalization.runtime.safety) with IB's facts: a live port -- the one in the
        options now, or the transport's -- and a live account (``U...``; paper accounts are ``D...``)
        among those TWS manages. Run at construction, on every connect and before every order."""
        facts = []
        ports = {self.options.get("port"), self._transport.port if self._transport is not None else None}
        for port in sorted(int(p) for p in ports if p is not None):
            if port in LIVE_PORTS:
                facts.append(f"port {port} is a live-trading port")
        if accounts is None and self._transport is not None and self._transport.connected:
            accounts = self._transport.managed_accounts()
        live_accounts = [a for a in accounts or [] if a and not a.upper().startswith("D")]
        if live_accounts:
            facts.append(f"TWS manages the live account(s) {', '.join(live_accounts)} (paper accounts are DU...)")
        require_live_opt_in(self.id, self.options.get("live"), facts)

    @property
    def transport(self) -> IBTransport:
        if self._transport is None:
            self._check_live()
            self._home_loop()
            self._transport = self._shared.get(self._new_transport)  # type: ignore[union-attr]
            self._transport.on_connected(self._after_connect)
            self._transport.supervisor.on_reconnected(self._heal)
        return self._transport

    def _settings(self) -> IBSettings:
        """The connection settings the options give now (the port: paper, or live once enabled)."""
        return IBSettings.from_options(self.options, default_port=LIVE_PORT if self.live else PAPER_PORT,
                                       exchange_id=self.id)

    def _new_transport(self) -> IBTransport:
        """The connection the first user opens; later users of the same clientId share it."""
        return IBTransport(self._settings())

    def ib_client_id(self) -> int | None:
        return self._transport.client_id if self._transport is not None else None

    async def connect(self) -> None:
        """Connect now instead of on first use (inside the exchange's event loop)."""
        self._check_live()
        await self.transport.connect()
        if not self._attached:
            await self._after_connect()

    async def _ready(self, kind: str = EXECUTION) -> IBTransport:
        """The connected transport, after the live gate and the supervisor's fail-fast gate for ``kind`` traffic."""
        self._check_live()
        await self.transport.ensure(kind)
        if not self._attached:
            # Another exchange object opened the shared connection: this one's on-connect work is still due.
            await self._after_connect()
        return self.transport

    @property
    def supervisor(self) -> ConnectionSupervisor:
        """The connection state machine (fail fast while down, reconnect, heal): see normalization.runtime."""
        return self.transport.supervisor

    async def _after_connect(self) -> None:
        transport = self.transport
        try:
            self._check_live(transport.managed_accounts())  # a paper port may still lead to a live account
        except ccxt.PermissionDenied:
            transport.disconnect()
            raise
        self._attached = True
        self._attach_journal(transport)
        await self._sync_orders(executions=False)

    async def _heal(self, event: ReconnectEvent) -> None:
        """IB said connectivity is back (1101/1102) with our socket up all along: orders may have filled
        meanwhile, so re-read orders and executions and reconcile. (After a reconnect the on-connect
        listener already did this as part of connecting.)"""
        if event.reason == "restored" and self.transport.connected:
            await self._sync_orders(executions=True)

    async def _leave_connection(self) -> None:
        """This object lets go of the shared connection, which closes with its last user."""
        transport, shared = self._transport, self._shared
        self._transport, self._shared, self._attached = None, None, False
        if transport is not None:
            transport.forget(self._after_connect, self._heal)
            self._detach_journal(transport)
        if shared is not None and leave_connection(shared, self):
            if transport is not None:
                await transport.close()
            after_last_close(shared)
