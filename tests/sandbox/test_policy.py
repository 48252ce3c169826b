"""Fail closed, the escape hatch the human owns, what whoami reports, and the state dir never granted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.sandbox import SandboxSpec, launch
from tests.conftest import call, call_error
from tests.envs import projects as seeds
from tests.sandbox.conftest import Secrets, run_environment

pytestmark = pytest.mark.anyio


async def test_without_a_sandbox_agent_code_does_not_run_unless_the_human_allows_it(
    agent: Client, settings: ServerSettings, monkeypatch: pytest.MonkeyPatch, workspace: Path
) -> None:
    monkeypatch.setattr("flash_mcp.sandbox.kernel.landlock_abi", lambda: 0)  # a kernel without Landlock
    marker = workspace / "p" / "ran"
    source = seeds.environment(top=f"\nPath({str(marker)!r}).write_text('ran')\n")
    await call(agent, "write_project_file", path="p/environment.py", content=source)
    error = await call_error(agent, "test_environment", directory="p")
    assert "runs only inside the sandbox" in error and "[sandbox] allow_unsandboxed = true" in error
    assert not marker.exists()
    with (settings.home / "settings.toml").open("a", encoding="utf-8") as handle:
        handle.write("allow_unsandboxed = true\n")  # appended to the [sandbox] table
    report = await call(agent, "test_environment", directory="p")
    assert report["verdict"] == "pass", report["summary"]
    assert marker.read_text() == "ran"


async def test_whoami_reports_the_active_sandbox_and_the_humans_limits(agent: Client) -> None:
    identity = await call(agent, "whoami")
    sandbox = identity["detail"]["sandbox"]
    assert sandbox["active"] == "linux: landlock + namespaces" and sandbox["landlock_abi"] >= 1
    assert "pid (fresh /proc)" in sandbox["namespaces"]
    assert sandbox["limits"]["max_processes"] == 48 and sandbox["allow_unsandboxed"] is False
    assert sandbox["limits"]["memory_bytes"] == 2048 << 20


async def test_the_environment_sees_a_clean_environment(agent: Client, planted: Secrets) -> None:
    code = "print('ENV', sorted(os.environ))"
    report = await run_environment(agent, seeds.environment(top="\n" + code + "\n"))
    names = report["output"].split("ENV ", 1)[1].splitlines()[0]
    assert "FREESOLO_API_KEY" not in names and "FLASH_MCP_TOKEN" not in names and "FLASH_DATA_DIR" not in names
    assert "'HOME'" in names and "'FLASH_MCP_SANDBOXED'" in names


def test_the_launcher_refuses_to_grant_the_human_state(settings: ServerSettings, tmp_path: Path) -> None:
    for granted in ([settings.home], [settings.home / "settings.toml"], [tmp_path]):
        with pytest.raises(UserError, match="refusing to expose the human's state"):
            launch(SandboxSpec([sys.executable, "-c", "pass"], read_only=granted))
    elsewhere = tmp_path / "another-home"  # a server started with home= rather than FLASH_MCP_HOME
    with pytest.raises(UserError, match="refusing to expose the human's state"):
        launch(SandboxSpec([sys.executable, "-c", "pass"], read_write=[elsewhere], state_dir=elsewhere))
