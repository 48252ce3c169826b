"""Protocol behaviour in both eras: -32602 for unknown tools, prompts and missing prompt arguments, argument
errors that name the expected arguments, the tools/list budget, and SSE priming over streamable HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import httpx2
import jsonschema
import pytest
from mcp import Client, MCPError
from pydantic import BaseModel, Field

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from flash_mcp.surface.server.schemas import input_schema_for_agents, shallow_output_schema
from flash_mcp.transport import RETRY_MS, build_http_app
from tests.conftest import call_error

pytestmark = pytest.mark.anyio
TOKEN_BUDGET = 8_000


async def test_an_unknown_prompt_is_invalid_params_with_its_message(client: Client) -> None:
    with pytest.raises(MCPError) as raised:
        await client.get_prompt("no_such_prompt")
    assert raised.value.code == -32602
    assert "Unknown prompt: no_such_prompt" in raised.value.message and "review_run" in raised.value.message


async def test_a_missing_prompt_argument_is_invalid_params_naming_it(client: Client) -> None:
    with pytest.raises(MCPError) as raised:
        await client.get_prompt("review_run", {})
    assert raised.value.code == -32602 and "run_id" in raised.value.message


async def test_an_unknown_tool_is_a_protocol_error(client: Client) -> None:
    with pytest.raises(MCPError) as raised:
        await client.call_tool("no_such_tool", {})
    assert raised.value.code == -32602 and "Unknown tool: no_such_tool" in raised.value.message


async def test_a_wrong_argument_name_names_the_expected_arguments(client: Client) -> None:
    text = await call_error(client, "read_project_file", file="x.txt")
    assert "'file'" in text and "path (required)" in text and "offset" in text
    assert "pydantic" not in text and "http" not in text


async def test_a_badly_typed_argument_is_one_line_without_a_url(client: Client) -> None:
    text = await call_error(client, "read_project_file", path="x.txt", limit="lots")
    assert text.startswith("bad arguments for read_project_file: limit:")
    assert "path (required)" in text and "errors.pydantic.dev" not in text and "input_value" not in text


async def test_tools_list_fits_the_token_budget(client: Client) -> None:
    """Names, descriptions, input and output schemas as compact JSON, characters / 4."""
    tools = (await client.list_tools()).tools
    counted = [[t.name, t.description, t.input_schema, t.output_schema] for t in tools]
    tokens = len(json.dumps(counted, separators=(",", ":"))) // 4
    whole = len(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools])) // 4
    print(f"tools/list: {tokens} tokens counted (names, descriptions, schemas), {whole} as sent; budget {TOKEN_BUDGET}")
    assert tokens <= TOKEN_BUDGET


async def test_every_argument_is_typed_and_every_result_field_named(client: Client) -> None:
    """The Inspector's --strict check flags untyped argument schemas (`{}` or a bare description), like a row's
    `input`. Result fields are named, each open (`{}`) but for a closed set of values: the result shows its type."""
    typing_keys = {"type", "$ref", "anyOf", "oneOf", "enum", "const"}

    def untyped(schema: object, where: str) -> list[str]:
        if not isinstance(schema, dict):
            return []
        found = []
        for name, sub in (schema.get("properties") or {}).items():
            if not typing_keys & set(sub):
                found.append(f"{where}.{name}")
            found += untyped(sub, f"{where}.{name}")
        for name, sub in (schema.get("$defs") or {}).items():
            found += untyped(sub, f"{where}.$defs.{name}")
        found += untyped(schema.get("items"), f"{where}[]")
        return found

    for tool in (await client.list_tools()).tools:
        assert not untyped(tool.input_schema, tool.name), untyped(tool.input_schema, tool.name)
        fields = tool.output_schema["properties"]
        assert fields and all(sub == {} or set(sub) == {"enum"} for sub in fields.values()), (tool.name, fields)


def test_listed_schemas_keep_the_constraints_and_accept_every_result() -> None:
    """An optional null-default argument loses only its null branch; a required nullable one keeps it; results
    with nulls, nested records and enums validate against the listed output schema."""

    class Inner(BaseModel):
        n: int

    class Arguments(BaseModel):
        needed: str | None
        maybe: Annotated[int | None, Field(ge=1, description="N")] = None
        tags: list[str] = []

    class Result(BaseModel):
        state: Literal["done", "failed"]
        error: str | None = None
        inner: Inner | None = None

    listed = input_schema_for_agents(Arguments.model_json_schema())
    assert listed["properties"]["maybe"] == {"type": "integer", "minimum": 1, "description": "N"}
    assert "null" in json.dumps(listed["properties"]["needed"]) and listed["required"] == ["needed"]
    assert listed["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    output = shallow_output_schema(Result.model_json_schema())
    for result in (Result(state="done"), Result(state="failed", error="x", inner=Inner(n=1))):
        jsonschema.validate(result.model_dump(mode="json"), output)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"state": "running"}, output)


async def test_sse_streams_open_with_a_priming_event_and_retry(workspace: Path, isolated_home: Path) -> None:
    app = build_http_app(build_server(ServerSettings.create(workspace, home=isolated_home)), "127.0.0.1", None)
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as http:
            response = await http.post("/mcp", json=initialize, headers=headers)
    first_event = response.text.split("\n\n", 1)[0].splitlines()
    assert first_event[0].startswith("id: ") and "data: " in first_event and f"retry: {RETRY_MS}" in first_event
    assert '"result"' in response.text


async def test_health_applies_the_host_check(workspace: Path, isolated_home: Path) -> None:
    app = build_http_app(build_server(ServerSettings.create(workspace, home=isolated_home)), "127.0.0.1", None)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as http:
            assert (await http.get("/health")).status_code == 200
            assert (await http.get("/health", headers={"Host": "rebind.example"})).status_code == 421
            assert (await http.get("/health", headers={"Origin": "http://evil.example"})).status_code == 403


async def test_both_eras_give_the_same_list_changed_answer(workspace: Path, isolated_home: Path) -> None:
    answers = {}
    for mode in ("legacy", "auto"):  # auto probes server/discover and speaks 2026-07-28
        server = build_server(ServerSettings.create(workspace, home=isolated_home), tools_cache=False)
        async with Client(server, mode=mode) as connected:
            caps = connected.server_capabilities
            answers[connected.protocol_version >= "2026"] = (
                caps.tools.list_changed, caps.prompts.list_changed, caps.resources.list_changed,
                caps.resources.subscribe,
            )  # fmt: skip
    assert set(answers) == {False, True}, answers  # one legacy, one modern connection
    assert answers[False] == answers[True] == (False, False, False, True)


async def test_an_invalid_config_is_not_priced_and_no_launch_is_mentioned(client: Client) -> None:
    await client.call_tool("setup_project", {"directory": "p"})
    await client.call_tool("edit_config", {"config": "p/configs/rl.toml", "unset": ["model"]})
    error = await call_error(client, "estimate_cost", config="p/configs/rl.toml")
    assert "cannot be priced" in error and "launch" not in error, error
