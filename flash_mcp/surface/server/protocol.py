"""The MCP server class: protocol errors as the spec says them, argument errors an agent can act on, tools
listed compactly (see `schemas.py`), result text written for the agent (see `render.py`), and a surface
registered on first use (see `tools_cache.py`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mcp.server.mcpserver.server as sdk_server
from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts import PromptManager
from mcp.server.mcpserver.resources import ResourceManager
from mcp.server.mcpserver.tools import ToolManager
from mcp.types import CallToolResult, GetPromptResult, InputRequiredResult, TextContent
from mcp.types import Prompt as MCPPrompt
from mcp.types import Resource as MCPResource
from mcp.types import ResourceTemplate as MCPResourceTemplate
from mcp.types import Tool as MCPTool
from mcp_types.jsonrpc import INVALID_PARAMS
from pydantic import ValidationError

from flash_mcp.surface.server import render, render_tools, schemas
from flash_mcp.surface.server.tools_cache import ToolsCache

assert render_tools  # registers the per-tool renderers


class FlashServer(MCPServer):
    """`MCPServer` with the spec's -32602 for unknown tools, prompts and missing prompt arguments (the SDK
    answers code 0 or -32603), one argument-error format for every tool, and agent-facing result text.

    `surface` registers the tools, resources and prompts; it runs on the first request that needs them, so a
    start that only lists tools answers from `tools_cache` without importing them."""

    def __init__(
        self,
        *args: Any,
        surface: Callable[[FlashServer], None],
        tools_cache: ToolsCache | None = None,
        **kwargs: Any,
    ) -> None:
        with _sdk_logging_skipped_if_configured():
            super().__init__(*args, **kwargs)
        self.said = render.SaidOnce()
        self._surface, self._surface_lock, self._tools_cache = surface, threading.RLock(), tools_cache
        self._tools_list_saved = False

    @property
    def surface_loaded(self) -> bool:
        return self._surface is None

    def ensure_surface(self) -> None:
        """Register the surface once, before the first request that reads it. A registration that fails leaves
        nothing half-registered: every request fails the same way until the server is fixed."""
        with self._surface_lock:
            if self._surface is None:
                return
            try:
                self._surface(self)
            except BaseException:
                self._empty_managers()
                raise
            self._surface = None

    def _empty_managers(self) -> None:
        self._tool_manager = ToolManager(warn_on_duplicate_tools=self.settings.warn_on_duplicate_tools)
        self._resource_manager = ResourceManager(warn_on_duplicate_resources=self.settings.warn_on_duplicate_resources)
        self._prompt_manager = PromptManager(warn_on_duplicate_prompts=self.settings.warn_on_duplicate_prompts)

    async def list_tools(self) -> list[MCPTool]:
        cached = self._tools_cache.load() if self._tools_cache and not self.surface_loaded else None
        if cached is not None:
            self._tools_list_saved = True
            return cached
        self.ensure_surface()
        tools = [schemas.tool_for_agents(tool) for tool in await super().list_tools()]
        if self._tools_cache and not self._tools_list_saved:
            self._tools_cache.save(tools)
        self._tools_cache, self._tools_list_saved = None, True  # later lists come from the registered tools
        return tools

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        self.ensure_surface()
        return super()._tool_input_schema(name)

    async def list_resources(self) -> list[MCPResource]:
        self.ensure_surface()
        return await super().list_resources()

    async def list_resource_templates(self) -> list[MCPResourceTemplate]:
        self.ensure_surface()
        return await super().list_resource_templates()

    async def read_resource(self, uri: Any, context: Context | None = None) -> Any:  # the SDK's types
        self.ensure_surface()
        return await super().read_resource(uri, context)

    async def list_prompts(self) -> list[MCPPrompt]:
        self.ensure_surface()
        return await super().list_prompts()

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context | None = None
    ) -> GetPromptResult | InputRequiredResult:
        self.ensure_surface()
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            known = ", ".join(sorted(p.name for p in self._prompt_manager.list_prompts()))
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name}; prompts: {known}")
        required = [arg.name for arg in prompt.arguments or [] if arg.required]
        missing = [arg for arg in required if not (arguments or {}).get(arg)]
        if missing:
            raise MCPError(
                code=INVALID_PARAMS, message=f"Prompt {name} is missing required arguments: {', '.join(missing)}"
            )
        return await super().get_prompt(name, arguments, context)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult | InputRequiredResult:
        self.ensure_surface()
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}", data={"tool": name})
        check_argument_names(name, tool.parameters, arguments)
        try:
            result = await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(argument_error(name, tool.parameters, exc.__cause__)) from None
            raise
        if _json_text_view(result):
            text = render.result_text(name, result.structured_content, self.said.scope(context))
            result = result.model_copy(update={"content": [TextContent(type="text", text=text)]})
        return result


@contextmanager
def _sdk_logging_skipped_if_configured() -> Iterator[None]:
    """`MCPServer.__init__` imports rich (~50 ms, a tenth of a cold start) for a handler it hands to
    `logging.basicConfig`, which does nothing once the root logger has handlers (the CLI sets them first).
    Skip that call only then: the logging set up is the same, the server starts sooner."""
    configure = getattr(sdk_server, "configure_logging", None)
    if configure is None or not logging.getLogger().handlers:
        yield
        return
    sdk_server.configure_logging = lambda *_args, **_kwargs: None
    try:
        yield
    finally:
        sdk_server.configure_logging = configure


def _json_text_view(result: object) -> bool:
    """A result whose only content is the SDK's JSON dump of its structured content (not an image, not text the
    tool wrote itself): that text view is replaced by the agent-facing rendering."""
    return (
        isinstance(result, CallToolResult)
        and not result.is_error
        and result.structured_content is not None
        and len(result.content) == 1
        and isinstance(result.content[0], TextContent)
    )


def expected_arguments(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    names = [f"{name} (required)" if name in required else name for name in schema.get("properties", {})]
    return ", ".join(names) or "none"


def check_argument_names(tool: str, schema: dict[str, Any], arguments: dict[str, Any]) -> None:
    """Refuse argument names the tool does not take (the SDK would drop them silently) and name the right ones."""
    unknown = sorted(set(arguments) - set(schema.get("properties", {})))
    if unknown:
        raise ToolError(
            f"{tool} takes no argument {', '.join(map(repr, unknown))}; its arguments: {expected_arguments(schema)}"
        )


def argument_error(tool: str, schema: dict[str, Any], error: ValidationError) -> str:
    """pydantic's error as one line per argument, without input echoes or documentation URLs."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        problems.append("missing" if item["type"] == "missing" else item["msg"])
        problems[-1] = f"{where}: {problems[-1]}"
    return f"bad arguments for {tool}: {'; '.join(problems)}. Its arguments: {expected_arguments(schema)}"
