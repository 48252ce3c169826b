"""The README cannot rot: its commands run in CI and it names everything the server offers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
pytestmark = pytest.mark.anyio


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README)


def test_readme_opens_with_exactly_the_two_setup_commands() -> None:
    head = README.split("## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", head)
    assert len(commands) == 2
    serve, test = commands
    assert "flash-mcp serve" in serve and "pytest" in test


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    test_command = _commands()[1]
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


async def test_readme_names_every_tool_resource_and_prompt(client: Client) -> None:
    names = [tool.name for tool in (await client.list_tools()).tools]
    names += [resource.uri for resource in (await client.list_resources()).resources]
    names += [template.uri_template for template in (await client.list_resource_templates()).resource_templates]
    names += [prompt.name for prompt in (await client.list_prompts()).prompts]
    missing = [name for name in names if f"`{name}`" not in README]
    assert not missing, f"document these in README.md: {missing}"


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout
