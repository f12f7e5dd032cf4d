"""The wire to Capital.com: one ``httpx.AsyncClient``, the session, the limiter, the error mapping.

Why a separate layer: a ccxt bot must never see Capital's session mechanics. This module logs in
lazily, sends ``CST`` / ``X-SECURITY-TOKEN`` on every call, logs in again before the ten-minute
inactivity expiry (at ``refresh_after`` seconds of idleness, 9 minutes by default) and once more
when the broker still answers 401. It paces every request through the shared
:func:`normalization.runtime.pacing.capital_pacer` so the bot never causes a 429 itself, and turns
every non-2xx answer into the ccxt exception :mod:`normalization.errors` assigns to the HTTP status
and ``errorCode``.

What it never does:

* repeat a write blindly. A read that hit an expired session is re-sent after the re-login; a
  POST/PUT/DELETE that got 401 is re-sent only if the caller's ``verify`` coroutine proves it was
  not applied (Capital authenticates before it books anything, and the exchange layer checks the
  books to be sure);
* re-send after a transport failure that may have happened after the request left the process
  (read timeout, dropped connection): that is :class:`SentButUnknown`, resolved by the caller from
  confirms and positions. Only failures that prove nothing was sent (:class:`RequestNotSent`:
  connect errors, pool timeouts) are safe to retry;
* put a secret anywhere a user can read it: the API key, password, CST and security token never
  appear in log records, exception messages or ``repr``.

Time is injectable (``clock``, ``sleep``) so tests drive the session expiry and the limiter on the
simulator's clock instead of sleeping. Connection health is reported, not decided, here: a transport
failure calls ``on_lost`` (the exchange's connection supervisor), and an optional ``gate`` is asked
before a request is sent.

Two hooks let the exchange run bookkeeping that must not delay a request (journal writes after a deal
settled) while the broker works: ``on_wire`` runs once the next request's bytes are written, and
``on_idle`` once no request is in flight any more.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt
import httpx

from normalization.errors import capital_exception
from normalization.runtime.pacing import Pacer, capital_pacer
from normalization.runtime.redaction import register_secret_headers, register_secrets
from normalization.runtime.retry import RequestNotSent
from normalization.runtime.singleflight import RecentAnswers

__all__ = [
    "API_PREFIX",
    "DEMO_HOST",
    "LIVE_HOST",
    "CapitalSettings",
    "CapitalTransport",
    "SentButUnknown",
    "SessionInfo",
]

log = logging.getLogger("ccxt_capital.transport")

LIVE_HOST = "https://api-capital.backend-capital.com"
DEMO_HOST = "https://demo-api-capital.backend-capital.com"
API_PREFIX = "/api/v1"

#: Capital ends a session after 10 minutes without a request; log in again a minute before.
SESSION_TIMEOUT = 600.0
DEFAULT_REFRESH_AFTER = 540.0

#: Transport failures that prove the request never left this process.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

Verify = Callable[[], Awaitable[bool]]


def _why_unsent(error: BaseException) -> str:
    """The error's class name and, for a certificate that did not verify, OpenSSL's reason: a user
    behind a TLS-inspecting proxy must learn it is the certificate, not the network. (The rest of the
    error's text stays out: it may quote the request.)"""
    cause: BaseException | None = error
    for _ in range(8):  # the chain is httpx -> httpcore -> ssl; bounded in case it loops
        if cause is None:
            break
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"{type(error).__name__}: TLS certificate verify failed: {cause.verify_message}"
        cause = cause.__cause__ or cause.__context__
    return type(error).__name__


class SentButUnknown(ccxt.RequestTimeout):
    """The request may have reached the broker but no answer came back; never re-send it blindly.

    ``timed_out`` tells a slow answer (the connection may be fine) from a dropped connection.
    """

    timed_out = False


@dataclass(frozen=True)
class SessionInfo:
    """What the login told us that is not a secret: which account, which currency."""

    account_id: str
    currency: str
    client_id: str | None
    accounts: tuple[dict[str, Any], ...]
    body: dict[str, Any]


#: Header names whose values are secrets (compared lower-case).
SECRET_HEADERS = ("cst", "x-security-token", "x-cap-api-key")
# httpcore's DEBUG trace prints raw request and response headers, and hpack (HTTP/2) each header it
# codes: their values are redacted in every logger of the HTTP stack (normalization.runtime.redaction).
register_secret_headers(*SECRET_HEADERS)


try:  # 3-4x faster than the standard library on 1000-bar pages; optional
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads


def _dumps(body: Any) -> bytes:
    """A request body exactly as httpx encodes ``json=`` (compact, UTF-8, NaN and infinities refused)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = _loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict):
        code = body.get("errorCode")
        return str(code) if code is not None else None
    return None


#: What the client adds to every request (httpx's own defaults, with JSON as what we accept).
_HEADERS = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive",
            "User-Agent": "ccxt-brokers capitalcom"}
_HEADER_FIELDS = tuple(_HEADERS.items())


def _h2_available() -> bool:
    """Whether httpx can speak HTTP/2 here (it needs the optional ``h2`` package)."""
    return importlib.util.find_spec("h2") is not None


@functools.lru_cache(maxsize=64)
def _url(text: str) -> httpx.URL:
    """A parsed URL (immutable, so one may serve many requests); parsing costs ~12 us, a hit nothing."""
    return httpx.URL(text)


def _routes_to(client: httpx.AsyncClient, url: str) -> httpx.AsyncBaseTransport | None:
    """The transport ``client`` sends ``url`` through: its connection pool, or the proxy's that the
    environment mounts for this URL.

    httpx decides this in a private method; if it is ever gone, the answer is "unknown" (None) and every
    request goes through ``client.send``.
    """
    choose = getattr(client, "_transport_for_url", None)
    try:
        return choose(httpx.URL(url)) if choose is not None else None
    except Exception:  # pragma: no cover - depends on the httpx version
        log.debug("httpx's transport choice is not readable; requests go through client.send", exc_info=True)
        return None


def _option(options: Mapping[str, Any], key: str) -> Any:
    """An option as ccxt's ``safe_value`` reads it: None and "" count as unset."""
    value = options.get(key)
    return None if value is None or value == "" else value


@dataclass(frozen=True)
class CapitalSettings:
    """How a transport is configured, typed and frozen: read once from the exchange's ``options`` (which
    stay what users set, ccxt-style) by :meth:`from_options`, so the transport never looks in the dict.

    The defaults are a bare transport's (tests build one directly); ``from_options`` applies the
    exchange's defaults, which are the same except the clock (the exchange's is epoch seconds).
    """

    #: Seconds per request (ccxt's ``timeout`` is in milliseconds).
    timeout: float = 10.0
    #: The client-side limiter (``options['pacing']``); off only when the caller paces itself.
    pacing: bool = True
    #: The demo host's limits apply (the exchange is not live).
    demo: bool = True
    #: Seconds of idleness after which the session is renewed (``options['sessionRefreshAfter']``).
    refresh_after: float = DEFAULT_REFRESH_AFTER
    #: The account to switch to after login (``options['accountId']``); None keeps the login's.
    account_id: str | None = None
    #: ``options['http2']``: None = HTTP/2 towards https hosts when the h2 package is installed.
    http2: bool | None = None
    #: How long a 429 is waited out before a read (``options['rateLimitWait']``) or a deal
    #: (``options['orderTimeout']``) sees it.
    rate_limit_wait: float = 10.0
    deal_wait: float = 10.0
    #: Session idleness and 429 waits run on this clock and sleep (``options['clock']`` / ``['sleep']``).
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    #: The limiter's clock: the one its sleep moves (None: ``clock``). A frozen test clock with real
    #: sleeps would make it wait forever.
    pacer_clock: Callable[[], float] | None = None
    #: ``options['httpTransport']``: an httpx transport to send through (tests: a MockTransport).
    http_transport: httpx.AsyncBaseTransport | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None, *, timeout_ms: float = 10_000.0,
                     demo: bool = True) -> CapitalSettings:
        """Build from an exchange's ``options`` (camelCase, as ccxt options are), its ``timeout`` in
        milliseconds and whether it trades on the demo host."""
        options = options or {}
        clock, sleep = _option(options, "clock"), _option(options, "sleep")
        injected = callable(sleep)  # a simulated clock: the limiter runs on it too
        pacing = _option(options, "pacing")
        refresh, account = _option(options, "sessionRefreshAfter"), _option(options, "accountId")
        rate_wait, deal_wait = _option(options, "rateLimitWait"), _option(options, "orderTimeout")
        return cls(
            timeout=max(timeout_ms, 1) / 1000,
            pacing=True if pacing is None else bool(pacing),
            demo=demo,
            refresh_after=DEFAULT_REFRESH_AFTER if refresh is None else float(refresh),
            account_id=None if account is None else str(account),
            http2=_option(options, "http2"),
            rate_limit_wait=10.0 if rate_wait is None else float(rate_wait),
            deal_wait=10.0 if deal_wait is None else float(deal_wait),
            clock=clock if callable(clock) else time.time,
            sleep=sleep if injected else asyncio.sleep,
            pacer_clock=(clock if callable(clock) else time.time) if injected else time.monotonic,
            http_transport=_option(options, "httpTransport"),
        )


