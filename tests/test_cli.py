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
