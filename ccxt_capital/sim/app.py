"""The HTTP face: routes under ``/api/v1``, auth, rate limits, faults and the error shape.

Each route is a plain synchronous function ``(ctx) -> body`` run under the broker lock. The async
wrapper reads the body, applies faults (which may sleep or drop the connection) and only then
takes the lock, so no await ever happens while the books are locked. Anything a client can get
wrong (JSON, headers, types, unknown paths) ends as a 4xx ``{"errorCode": ...}`` before a book is
touched.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .broker import Broker
from .errors import TOO_MANY_REQUESTS, ApiError, bad_request
from .inputs import Ctx, Route
from .limits import DEALS, DEALS_PER_HOUR, SESSION_REQUESTS
from .routes import DEAL_ROUTES, PUBLIC, ROUTES
from .streaming import Streamer

PREFIX = "/api/v1"
log = logging.getLogger("ccxt_capital.sim")
BROKER_KEY: web.AppKey[Broker] = web.AppKey("broker", Broker)


def run_route(broker: Broker, route: Route, ctx: Ctx) -> tuple[int, Any, dict[str, str]]:
    """Authenticate, rate-limit and run one route under the broker lock; never raises."""
    with broker.lock:
        try:
            ctx.now = broker.sync()
            if route not in PUBLIC:
                session = broker.sessions.authenticate(ctx.headers.get("CST"),
                                                       ctx.headers.get("X-SECURITY-TOKEN"), ctx.now)
                ctx.session = session
                # Every documented authenticated answer, refusals included, carries the session's
                # tokens (valid for ten minutes after their last use); some clients refresh from them.
                ctx.out_headers.update({"CST": session.cst, "X-SECURITY-TOKEN": session.token})
                checks = [("session", session.cst, SESSION_REQUESTS)]
                if route in DEAL_ROUTES:
                    checks += [("deal", session.api_key, DEALS), ("deal-hour", session.api_key, DEALS_PER_HOUR)]
                if not broker.limiter.admit(checks):
                    raise ApiError(429, TOO_MANY_REQUESTS)
            if isinstance(ctx.body, BadBody):
                raise bad_request("error.malformed.request")
            return 200, route(ctx), ctx.out_headers
        except ApiError as error:
            return error.status, error.body(), ctx.out_headers if error.tokens else {}
        except Exception:  # a bug, not a client error: say so without leaking internals
            log.exception("simulator route %s %s failed", ctx.method, ctx.path)
            return 500, {"errorCode": "error.internal"}, {}


class BadBody:
    """Marker for a body that is not JSON; refused only after authentication, as the broker does."""


try:  # orjson is several times faster on big price lists; the stdlib is the fallback
    import orjson

    def _dumps(body: Any) -> bytes:
        return orjson.dumps(body)
except ImportError:  # pragma: no cover - depends on the environment
    def _dumps(body: Any) -> bytes:
        return json.dumps(body, separators=(",", ":")).encode()


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=_dumps(body), content_type="application/json", headers=headers)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def make_handler(route: Route) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.StreamResponse:
        broker = request.app[BROKER_KEY]
        path = request.path[len(PREFIX):]
        if len(path) > 1:
            path = path.rstrip("/")
        raw = await request.read() if request.body_exists else b""
        fired = broker.faults.take(request.method, path)
        kinds = {rule.kind: rule for rule in fired}
        if "delay" in kinds:
            await asyncio.sleep(kinds["delay"].delay)
        if "drop_before" in kinds:
            _abort(request)
            raise asyncio.CancelledError
        if "status" in kinds:
            rule = kinds["status"]
            return _json(rule.status, {"errorCode": rule.code})
        if "expire_session" in kinds:
            broker.expire_sessions()
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                body = BadBody()
        ctx = Ctx(broker, request.method, path, dict(request.match_info), dict(request.query),
                  request.headers, body, 0.0, secure=request.secure)
        status, payload, headers = run_route(broker, route, ctx)
        if "drop_after" in kinds:
            _abort(request)
            raise asyncio.CancelledError
        return _json(status, payload, headers)

    return handler


@web.middleware
async def error_middleware(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """Unknown paths and methods answer in the broker's JSON error shape, never HTML."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return _json(405, {"errorCode": "error.method.not-allowed"})
    except web.HTTPNotFound:
        return _json(404, {"errorCode": "error.not-found.path"})
    except web.HTTPException as error:
        return _json(error.status, {"errorCode": "error.invalid.request"})


def build_app(broker: Broker, streamer: Streamer | None = None) -> web.Application:
    """The aiohttp application: REST routes under /api/v1 and, if given, the WebSocket /connect."""
    app = web.Application(middlewares=[error_middleware], client_max_size=1024 * 1024)
    app[BROKER_KEY] = broker
    for method, path, route in ROUTES:
        handler = make_handler(route)
        app.router.add_route(method, PREFIX + path, handler)
        # A trailing slash names the same resource: the official collection's own example asks
        # ``/clientsentiment/?marketIds=...``, and public clients build ``/marketnavigation/`` and
        # ``/watchlists/`` when no id is given.
        app.router.add_route(method, PREFIX + path + "/", handler)
    if streamer is not None:
        app.router.add_get("/connect", streamer.handle)
    return app

