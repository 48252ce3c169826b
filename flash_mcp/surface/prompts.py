"""Prompts loaded from `prompts/*.md`.

Each file opens with TOML front matter between `+++` lines:

    +++
    name = "start_project"
    description = "…"
    [[arguments]]
    name = "idea"
    description = "…"
    required = true
    default = "…"      # optional: used when the argument is omitted
    +++
    Body text with $idea placeholders.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from string import Template

from mcp.server import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument

from flash_mcp.core.assets import asset_path

_FENCE = "+++"


def load_prompt(path: Path) -> Prompt:
    """Parse one prompt file into an MCP prompt whose arguments fill `$name` placeholders."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith(_FENCE):
        raise ValueError(f"{path.name}: prompt files start with +++ TOML front matter")
    front, _, body = text[len(_FENCE) :].partition(f"\n{_FENCE}\n")
    meta = tomllib.loads(front)
    declared = meta.get("arguments", [])
    defaults = {arg["name"]: arg.pop("default", "") for arg in declared}
    arguments = [PromptArgument(**arg) for arg in declared]
    template = Template(body.strip() + "\n")

    def render(**values: str) -> str:
        return template.safe_substitute(defaults | {k: v for k, v in values.items() if v})

    return Prompt(
        name=meta["name"],
        title=meta.get("title"),
        description=meta["description"],
        arguments=arguments,
        fn=render,
    )


def register(server: MCPServer) -> None:
    for path in sorted(asset_path("prompts").glob("*.md")):
        server.add_prompt(load_prompt(path))
