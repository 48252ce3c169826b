"""Streamable HTTP: explicit Host/Origin allow-lists, an optional bearer token, and GET /health."""

from __future__ import annotations

import hmac
import ipaddress
import os

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from flash_mcp import __version__

MCP_PATH = "/mcp"
HEALTH_PATH = "/health"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


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

    @server.custom_route(HEALTH_PATH, methods=["GET"])
    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True, "service": "flash-mcp", "version": __version__})

    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH, transport_security=security_settings(host), host=host
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
