"""Streamable HTTP: explicit Host/Origin allow-lists (on /health too), an optional bearer token, GET /health, and
SSE streams that open with a priming event carrying `retry` (resumable from a bounded in-memory event store).
Stdio: requests still in flight when stdin closes are answered before the server exits (bounded: past the bound the
process exits without the replies still owed, whatever a tool's thread is doing)."""

from __future__ import annotations

import hmac
import ipaddress
import os
import sys
import threading
import uuid
from collections import OrderedDict

import anyio
from mcp.server import MCPServer
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCError, JSONRPCMessage, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from flash_mcp import __version__

MCP_PATH = "/mcp"
HEALTH_PATH = "/health"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
RETRY_MS = 2000  # the SSE `retry` a client waits before reconnecting to a dropped stream
EVENTS_KEPT = 2000  # the resumption window: the last N events over all streams
STDIO_DRAIN_S = 30.0  # how long a closed stdin waits for the replies still owed
STDIO_EXIT_GRACE_S = 2.0  # then how long the shutdown may take before the process exits anyway (nothing owed: drain_s)


class ConfigurationError(Exception):
    """The HTTP server refuses to start with these settings."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def security_settings(host: str) -> TransportSecuritySettings:
    """Host/Origin allow-lists, always explicit (the SDK fails open without them on 0.0.0.0)."""
    names = list(_LOOPBACK_NAMES) if is_loopback(host) else [host]
    names += _env_list("FLASH_MCP_ALLOWED_HOSTS")
    hosts = [f"{name}:*" for name in names] + names
    origins = [f"http://{name}:*" for name in names] + [f"https://{name}:*" for name in names]
    origins += _env_list("FLASH_MCP_ALLOWED_ORIGINS")
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def build_http_app(server: MCPServer, host: str, token: str | None) -> Starlette:
    """The ASGI app `flash-mcp serve --http` runs; refuses a non-loopback bind without a token."""
    if not is_loopback(host) and not token:
        raise ConfigurationError(
            f"refusing to serve on non-loopback host {host!r} without a bearer token: set FLASH_MCP_TOKEN"
        )

    security = security_settings(host)
    guard = TransportSecurityMiddleware(security)

    @server.custom_route(HEALTH_PATH, methods=["GET"])
    async def health(request: Request) -> Response:
        refused = await guard.validate_request(request)  # the same Host (421) / Origin (403) check as /mcp
        return refused or JSONResponse({"ok": True, "service": "flash-mcp", "version": __version__})

    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=security,
        host=host,
        event_store=BoundedEventStore(EVENTS_KEPT),
        retry_interval=RETRY_MS,
    )
    if token:
        app.add_middleware(BearerAuth, token=token)
    return app


class BearerAuth:
    """Require `Authorization: Bearer <token>` on every path but /health."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") != HEALTH_PATH and not self._authorized(scope):
            response = JSONResponse(
                {"error": "missing or wrong bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        supplied = dict(scope.get("headers") or []).get(b"authorization", b"")
        return hmac.compare_digest(supplied, self._expected)


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


class BoundedEventStore(EventStore):
    """SSE events kept in memory for `Last-Event-ID` resumption: the last `capacity` events, oldest dropped."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._events: OrderedDict[EventId, tuple[StreamId, JSONRPCMessage | None]] = OrderedDict()

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = uuid.uuid4().hex
        self._events[event_id] = (stream_id, message)
        while len(self._events) > self._capacity:
            self._events.popitem(last=False)
        return event_id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        if last_event_id not in self._events:
            return None
        stream_id = self._events[last_event_id][0]
        found = False
        for event_id, (stream, message) in list(self._events.items()):
            if found and stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
            found = found or event_id == last_event_id
        return stream_id


def run_stdio(server: MCPServer, drain_s: float = STDIO_DRAIN_S) -> None:
    """Serve `server` on stdin/stdout; at end of input, answer what is in flight (up to `drain_s`), then exit."""
    anyio.run(_serve_stdio, server, drain_s)


async def _serve_stdio(server: MCPServer, drain_s: float) -> None:
    from mcp.server.stdio import stdio_server

    lowlevel = server._lowlevel_server  # MCPServer.run_stdio_async, with the streams wrapped
    async with stdio_server() as (read_stream, write_stream):
        owed = _OwedReplies(drain_s)
        await lowlevel.run(
            owed.reading(read_stream), owed.writing(write_stream), lowlevel.create_initialization_options()
        )


class _OwedReplies:
    """The ids of requests read and not yet answered; end of input is passed on once none is left (or time is up)."""

    def __init__(self, drain_s: float) -> None:
        self.drain_s = drain_s
        self.ids: set = set()
        self.changed = anyio.Event()

    def reading(self, stream):
        return _DrainingReader(stream, self)

    def writing(self, stream):
        return _AnsweringWriter(stream, self)

    def settle(self, request_id) -> None:
        self.ids.discard(request_id)
        self.changed.set()
        self.changed = anyio.Event()

    async def drain(self) -> None:
        with anyio.move_on_after(self.drain_s):
            while self.ids:
                await self.changed.wait()
        if self.ids:
            print(f"flash-mcp: stdin closed; {len(self.ids)} request(s) still running after {self.drain_s:g} s: "
                  "exiting without their replies", file=sys.stderr, flush=True)  # fmt: skip
        # A tool still running in a thread (one whose request was cancelled, too) would hold the shutdown, and the
        # process, until it ends: past this the process exits anyway.
        exit_anyway = threading.Timer(STDIO_EXIT_GRACE_S if self.ids else self.drain_s, os._exit, args=(0,))
        exit_anyway.daemon = True
        exit_anyway.start()


class _WrappedStream:
    """One of the SDK's stdio streams, wrapped: closing and the context manager pass through."""

    def __init__(self, inner, owed: _OwedReplies) -> None:
        self.inner, self.owed = inner, owed

    async def aclose(self) -> None:
        await self.inner.aclose()

    def close(self) -> None:
        self.inner.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class _DrainingReader(_WrappedStream):
    @property
    def last_context(self):
        return getattr(self.inner, "last_context", None)

    async def receive(self):
        try:
            item = await self.inner.receive()
        except anyio.EndOfStream:
            await self.owed.drain()
            raise
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, JSONRPCRequest):
            self.owed.ids.add(message.id)
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            self.owed.settle((message.params or {}).get("requestId"))  # a cancelled request gets no reply
        return item

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class _AnsweringWriter(_WrappedStream):
    async def send(self, item) -> None:
        await self.inner.send(item)
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            self.owed.settle(message.id)
