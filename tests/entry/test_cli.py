"""CLI errors a person can act on: one line, a hint, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def _flash_mcp(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "FLASH_MCP_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "flash_mcp", *args], capture_output=True, text=True, timeout=120, env=environment
    )


def _clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and result.stdout == "", result.stderr


def test_a_port_out_of_range_is_refused_before_anything_starts(workspace: Path, isolated_home: Path) -> None:
    result = _flash_mcp("serve", "--http", "--port", "99999", "--workspace", str(workspace), home=isolated_home)
    assert result.returncode == 2 and "1-65535" in result.stderr and "serving" not in result.stderr
    _clean(result)


def test_a_port_in_use_says_so_with_a_hint_and_never_says_serving(workspace: Path, isolated_home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        result = _flash_mcp("serve", "--http", "--port", port, "--workspace", str(workspace), home=isolated_home)
    assert result.returncode == 1 and "in use" in result.stderr and "--port" in result.stderr
    assert "serving MCP" not in result.stderr
    _clean(result)


def test_tiny_model_refuses_a_file_and_an_unwritable_path(tmp_path: Path, isolated_home: Path) -> None:
    a_file = tmp_path / "model.bin"
    a_file.write_text("x")
    result = _flash_mcp("tiny-model", str(a_file), home=isolated_home)
    assert result.returncode == 1 and "is a file" in result.stderr
    _clean(result)
    result = _flash_mcp("tiny-model", str(a_file / "inside"), home=isolated_home)
    assert result.returncode == 1 and "cannot build the model" in result.stderr
    _clean(result)


def test_an_unknown_plane_from_the_environment_says_where_it_came_from(workspace: Path, isolated_home: Path) -> None:
    result = _flash_mcp("serve", "--workspace", str(workspace), home=isolated_home, env={"FLASH_MCP_PLANE": "nosuch"})
    assert result.returncode == 2 and "FLASH_MCP_PLANE" in result.stderr and "local, flash" in result.stderr
    _clean(result)


def _unusable_homes(tmp_path: Path) -> dict[str, Path]:
    """State directories that cannot work, even for root (which bypasses mode bits)."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    homes = {
        "under a file": a_file / "state",
        "a file": a_file,
        "a name too long": tmp_path / ("x" * 300),
        "a folder no file can be created in": Path("/proc"),
    }
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        homes["a read-only folder"] = locked
    return homes


def test_an_unusable_state_directory_is_one_line_at_start_over_stdio_and_http(tmp_path: Path, workspace: Path) -> None:
    for label, home in _unusable_homes(tmp_path).items():
        for transport in ([], ["--http", "--port", "1"]):
            result = _flash_mcp("serve", *transport, "--workspace", str(workspace), home=home)
            assert result.returncode == 2, (label, result.stderr)
            said = result.stderr
            assert said.startswith(f"flash-mcp: the state directory {home} is unusable"), (label, said)
            assert "FLASH_MCP_HOME" in said and said.count("\n") == 1, (label, said)
            _clean(result)
    assert (tmp_path / "a-file").read_text() == "not a folder\n"


def test_advice_to_the_human_names_the_real_executable(isolated_home: Path) -> None:
    from flash_mcp.core.advice import human_command

    missing = _flash_mcp("approve", "prop-nope", home=isolated_home)
    command = human_command("proposals")
    assert missing.returncode == 1 and f"`{command}` lists them" in missing.stderr, missing.stderr
    assert Path(command.split()[0]).is_absolute() and Path(command.split()[0]).is_file()
    guard = _flash_mcp("deny", "gp-0123456789ab", home=isolated_home)
    said = f"`sudo {human_command('guard', 'deny', 'gp-0123456789ab')}` decides it"
    assert guard.returncode == 1 and "spend guard's" in guard.stderr and said in guard.stderr, guard.stderr


def test_agent_advice_is_rewritten_for_a_person_at_the_cli() -> None:
    from flash_mcp.core.advice import for_the_human

    stale = for_the_human("x changed on disk since the push; call push_environment again so the run trains it")
    assert "call push_environment" not in stale and "have the agent call its push_environment tool" in stale
    budget = for_the_human("Shrink the run or ask the human to raise max_run_usd in settings.toml")
    assert "ask the human" not in budget and "or raise max_run_usd" in budget
    assert for_the_human("settings.toml is not valid TOML; ask the human to fix it") == (
        "settings.toml is not valid TOML; fix it"
    )
    tools = {"launch_training", "list_evaluations", "evaluate", "whoami"}
    offline = for_the_human("x; launch_training can still propose a run for the human to approve", tools)
    assert offline == "x; the agent's launch_training tool can still propose a run for you to approve"
    listed = for_the_human("no evaluation 'e'; list_evaluations shows them; evaluate it with whoami", tools)
    assert listed == "no evaluation 'e'; the agent's list_evaluations tool shows them; evaluate it with whoami"
    again = for_the_human("c changed since the proposal; push and launch again for a fresh proposal", tools)
    assert again == "c changed since the proposal; have the agent push and launch again for a fresh proposal"
    kept = {  # quoted commands, paths and calls are left as they are; a sentence still starts with a capital
        "then `/home/me/dry_run/.venv/bin/flash-mcp approve p-1` again": None,
        "in /home/me/get_run/settings.toml: wait with get_evaluation('ev-1', wait_s=60)": None,
        "the agent can launch again": None,
        "boom. list_runs shows the runs": "boom. The agent's list_runs tool shows the runs",
        "Call get_run with wait_s": "Have the agent call its get_run tool with wait_s",
    }
    names = tools | {"dry_run", "get_run", "get_evaluation", "list_runs"}
    for said, meant in kept.items():
        assert for_the_human(said, names) == (meant or said), said


def test_cli_errors_give_the_human_the_agents_tools_as_the_agents_and_commands_by_path(
    tmp_path: Path, isolated_home: Path
) -> None:
    from flash_mcp.surface.server.tools_cache import shipped_tool_names

    bare = {"FREESOLO_API_KEY": "", "FLASH_DATA_DIR": str(tmp_path / "no-login")}
    spend = _flash_mcp("spend", "--plane", "flash", home=isolated_home, env=bare)
    compare = _flash_mcp("compare", "eval-a", "eval-b", home=isolated_home)
    assert spend.returncode == 1 and "not logged in to Flash" in spend.stderr, spend.stderr
    assert compare.returncode == 2 and "no evaluation 'eval-a'" in compare.stderr, compare.stderr
    for said in (spend.stderr, compare.stderr):
        assert said.count("\n") == 1 and "the human" not in said and "ask " not in said, said
        for tool in (name for name in shipped_tool_names() if "_" in name):
            assert said.count(tool) == said.count(f"the agent's {tool} tool"), (tool, said)
    assert "the agent's launch_training tool can still propose a run for you to approve" in spend.stderr
    assert "the agent's list_evaluations tool shows" in compare.stderr
    login = spend.stderr.split("run `")[1].split("`")[0]
    assert login.endswith(" login") and Path(login.removesuffix(" login")).is_absolute(), login
    assert Path(login.removesuffix(" login")).is_file(), login
