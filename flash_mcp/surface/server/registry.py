"""One place that registers tools: titles, the four annotation hints, error translation, and what a tool's
resolver hands to its body."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from flash_mcp.core.errors import UserError

T = TypeVar("T")
READ = {"read_only": True, "destructive": False, "idempotent": True}  # the hints of a tool that only reads


def add_tool(
    server: MCPServer,
    fn: Callable[..., Any],
    *,
    title: str,
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool = False,
    ui: str | None = None,
) -> None:
    """Register `fn` with every hint set on purpose; `UserError`s reach the model as `ToolError`s. `ui`: the
    `ui://` app a host that renders MCP Apps shows beside the result."""
    annotations = ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )
    description = inspect.cleandoc(fn.__doc__ or "")
    meta = {"ui": {"resourceUri": ui}} if ui else None
    server.add_tool(translate_errors(fn), title=title, description=description, annotations=annotations, meta=meta)


def translate_errors(fn: Callable[..., Any], to: type[Exception] = ToolError) -> Callable[..., Any]:
    """Wrap `fn` so a `UserError` leaves it as `to` (a ToolError or ResourceError) with the same message."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except UserError as exc:
                raise to(str(exc)) from exc
            except OSError as exc:
                raise to(os_message(exc)) from exc

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise to(str(exc)) from exc
        except OSError as exc:
            raise to(os_message(exc)) from exc

    return wrapper


def os_message(exc: OSError) -> str:
    """A file-system failure the domain did not anticipate, short and naming the path (never a traceback)."""
    name = str(exc.filename or "")
    shown = name if len(name) <= 120 else name[:120] + "…"
    where = f" on {shown!r}" if shown else ""
    return f"{exc.strerror or type(exc).__name__}{where}; check the path, then try again"


def can_elicit(ctx: Context) -> bool:
    """Whether the client can put a question to the human (elicitation)."""
    capabilities = ctx.client_capabilities
    return capabilities is not None and capabilities.elicitation is not None


def client_info(ctx: Context) -> dict[str, Any]:
    """Which client asked, for the audit trail (name and version as the client reported them)."""
    try:
        info = ctx.session.client_params.client_info
        return {"name": info.name, "version": info.version}
    except AttributeError:
        return {}


class Handoff(Generic[T]):
    """What a tool's resolver prepared, for the body of the same call (the SDK runs them apart, keyed here by
    request id). A call whose resolver ends in an elicitation request (modern era) never reaches its body, so
    only the newest few are kept."""

    def __init__(self, kept: int = 64):
        self._by_request: dict[Any, T] = {}
        self._kept = kept

    def put(self, ctx: Context, value: T) -> None:
        self._by_request[ctx.request_id] = value
        while len(self._by_request) > self._kept:
            self._by_request.pop(next(iter(self._by_request)))

    def take(self, ctx: Context) -> T:
        return self._by_request.pop(ctx.request_id)
