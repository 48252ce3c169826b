"""The MCP server class: protocol errors as the spec says them, argument errors an agent can act on, compact
schemas in `tools/list`, and result text written for the agent (see `render.py`)."""

from __future__ import annotations

from typing import Any

from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, GetPromptResult, InputRequiredResult, TextContent
from mcp.types import Tool as MCPTool
from mcp_types.jsonrpc import INVALID_PARAMS
from pydantic import ValidationError

from flash_mcp.surface import render

_DROPPED_OUTPUT_KEYS = frozenset({"title", "description", "examples", "default"})


class FlashServer(MCPServer):
    """`MCPServer` with the spec's -32602 for unknown tools, prompts and missing prompt arguments (the SDK
    answers code 0 or -32603), one argument-error format for every tool, and agent-facing result text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.said = render.SaidOnce()

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context | None = None
    ) -> GetPromptResult | InputRequiredResult:
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
        if isinstance(result, CallToolResult) and not result.is_error and result.structured_content is not None:
            text = render.result_text(name, result.structured_content, self.said.scope(context))
            result = result.model_copy(update={"content": [TextContent(type="text", text=text)]})
        return result

    async def list_tools(self) -> list[MCPTool]:
        tools = await super().list_tools()
        return [
            tool.model_copy(
                update={
                    "input_schema": compact_schema(tool.input_schema, keep_descriptions=True),
                    "output_schema": compact_schema(tool.output_schema, keep_descriptions=False)
                    if tool.output_schema
                    else None,
                }
            )
            for tool in tools
        ]


def compact_schema(schema: Any, *, keep_descriptions: bool) -> Any:
    """Drop what validation never reads: generated `title`s everywhere; descriptions, examples and defaults too
    in output schemas (the tool's description says what comes back). Property *names* are never touched."""
    if isinstance(schema, list):
        return [compact_schema(item, keep_descriptions=keep_descriptions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    compact: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
            compact[key] = {
                name: compact_schema(sub, keep_descriptions=keep_descriptions) for name, sub in value.items()
            }
        elif (key == "title" and isinstance(value, str)) or (not keep_descriptions and key in _DROPPED_OUTPUT_KEYS):
            continue
        else:
            compact[key] = compact_schema(value, keep_descriptions=keep_descriptions)
    return compact


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
