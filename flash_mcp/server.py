"""Build the MCP server: one `MCPServer` with every tool, resource and prompt registered."""

from __future__ import annotations

from mcp.server import MCPServer

from flash_mcp import __version__
from flash_mcp.settings import ServerSettings
from flash_mcp.surface import config_tools, env_tools, project_tools, prompts, resources, run_tools

INSTRUCTIONS = """\
flash-mcp drives Flash LoRA post-training (SFT, GRPO, OPD) from a project folder in the workspace.
Loop: setup_project -> edit environment.py and dataset/train.jsonl -> test every row -> push ->
validate and dry-run a config -> launch (a human approves paid runs) -> read the run's outputs.
Read flash://guide before the first run. Paths are relative to the workspace; .env files are off-limits.
"""


def build_server(settings: ServerSettings) -> MCPServer:
    server = MCPServer("flash-mcp", version=__version__, instructions=INSTRUCTIONS)
    project_tools.register(server, settings)
    config_tools.register(server, settings)
    env_tools.register(server, settings)
    run_tools.register(server, settings)
    resources.register(server)
    prompts.register(server)
    return server
