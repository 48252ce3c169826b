"""Static resources: the playbook."""

from __future__ import annotations

from mcp.server import MCPServer

from flash_mcp.assets import training_guide


def register(server: MCPServer) -> None:
    @server.resource(
        "flash://guide",
        name="guide",
        title="Training playbook",
        description="The flash-mcp loop: rewards, testing, reading runs, when to ask the human.",
        mime_type="text/markdown",
    )
    def guide() -> str:
        return training_guide()