@dataclass(eq=False)
class SharedSession:
    """One Capital.com session (tokens, idle time, account) per host, API key and login in the process.

    A sync and an async exchange from one config, or two bots, then log in once and use one session,
    as Capital sees them: one client. Logins are single-flighted across them (``logins``).
    """

    tokens: tuple[str, str] | None = None
    last_used: float | None = None
    info: SessionInfo | None = None
    logins: RecentAnswers[None] = field(default_factory=lambda: RecentAnswers(0.0))


class CapitalTransport:
    """Authenticated, paced JSON requests to ``<host>/api/v1``.

    ``credentials`` are read through a callable at login time so that a user who changes
    ``exchange.apiKey`` after construction is honoured and the transport keeps no copy.
    """

    def __init__(
        self,
        host: str,
        credentials: Callable[[], tuple[str | None, str | None, str | None]],
        settings: CapitalSettings | None = None,
        *,
        exchange_id: str = "capitalcom",
        pacer: Pacer | None = None,
        shared_session: SharedSession | None = None,
        gate: Callable[[], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        on_login: Callable[[], None] | None = None,
    ) -> None:
        settings = settings or CapitalSettings()
        self.settings = settings
        self._state = shared_session or SharedSession()
        self._state_shared = shared_session is not None
        self.host = host.rstrip("/")
        if self.host.endswith(API_PREFIX):
            self.host = self.host[: -len(API_PREFIX)]
        self.exchange_id = exchange_id
        # Read on every request: plain attributes, not a look-up through ``settings``.
        self.timeout = settings.timeout
        self.clock = settings.clock
        self.sleep = settings.sleep
        self.refresh_after = settings.refresh_after
        self.account_id = settings.account_id
        # The caller passes the process-wide pacer of this API key (the broker counts per key, not per
        # exchange object); tests on a simulated clock get their own.
        self.pacer: Pacer | None = (
            (pacer or capital_pacer(clock=settings.pacer_clock or settings.clock, sleep=settings.sleep,
                                    demo=settings.demo))
            if settings.pacing else None
        )
        #: How long a 429 is waited out (seconds) before it reaches the bot: a refusal for the rate proves
        #: nothing was applied, so even a deal is sent again, until ``deal_wait`` has passed.
        self.rate_limit_wait = settings.rate_limit_wait
        self.deal_wait = settings.deal_wait
        self._gate = gate
        self._on_lost = on_lost
        self._on_login = on_login
        self._credentials = credentials
        self._http_transport = settings.http_transport
        http2 = settings.http2
        self.http2 = _h2_available() and self.host.startswith("https://") if http2 is None else bool(http2)
        self._client: httpx.AsyncClient | None = None
        #: The transport the client routes our URL to, when requests may go straight to it (``_exchange``).
        self._direct: httpx.AsyncBaseTransport | None = None
        self._timeouts: dict[str, float | None] = {}
        #: The last header sets built for requests with and without a body, with what each was built from.
        self._headers: dict[bool, tuple[tuple[tuple[str, str], ...], httpx.Headers]] = {}
        self._login_lock: asyncio.Lock | None = None
        #: Work to run as soon as a request is on the wire (see ``_send``); taken once, then cleared.
        self.on_wire: Callable[[], None] | None = None
        #: Work to run when the last request in flight has finished; taken once, then cleared.
        self.on_idle: Callable[[], None] | None = None
        #: Requests sent and not answered (or failed) yet.
        self.in_flight = 0
        #: Counters for tests and diagnostics (no secrets).
        self.stats = {"requests": 0, "logins": 0, "relogins_on_401": 0, "proactive_relogins": 0}

    # The session lives in ``_state``, shared with the other transports of the same login when sharing.
    @property
    def _tokens(self) -> tuple[str, str] | None:
        return self._state.tokens

    @_tokens.setter
    def _tokens(self, value: tuple[str, str] | None) -> None:
        self._state.tokens = value

    @property
    def _last_used(self) -> float | None:
        return self._state.last_used

    @_last_used.setter
    def _last_used(self, value: float | None) -> None:
        self._state.last_used = value

    @property
    def session(self) -> SessionInfo | None:
        return self._state.info

    @session.setter
    def session(self, value: SessionInfo | None) -> None:
        self._state.info = value

    def __repr__(self) -> str:
        state = "logged in" if self._tokens else "logged out"
        return f"CapitalTransport({self.host + API_PREFIX!r}, {state})"

    @property
    def api_url(self) -> str:
        return self.host + API_PREFIX

    @property
    def logged_in(self) -> bool:
        return self._tokens is not None

    # ------------------------------------------------------------------ the client

    def client(self) -> httpx.AsyncClient:
        """The one ``httpx.AsyncClient``; created on first use, on the loop that runs the exchange.

        It owns the connection pool (its transport) and the cookie jar. Requests reach the pool through
        :meth:`_exchange`, prepared by :meth:`_prepare`; see there for why not through ``client.request``.
        """
        if self._client is None or self._client.is_closed:
            timeout = httpx.Timeout(self.timeout)
            self._client = httpx.AsyncClient(
                base_url=self.api_url,
                timeout=timeout,
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=60.0),
                headers=_HEADERS,
                transport=self._http_transport,
                http2=self.http2,
            )
            self._timeouts = timeout.as_dict()
            self._direct = _routes_to(self._client, self.api_url)
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if not self._state_shared:  # a shared session stays with the other users of this login
            self._tokens = None
        if client is not None and not client.is_closed:
            await client.aclose()

    def forget_session(self) -> None:
        """Drop the tokens (the next request logs in); used when the broker says they are dead."""
        self._tokens = None

    # ------------------------------------------------------------------ session

    def _lock(self) -> asyncio.Lock:
        if self._login_lock is None:
            self._login_lock = asyncio.Lock()
        return self._login_lock

    def _idle(self) -> float:
        return 0.0 if self._last_used is None else self.clock() - self._last_used

    async def ensure_session(self) -> None:
        """Log in if there is no session or it has been idle long enough to be near its expiry."""
        if self._tokens is not None and self._idle() < self.refresh_after:
            return
        async with self._lock():
            if self._tokens is not None and self._idle() < self.refresh_after:
                return
            if self._tokens is not None:
                self.stats["proactive_relogins"] += 1
                log.debug("%s: session idle %.0fs, logging in again before it expires", self.exchange_id, self._idle())
            await self._login_once()

    async def _login_once(self) -> None:
        """Log in, or join the login another exchange object sharing this session has under way."""
        await self._state.logins.get("login", self._login)

    async def _login(self) -> None:
        api_key, identifier, password = self._credentials()
        register_secrets(api_key, password)
        missing = [name for name, value in (("apiKey", api_key), ("login", identifier), ("password", password))
                   if not value]
        if missing:
            raise ccxt.AuthenticationError(f"{self.exchange_id} requires {', '.join(missing)} in its config")
        self._tokens = None
        body = {"identifier": identifier, "password": password, "encryptedPassword": False}
        for attempt in range(3):
            response = await self._send("POST", "/session", json_body=body,
                                        headers={"X-CAP-API-KEY": str(api_key)}, kind="session")
            if response.status_code != 429 or attempt == 2:
                break
            # Another client logged in with this API key within the second: logging in books nothing,
            # so waiting out the 1-per-second window and trying again is safe.
            await self.sleep(1.0)
        if response.status_code >= 400:
            raise self._error(response, "POST", "/session")
        cst, token = response.headers.get("CST"), response.headers.get("X-SECURITY-TOKEN")
        if not cst or not token:
            raise ccxt.BadResponse(f"{self.exchange_id} POST /session answered without session tokens")
        register_secrets(cst, token)
        self._tokens = (cst, token)
        self._last_used = self.clock()
        self.stats["logins"] += 1
        if self._on_login is not None:
            self._on_login()
        data = self._json(response, "POST", "/session")
        accounts = tuple(a for a in data.get("accounts") or [] if isinstance(a, dict))
        self.session = SessionInfo(
            account_id=str(data.get("currentAccountId") or ""),
            currency=str(data.get("currencyIsoCode") or ""),
            client_id=data.get("clientId"),
            accounts=accounts,
            body=data,
        )
        log.debug("%s: logged in (account %s)", self.exchange_id, self.session.account_id)
        wanted = self.account_id
        if wanted and wanted != self.session.account_id:
            switch = await self._send("PUT", "/session", json_body={"accountId": wanted}, kind="write")
            if switch.status_code >= 400:
                raise self._error(switch, "PUT", "/session")
            chosen = next((a for a in accounts if str(a.get("accountId")) == wanted), {})
            self.session = SessionInfo(wanted, str(chosen.get("currency") or self.session.currency),
                                       self.session.client_id, accounts, data)

    # ------------------------------------------------------------------ requests

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        kind: str = "read",
    ) -> httpx.Response:
        """One paced HTTP exchange; transport failures become ccxt network errors."""
        if self.pacer is not None:
            if kind == "session":
                await self.pacer.acquire(session=True)
            elif kind == "deal":
                await self.pacer.acquire(deal=True)
            else:
                await self.pacer.acquire()
        all_headers = dict(headers) if headers else {}
        if self._tokens is not None and kind != "session":
            all_headers["CST"], all_headers["X-SECURITY-TOKEN"] = self._tokens
            self._last_used = self.clock()
        self.stats["requests"] += 1
        client = self.client()
        request = self._prepare(client, method, path, params, json_body, all_headers)
        written = self.on_wire is None
        if not written:
            # Work is waiting for a request to ride on: run it once this one is on the wire, while the broker
            # works on it, not before the send (where the event loop would run it at httpx's first await).
            extensions = request.extensions  # httpcore's request shares this dict

            async def trace(event: str, info: dict[str, Any]) -> None:
                nonlocal written
                if not written and event.endswith("send_request_body.complete"):
                    written = True
                    # Done: the six events of the answer need no callback, and httpcore would await each the
                    # moment the answer is in (it looks the extension up anew for every event).
                    extensions.pop("trace", None)
                    self._run_hook("on_wire")

            request.extensions["trace"] = trace
        self.in_flight += 1
        try:
            response = await self._exchange(client, request)
        except _UNSENT as error:
            raise RequestNotSent(f"{self.exchange_id} {method} {path}: not sent ({_why_unsent(error)})") from None
        except httpx.TimeoutException as error:
            if kind in ("deal", "write"):
                unknown = SentButUnknown(
                    f"{self.exchange_id} {method} {path}: no answer within {self.timeout:g}s "
                    f"({type(error).__name__}); it may have been applied"
                )
                unknown.timed_out = True
                raise unknown from None
            raise ccxt.RequestTimeout(
                f"{self.exchange_id} {method} {path}: timed out ({type(error).__name__})") from None
        except httpx.TransportError as error:
            if kind in ("deal", "write"):
                raise SentButUnknown(
                    f"{self.exchange_id} {method} {path}: connection lost ({type(error).__name__}); "
                    "it may have been applied"
                ) from None
            raise ccxt.NetworkError(f"{self.exchange_id} {method} {path}: {type(error).__name__}") from None
        finally:
            self.in_flight -= 1
            if not written:  # failed (or cancelled) before it was written: the work must still run
                written = True
                self._run_hook("on_wire")
            if not self.in_flight and self.on_idle is not None:
                self._run_hook("on_idle")
        log.debug("%s %s %s -> %s", self.exchange_id, method, path, response.status_code)
        return response

    def _prepare(self, client: httpx.AsyncClient, method: str, path: str, params: Mapping[str, Any] | None,
                 json_body: Any, headers: dict[str, str]) -> httpx.Request:
        """The request ``client.request`` would send, built without its generic merging.

        ``client.build_request`` parses and joins the base URL anew, merges three header sets and
        re-encodes them on every call: ~100 us a request here, and every deal is two requests (the POST,
        then its confirm), on the path where a bot waits. Our requests all share one base URL and one
        header set: URLs without a query are parsed once per path (the hot ones, POST /positions and
        friends, stay in a small LRU cache) and the header set is built once per session. What the client
        would add is added the same way: its default headers, its cookies, its timeouts.
        """
        url = httpx.URL(self.api_url + path, params=params) if params else _url(self.api_url + path)
        with_body = json_body is not None
        key = tuple(headers.items())
        cached = self._headers.get(with_body)
        if cached is None or cached[0] != key:
            fields = [*_HEADER_FIELDS, *key]
            if with_body:
                fields.append(("Content-Type", "application/json"))
            cached = self._headers[with_body] = (key, httpx.Headers(fields))
        content = _dumps(json_body) if with_body else None
        request = httpx.Request(method, url, headers=cached[1], content=content, extensions={"timeout": self._timeouts})
        if client.cookies:
            client.cookies.set_cookie_header(request)
        return request

    async def _exchange(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        """Send a prepared request and read its answer whole.

        Straight to the transport the client routes this URL to (its connection pool, or a proxy's from
        the environment): beyond that choice, ``client.send`` only adds auth and redirect machinery,
        which Capital's API needs neither of, and cookie handling, done here (~70 us a request). Through
        ``client.send`` if httpx could not say which transport it routes to.
        """
        pool = self._direct
        if pool is None:
            return await client.send(request)
        response = await pool.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        if "set-cookie" in response.headers:
            client.cookies.extract_cookies(response)
        return response

    def _run_hook(self, name: str) -> None:
        work = getattr(self, name)
        setattr(self, name, None)
        if work is not None:
            try:
                work()
            except Exception:  # never let the exchange's bookkeeping break the request it rides on
                log.warning("%s: %s work failed", self.exchange_id, name, exc_info=True)

    def _error(self, response: httpx.Response, method: str, path: str) -> ccxt.BaseError:
        code = _error_code(response)
        if code is None and response.status_code >= 400:
            code = f"HTTP {response.status_code}"
        return capital_exception(response.status_code, code, exchange_id=self.exchange_id, context=f"{method} {path}")

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        if not response.content:
            return {}
        try:
            return _loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise ccxt.BadResponse(f"{self.exchange_id} {method} {path}: the answer is not JSON") from None

    async def relogin(self) -> None:
        """Log in afresh (the connection supervisor's ``connect`` after a lost connection)."""
        async with self._lock():
            self._tokens = None
            await self._login_once()

    def _lost(self, error: BaseException) -> None:
        if self._on_lost is not None:
            self._on_lost(f"{type(error).__name__}: {error}")

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        kind: str | None = None,
        verify: Verify | None = None,
        gated: bool = True,
    ) -> Any:
        """An authenticated JSON request; returns the decoded body.

        ``kind`` is ``read`` (GET; default), ``deal`` (POST /positions, POST /workingorders: the
        deal limiter applies) or ``write`` (other mutations). A read that meets 401 or a lost
        connection is repeated once; a write that meets 401 is repeated only if ``verify()``
        returns True after the re-login (proof that it was not applied); without ``verify`` the
        401 is raised as ``AuthenticationError``.
        """
        method = method.upper()
        if kind is None:
            kind = "read" if method == "GET" else "write"
        read = kind == "read"
        if gated and self._gate is not None:
            self._gate()  # fail fast, before anything is sent, while the connection is being re-established
        try:
            return await self._request(method, path, params, body, kind, read, verify)
        except (RequestNotSent, SentButUnknown) as error:
            if not getattr(error, "timed_out", False):
                self._lost(error)
            raise
        except ccxt.RequestTimeout:
            raise  # a slow answer is not a broken connection
        except ccxt.NetworkError as error:
            if not isinstance(error, (ccxt.RateLimitExceeded, ccxt.ExchangeNotAvailable, ccxt.DDoSProtection)):
                self._lost(error)
            raise

    async def _request(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any, kind: str,
                       read: bool, verify: Verify | None) -> Any:
        if self._tokens is None or self._idle() >= self.refresh_after:  # ensure_session's test, without its call
            await self.ensure_session()
        relogged = False
        retried_transport = False
        busy: tuple[float, float] | None = None  # deadlines of waiting out 429s: injected clock, monotonic
        pause = 0.1
        while True:
            sent_with = self._tokens
            try:
                response = await self._send(method, path, params=params, json_body=body, kind=kind)
            except RequestNotSent:
                if read and not retried_transport:
                    retried_transport = True
                    continue
                raise
            except ccxt.NetworkError as error:
                if read and not retried_transport and not isinstance(error, SentButUnknown):
                    retried_transport = True
                    continue
                raise
            status = response.status_code
            if status == 401 and not relogged:
                relogged = True
                self.stats["relogins_on_401"] += 1
                log.info("%s %s %s: session rejected (%s); logging in again", self.exchange_id, method, path,
                         _error_code(response))
                async with self._lock():
                    if self._tokens in (sent_with, None):  # else another user of the session logged in
                        await self._login_once()
                if read or (verify is not None and await verify()):
                    continue
                raise self._error(response, method, path)
            if status == 429:
                # Refused for the rate before it was looked at: nothing was booked or applied, so the same
                # request goes again once the window moved, deals included, until the wait is over
                # (on the injected clock or the monotonic one, whichever runs out first).
                wait = self.deal_wait if kind == "deal" else self.rate_limit_wait
                if busy is None:
                    busy = (self.clock() + wait, time.monotonic() + wait)
                if self.clock() + pause <= busy[0] and time.monotonic() + pause <= busy[1]:
                    self.stats["waited_429"] = self.stats.get("waited_429", 0) + 1
                    await self.sleep(pause)
                    pause = min(pause * 2, 1.0)
                    continue
            if status >= 400:
                raise self._error(response, method, path)
            return self._json(response, method, path)

    async def public(self, method: str, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """An unauthenticated request (``GET /time``); paced like any other."""
        response = await self._send(method.upper(), path, params=params, kind="read")
        if response.status_code >= 400:
            raise self._error(response, method.upper(), path)
        return self._json(response, method.upper(), path)

    async def ping(self) -> Any:
        """``GET /ping``: keeps the session alive without logging in again."""
        return await self.request("GET", "/ping")

    async def keep_alive(self) -> bool:
        """Ping if the session has been idle for ``refresh_after`` (logging in again first if it is near its
        expiry); True if a request was made."""
        if self.logged_in and self._idle() < self.refresh_after:
            return False
        await self.ensure_session()
        await self.ping()
        return True

    async def stream_tokens(self) -> tuple[str, str]:
        """The session's ``(cst, securityToken)`` for the streaming WebSocket (logging in if needed).

        Never logged or put in an error: they are the session's secrets like the API key.
        """
        await self.ensure_session()
        if self._tokens is None:
            raise ccxt.AuthenticationError(f"{self.exchange_id}: no session for streaming")
        return self._tokens
