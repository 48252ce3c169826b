"""MCP Apps through a real client: the proposal card and the run view are listed, bound to their tools, served
as MCP App HTML with no outside assets, and the card approves nothing by itself."""

from __future__ import annotations

import pytest
from mcp import Client

from flash_mcp.surface.apps import PROPOSAL_UI, RUN_UI

pytestmark = pytest.mark.anyio


async def test_the_tools_name_their_apps_and_the_apps_are_readable(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert (tools["launch_training"].meta or {})["ui"]["resourceUri"] == PROPOSAL_UI
    assert (tools["get_run"].meta or {})["ui"]["resourceUri"] == RUN_UI
    assert all(
        "ui" not in (tool.meta or {}) for name, tool in tools.items() if name not in ("launch_training", "get_run")
    )

    card = (await client.read_resource(PROPOSAL_UI)).contents[0]
    assert card.mime_type == "text/html;profile=mcp-app"
    assert "ui/notifications/tool-result" in card.text and "ui/open-link" in card.text
    assert "tools/call" not in card.text  # the card calls no tool: approving is the human's, elsewhere
    assert "http" not in card.text.replace("http://localhost:7430", "")  # nothing loaded from outside
    run = (await client.read_resource(RUN_UI)).contents[0]
    assert run.mime_type == "text/html;profile=mcp-app" and "latest_metrics" in run.text
