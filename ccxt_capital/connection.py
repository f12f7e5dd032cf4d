"""How the Capital exchange reaches the broker: the transport it builds, the live gate, the connection gate.

A mixin of the exchange class, as :class:`ccxt_capital.parsing.CapitalParsing` is. It owns no HTTP: every
request goes through :class:`ccxt_capital.transport.CapitalTransport` (the one caller of httpx). What it
adds on top is the exchange's side of a request: which host (and whether that host is live, which needs
the double opt-in), the process-wide session and pacer shared by every face on one API key, and
:meth:`CapitalConnection._call` -- the connection supervisor's "usable now?" and the circuit breaker of the
request's kind (market data or execution) around each call, so a failing price feed never blocks a cancel.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from normalization.runtime.breaker import Breakers
from normalization.runtime.pacing import Pacer, capital_pacer, shared_pacer
from normalization.runtime.safety import is_loopback, require_live_opt_in
from normalization.runtime.shared import fingerprint as _fingerprint
from normalization.runtime.shared import process_wide
from normalization.runtime.supervisor import ConnectionSupervisor

from .transport import DEMO_HOST, CapitalSettings, CapitalTransport, SharedSession

__all__ = ["MARKET_DATA_PATHS", "CapitalConnection"]

#: The supervisor epoch (connection generation) the current request was sent in; see ``_on_lost``.
_SENT_IN: contextvars.ContextVar[int | None] = contextvars.ContextVar("capitalcom_sent_in", default=None)
#: Paths whose failures belong to the market-data circuit breaker; everything else is execution,
#: so a failing price feed never blocks a cancel (and a broken order route never silences quotes).
MARKET_DATA_PATHS = ("/prices", "/markets", "/marketnavigation", "/clientsentiment", "/time", "/ping")


def _demo_or_loopback(url: str) -> bool:
    """True for Capital's demo host and for loopback (a simulator); everything else may be live."""
    parsed = urlsplit(url if "//" in url else f"//{url}")
    if is_loopback(parsed.hostname):
        return True
    demo = urlsplit(DEMO_HOST)
    return parsed.scheme == demo.scheme and parsed.hostname == demo.hostname and parsed.port in (None, 443)


if TYPE_CHECKING:
    from ccxt.async_support import Exchange as _Exchange

    class _Host(_Exchange):
        """What the connection needs of the exchange it is mixed into (set up by its ``__init__``)."""

        supervisor: ConnectionSupervisor
        breakers: Breakers
        _transport: CapitalTransport | None
        _live: bool

else:
    _Host = object


