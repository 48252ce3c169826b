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
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci and "bash .ci/conformance" in ci


def test_the_first_command_serves_a_named_workspace_that_exists() -> None:
    serve = _commands()[0]
    assert "--workspace ." not in serve and "mkdir -p ~/my-project" in serve
    assert "--workspace ~/my-project" in serve


def test_every_command_uses_the_venvs_programs() -> None:
    """Nothing activates the venv, so a bare `flash-mcp`, `flash`, `pytest` or `ruff` would be "command not found"."""
    bare = re.compile(r"(^|&&\s*|;\s*|\|\s*)(flash-mcp|flash|pytest|ruff|pip)\b")
    for block in re.findall(r"```bash\n(.+?)\n```", README, flags=re.S):
        for line in block.splitlines():
            command = line.split("#", 1)[0].replace("UPDATE_SNAPSHOTS=1 ", "")
            assert not bare.search(command.strip()), f"use .venv/bin/...: {line}"


def test_every_conformance_omission_is_explained() -> None:
    text = (ROOT / ".ci" / "conformance-expected-failures.yml").read_text(encoding="utf-8")
    entries = re.findall(r"^  - (\S+)$", text, flags=re.M)
    assert entries, "the expected-failures file lists scenarios"
    blocks = re.split(r"\n(?=  #)", text.split("server:", 1)[1])
    for block in blocks:
        listed = re.findall(r"^  - (\S+)$", block, flags=re.M)
        assert not listed or "  # " in block, f"explain why {listed} fail"


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
