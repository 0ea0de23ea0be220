"""The API gate: an ASGI middleware in front of every route.

Everything under ``/_sandbox/`` (admin routes, their docs) is answered to loopback clients only
(403 otherwise) and skips all of the following; so do ``/`` (what this server is) and ``/docs``,
``/redoc`` (redirects to the docs under the prefix), answered to anyone.

For each request, in this order: a ``traceId`` (body and ``X-Trace-Id`` header), the counter of its
operationId, latency, Bearer token (401 ``Invalid JWT``), the rate limit of the token's
(integration, location) (429 ``Too many requests`` with ``Retry-After``; from here on every
response carries the five ``X-RateLimit-*`` headers), ``Version`` header (400), the token's class
(live mode: an agency token on a location endpoint is 401 "This authClass type is not allowed ..."),
scopes (live mode: 401 "The token is not authorized for this scope."; strict spec mode: 403 naming the
scope), and then the fault draws (5xx / delay / dropped connection / applied then lost: see
``faults.py``). Only then does the route run. Requests without a (valid) token, such as
``POST /oauth/token``, carry no rate-limit headers.

An ``applied_lost`` fault runs the route with its answer held back, then loses it: a gateway 502/504,
a partial body, or the connection closed without a response. Closing without a response needs the
server's connection (``CONNECTION_SCOPE_KEY``, set by ``server.build_server``'s outermost wrapper);
where it is missing (an app served some other way) the answer is dropped mid-body instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.routing import Match, Route

from .errors import APIError, auth_class_error, scope_error
from .faults import FAULT_MESSAGES, FaultPlan, is_write
from .state import SandboxState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ADMIN_PREFIX = "/_sandbox"
#: Outside the prefix, answered to anyone and skipping everything else too (``front_door.py``).
FRONT_DOOR_PATHS = frozenset({"/", "/docs", "/redoc"})
TRACE_HEADER = "X-Trace-Id"
#: Scope key under which ``server.build_server`` passes the server's per-request cycle (its
#: ``transport`` and ``disconnected`` flag), to close a connection without any response.
CONNECTION_SCOPE_KEY = "ghl_sandbox.connection"


@dataclass(frozen=True)
class Operation:
    """Gate rules of one API operation."""

    operation_id: str
    scopes: tuple[str, ...]  # any one of them suffices; () = no scope needed
    auth: bool = True
    version: bool = True
    location: bool = True  # needs a Sub-Account (Location) token; False: agency-token routes and OAuth


def _headers(extra: dict[str, str], content_type: str | None = None) -> list[tuple[bytes, bytes]]:
    out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    if content_type:
        out.append((b"content-type", content_type.encode("latin-1")))
    return out


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    """Send a complete JSON response."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": _headers({**headers, "content-length": str(len(payload))}, "application/json")})
    await send({"type": "http.response.body", "body": payload})


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost`` (the only clients of the admin surface)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            if text[:7].lower() == "bearer ":
                return text[7:].strip()
            return None
    return None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value.decode("latin-1")
    return None


class ApiGate:
    """ASGI middleware applying auth, version, scopes, limits, faults and counting to API routes."""

    def __init__(self, app: ASGIApp, state: SandboxState, routes: list[Any], operations: dict[str, Operation]) -> None:
        self.app = app
        self.state = state
        self.routes = routes
        self.operations = operations

    def _operation(self, scope: Scope) -> Operation | None:
        for route in self.routes:
            if isinstance(route, Route):
                match, _ = route.matches(scope)
                if match is Match.FULL:
                    op_id = getattr(route, "operation_id", None) or route.name
                    return self.operations.get(op_id)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = str(uuid.uuid4())
        scope.setdefault("state", {})["trace_id"] = trace_id
        extra: dict[str, str] = {TRACE_HEADER: trace_id}
        if scope["path"].startswith(ADMIN_PREFIX):
            client = scope.get("client")
            host = client[0] if client else None
            if not is_loopback(host):
                message = f"The sandbox admin surface answers loopback clients only (request came from {host})"
                await send_json(send, 403, APIError(403, message).body(trace_id), extra)
                return
            await self.app(scope, receive, self._with_headers(send, extra))
            return
        if scope["path"] in FRONT_DOOR_PATHS:  # "/" says what this is; "/docs", "/redoc" redirect under the prefix
            await self.app(scope, receive, self._with_headers(send, extra))
            return
        if scope["path"] == "/contacts":  # HighLevel answers both /contacts and /contacts/
            scope["path"] = "/contacts/"
            scope["raw_path"] = b"/contacts/"
        st = self.state
        cfg = st.config
        op = self._operation(scope)
        st.counters.by_operation[op.operation_id if op else "unknown"] += 1
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000.0)
        if op is None:
            await self.app(scope, receive, self._with_headers(send, extra))
            return
        info = None
        try:
            if op.auth:
                try:
                    info = st.tokens.lookup(_bearer(scope))
                except APIError:
                    st.counters.status_401 += 1
                    raise
            if info is not None:
                decision = st.limiter.check((info.integration_id, info.location_id or info.company_id))
                extra.update(decision.headers)
                if not decision.allowed:
                    st.counters.status_429 += 1
                    raise APIError(429, "Too many requests")
                scope["state"]["token"] = info
            if op.version:
                version = _header(scope, b"version")
                if not version:
                    raise APIError(400, f"Version header was not found; send 'Version: {cfg.api_version}'")
                if version != cfg.api_version:
                    raise APIError(400, f"Version header {version!r} is invalid; send 'Version: {cfg.api_version}'")
            if info is not None and not cfg.strict_spec and op.location and info.location_id is None:
                st.counters.status_401 += 1
                raise auth_class_error()
            if info is not None and op.scopes and not info.scopes.intersection(op.scopes):
                if not cfg.strict_spec:
                    st.counters.status_401 += 1
                raise scope_error(cfg.strict_spec, op.scopes[0])
        except APIError as exc:
            await send_json(send, exc.status, exc.body(trace_id), extra)
            return
        plan = st.faults.plan(cfg, op.operation_id, is_write(scope.get("method", "GET"), op.operation_id))
        if plan.kind is not None:
            st.counters.faults += 1
            st.counters.faults_by_kind[plan.kind] += 1
            if plan.kind == "applied_lost":
                await self._apply_then_lose(scope, receive, send, extra, plan, trace_id, op.operation_id)
                return
            if plan.kind in FAULT_MESSAGES:
                status = int(plan.kind)
                await send_json(send, status, APIError(status, FAULT_MESSAGES[plan.kind]).body(trace_id), extra)
                return
            if plan.kind == "delay":
                await asyncio.sleep(cfg.fault_delay_ms / 1000.0)
            elif plan.kind == "drop":
                await self._drop(send, extra)
                return
        await self.app(scope, receive, self._with_headers(send, extra))

    async def _apply_then_lose(self, scope: Scope, receive: Receive, send: Send, extra: dict[str, str],
                               plan: FaultPlan, trace_id: str, operation_id: str) -> None:
        """Run the route to the end (the request is applied), then lose its answer (``plan.mode``)."""
        status: list[int] = []

        async def hold_back(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))

        await self.app(scope, receive, hold_back)
        counters = self.state.counters
        counters.lost_answers_by_mode[plan.mode or "drop"] += 1
        if status and 200 <= status[0] < 300:
            counters.applied_then_lost += 1
            counters.applied_then_lost_by_operation[operation_id] += 1
        if plan.mode in FAULT_MESSAGES:
            code = int(plan.mode)
            await send_json(send, code, APIError(code, FAULT_MESSAGES[plan.mode]).body(trace_id), extra)
        elif plan.mode == "close" and self._close_connection(scope):
            return
        else:
            await self._drop(send, extra)

    @staticmethod
    def _close_connection(scope: Scope) -> bool:
        """Close the client's connection without a response; False when the server's connection is
        not reachable (then the caller drops the answer mid-body instead)."""
        cycle = scope.get(CONNECTION_SCOPE_KEY)
        transport = getattr(cycle, "transport", None)
        if transport is None or not hasattr(cycle, "disconnected"):
            return False
        transport.close()
        cycle.disconnected = True  # the server then sends nothing more on it, and logs nothing
        return True

    @staticmethod
    async def _drop(send: Send, extra: dict[str, str]) -> None:
        """Announce a body, send a piece of it, then give up: the server closes the connection."""
        partial = b'{"contacts":[{"id":"'
        await send({"type": "http.response.start", "status": 200,
                    "headers": _headers({**extra, "content-length": "4096"}, "application/json")})
        await send({"type": "http.response.body", "body": partial, "more_body": True})
        # Returning with the body incomplete makes uvicorn close the connection.

    @staticmethod
    def _with_headers(send: Send, extra: dict[str, str]) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *_headers(extra)]
            await send(message)

        return wrapped