class CapitalConnection(_Host):
    """The transport, the live gate and the gated request; mixed in before ``ccxt.async_support.Exchange``."""

    def _init_connection(self) -> None:
        """No transport yet: it is created on first use, inside a coroutine (see _wire)."""
        self._transport: CapitalTransport | None = None
        #: Transports replaced by a host switch (set_sandbox_mode), closed with the exchange.
        self._retired: list[CapitalTransport] = []
        self._live = False

    async def _close_transports(self) -> None:
        transports = [t for t in [self._transport, *self._retired] if t is not None]
        self._transport, self._retired = None, []
        for transport in transports:
            await transport.close()

    def _clock(self) -> Callable[[], float]:
        clock = self.safe_value(self.options, "clock")
        return clock if callable(clock) else time.time

    def _sleeper(self) -> Callable[[float], Awaitable[Any]]:
        sleep = self.safe_value(self.options, "sleep")
        return sleep if callable(sleep) else asyncio.sleep

    def _now_ms(self) -> int:
        return int(self._clock()() * 1000)

    def _host(self) -> str:
        return self.safe_string(self.options, "baseUrl") or self.urls["api"]["rest"]

    def _check_live(self) -> None:
        """The live gate (normalization.runtime.safety) with Capital's facts: any host other than the demo
        host or loopback -- whether options['baseUrl'], ``urls``, the CLI's --base-url or the environment
        named it -- is live. Checked for the host now configured and the one the transport talks to, on
        every connect (transport creation, re-login) and before every order."""
        hosts = {self._host()}
        if self._transport is not None:
            hosts.add(self._transport.host)
        facts = [f"{host} is not the demo host ({DEMO_HOST}) nor loopback" for host in sorted(hosts)
                 if not _demo_or_loopback(host)]
        require_live_opt_in(self.id, self.safe_value(self.options, "live"), facts)

    def _wire(self) -> CapitalTransport:
        """The transport, created on first use inside a coroutine (so on the loop that runs us)."""
        if self._transport is None:
            self._check_live()
            self._transport = CapitalTransport(
                self._host(),
                lambda: (self.apiKey, self.login, self.password),
                CapitalSettings.from_options(self.options, timeout_ms=self.timeout, demo=not self._live),
                exchange_id=self.id,
                pacer=self._shared_pacer(),
                shared_session=self._shared_session(),
                on_lost=self._on_lost,
                on_login=self._logged_in,
            )
        return self._transport

    def _shared_session(self) -> SharedSession | None:
        """The process-wide session of this host, API key, login and account (see _shared_pacer for when)."""
        if callable(self.safe_value(self.options, "sleep")) or not self.apiKey:
            return None
        key = ("capitalcom-session", self._host(),
               _fingerprint(self.apiKey, self.login, self.safe_string(self.options, "accountId")))
        return process_wide(key, SharedSession)

    def _shared_pacer(self) -> Pacer | None:
        """The process-wide pacer of this host and API key: Capital counts requests per key, so every
        instance using it (a sync and an async face, two bots) draws from one budget. None (a private
        pacer) when the clock is injected, as in tests on the simulator's clock."""
        if callable(self.safe_value(self.options, "sleep")) or not self.apiKey:
            return None
        key = ("capitalcom", self._host(), _fingerprint(self.apiKey))
        return shared_pacer(key, lambda: capital_pacer(demo=not self._live))

    def _logged_in(self) -> None:
        """A first (or lazy) login makes the connection usable; the reconnect loop reports its own."""
        if self.supervisor.state == "idle":
            self.supervisor.connected("logged in")

    async def _reconnect(self) -> None:
        self._check_live()
        await self._wire().relogin()

    async def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                    kind: str | None = None, verify: Callable[[], Awaitable[bool]] | None = None,
                    gated: bool = True) -> Any:
        """One request through the connection gate, the circuit breaker of its kind and the transport.

        ``gated=False`` for the reads that resolve a deal in flight: they must reach the broker even
        while a reconnect is pending or a breaker is open.
        """
        wire = self._wire()
        epoch = self.supervisor.epoch
        token = _SENT_IN.set(epoch)
        try:
            if not gated:
                return await wire.request(method, path, params=params, body=body, kind=kind, verify=verify,
                                          gated=False)
            self.supervisor.ensure_usable()  # fail fast while reconnecting; never counted by a breaker
            breaker = self.breakers.market_data if path.startswith(MARKET_DATA_PATHS) else self.breakers.execution
            breaker.before_call()
            try:
                result = await wire.request(method, path, params=params, body=body, kind=kind, verify=verify,
                                            gated=False)
            except BaseException as exc:
                # A request that outlived its connection (it fails after the reconnect) says nothing about
                # the new one: no verdict for the breaker.
                breaker.after_call(exc if self.supervisor.epoch == epoch else asyncio.CancelledError())
                raise
            breaker.after_call(None)
            return result
        finally:
            _SENT_IN.reset(token)

    def _on_lost(self, reason: str) -> None:
        """The transport saw the link fail; ignored if the request was sent before the latest reconnect."""
        self.supervisor.lost(reason, epoch=_SENT_IN.get())

    def _account_currency(self) -> str | None:
        transport = self._transport
        if transport is not None and transport.session is not None and transport.session.currency:
            return transport.session.currency
        return self.safe_string(self.options, "accountCurrency")

