"""The MCP surface as clients see it: tools, resources and prompts in both protocol eras."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from flash_mcp.surface.server.tools_cache import PACKAGED as SHIPPED
from flash_mcp.surface.server.tools_cache import ToolsCache, fingerprint, shipped_body
from tests.conftest import call

pytestmark = pytest.mark.anyio
SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "tools.json"


async def _tools(client: Client) -> dict[str, dict]:
    listed = (await client.list_tools()).tools
    return {tool.name: tool.model_dump(by_alias=True, exclude_none=True, mode="json") for tool in listed}


async def test_tools_list_matches_the_reviewed_snapshot(client: Client) -> None:
    """Any change to tool names, schemas or annotations shows up as a diff of tools.json.

    Regenerate with UPDATE_SNAPSHOTS=1 and review the diff.
    """
    tools = await _tools(client)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(tools, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert tools == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


async def test_the_shipped_tools_list_is_current_and_answers_a_first_start(
    workspace: Path, isolated_home: Path
) -> None:
    """The package ships `tools/list` (`surface/server/tools-list.json`) for the first start after an install: it
    must be exactly what both planes build from these sources. Regenerate with UPDATE_SNAPSHOTS=1."""
    built = {}
    for plane in ("local", "flash"):
        settings = ServerSettings.create(workspace, home=isolated_home / plane, plane=plane)
        async with Client(build_server(settings, tools_cache=False)) as client:
            built[plane] = [tool.model_dump(by_alias=True, mode="json") for tool in (await client.list_tools()).tools]
    assert built["local"] == built["flash"], "the planes list different tools: ship one list per plane"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SHIPPED.write_text(json.dumps(shipped_body(built["local"]), separators=(",", ":")) + "\n", encoding="utf-8")
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert shipped["keys"] == [fingerprint("local"), fingerprint("flash")], (
        "flash_mcp's sources changed since surface/server/tools-list.json was written: "
        "UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/surface/test_surface.py"
    )
    assert shipped["tools"] == built["local"]
    server = build_server(ServerSettings.create(workspace, home=isolated_home / "fresh"))
    async with Client(server) as client:
        first = [tool.model_dump(by_alias=True, mode="json") for tool in (await client.list_tools()).tools]
    assert first == built["local"] and not server.surface_loaded, "a first start answers from the shipped list"


async def test_a_shipped_list_of_other_sources_is_ignored(workspace: Path, isolated_home: Path, tmp_path: Path) -> None:
    stale = {"keys": ["0" * 32, "1" * 32], "tools": [{"name": "stale", "inputSchema": {"type": "object"}}]}
    (tmp_path / "tools-list.json").write_text(json.dumps(stale), encoding="utf-8")
    cache = ToolsCache(isolated_home, "local", packaged=tmp_path / "tools-list.json")
    assert cache.load() is None
    stale["keys"][1] = fingerprint("local")
    (tmp_path / "tools-list.json").write_text(json.dumps(stale), encoding="utf-8")
    assert [tool.name for tool in cache.load() or []] == ["stale"], "the key decides, nothing else"


async def test_tools_list_fits_in_24000_characters_of_compact_json(client: Client) -> None:
    """The whole `tools/list` result, output schemas included, as the agent's context receives it."""
    sent = json.dumps(list((await _tools(client)).values()), separators=(",", ":"))
    assert len(sent) <= 24_000, len(sent)


async def test_every_tool_has_a_title_the_hints_a_client_needs_and_an_output_schema(client: Client) -> None:
    """Hints whose absence reads as the cautious side are sent only when they are not: readOnlyHint and
    idempotentHint when true. destructiveHint and openWorldHint are always explicit on a tool that writes."""
    for name, tool in (await _tools(client)).items():
        assert tool.get("title"), name
        annotations = tool.get("annotations", {})
        assert "title" not in annotations and "openWorldHint" in annotations, (name, annotations)
        read_only = annotations.get("readOnlyHint", False)
        assert read_only or "destructiveHint" in annotations, (name, annotations)
        assert not read_only or not {"destructiveHint", "idempotentHint"} & set(annotations), (name, annotations)
        assert False not in (annotations.get("readOnlyHint"), annotations.get("idempotentHint")), name
        assert tool.get("outputSchema", {}).get("type") == "object", name
        assert tool["description"] and tool["description"] == " ".join(tool["description"].split()), name


async def test_read_only_tools_are_exactly_the_reads(client: Client) -> None:
    tools = await _tools(client)
    read_only = {name for name, tool in tools.items() if tool["annotations"].get("readOnlyHint")}
    assert {"read_project_file", "list_project_files"} <= read_only
    assert not {"setup_project", "write_project_file"} & read_only


async def test_results_carry_structured_content_and_a_text_view(client: Client) -> None:
    result = await client.call_tool("list_project_files", {})
    assert not result.is_error
    assert result.structured_content["directory"] == "."
    text = result.content[0].text
    assert "directory: ." in text and not text.startswith("{"), "the text view is written for the agent, not JSON"
    for entry in result.structured_content["entries"]:
        assert entry["path"] in text


async def test_guide_resource_serves_the_repository_playbook(client: Client) -> None:
    result = await client.read_resource("flash://guide")
    text = result.contents[0].text
    assert text == (Path(__file__).parents[2] / "TRAINING.md").read_text(encoding="utf-8")
    assert "flash train --doc" not in text


async def test_start_project_prompt_fills_its_arguments(client: Client) -> None:
    prompts = {prompt.name: prompt for prompt in (await client.list_prompts()).prompts}
    arguments = {arg.name: arg.required for arg in prompts["start_project"].arguments}
    assert arguments == {"idea": True, "directory": False}
    rendered = await client.get_prompt("start_project", {"idea": "grade SQL queries"})
    text = rendered.messages[0].content.text
    assert "grade SQL queries" in text
    assert 'project folder "."' in text and "$" not in text


async def test_a_tool_error_reaches_the_model_with_its_advice(client: Client) -> None:
    result = await client.call_tool("read_project_file", {"path": "missing.txt"})
    assert result.is_error
    assert "list_project_files" in result.content[0].text


async def test_setup_project_then_list_shows_the_scaffold(client: Client) -> None:
    await call(client, "setup_project", directory="demo")
    listing = await call(client, "list_project_files", directory="demo")
    paths = {entry["path"] for entry in listing["entries"]}
    assert {"demo/environment.py", "demo/configs/rl.toml", "demo/dataset/train.jsonl"} <= paths


async def test_a_resolvers_handoff_reaches_its_own_calls_body_and_keeps_only_the_newest() -> None:
    from types import SimpleNamespace

    from flash_mcp.surface.server.registry import Handoff

    handoff: Handoff[str] = Handoff(kept=2)
    calls = [SimpleNamespace(request_id=n) for n in range(3)]
    for call_ctx in calls:
        handoff.put(call_ctx, f"launch {call_ctx.request_id}")  # type: ignore[arg-type]
    assert handoff.take(calls[2]) == "launch 2" and handoff.take(calls[1]) == "launch 1"  # type: ignore[arg-type]
    with pytest.raises(KeyError):  # the oldest was dropped (its call ended in an elicitation request)
        handoff.take(calls[0])  # type: ignore[arg-type]
