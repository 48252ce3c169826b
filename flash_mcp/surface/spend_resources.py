"""flash://spend: reconciled spend against the human's budgets, for the agent (the human runs `flash-mcp spend`)."""

from __future__ import annotations

from collections.abc import Callable

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from flash_mcp.loop.spend import SPEND_URI, Spend, render
from flash_mcp.surface.server.registry import translate_errors


def register(server: MCPServer, spend: Callable[[], Spend]) -> None:
    def spend_view() -> str:
        """Today and this month against daily_usd and monthly_usd, and per approved run: the approved amount,
        the running or settled cost, the difference and overrun flags. Settled costs replace quotes."""
        return render(spend().report())

    server.resource(
        SPEND_URI, name="spend", title="Spend and budgets", description=spend_view.__doc__, mime_type="text/plain"
    )(translate_errors(spend_view, ResourceError))
