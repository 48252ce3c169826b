"""Starting the server must stay light: no training stack, no Flash CLI, nothing only a tool body needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# The training stack, the Flash CLI, charting and statistics; rich (the SDK's optional log handler, which
# `serve` does not use), the comparison statistics and the run chart (a tool imports them when it needs them).
HEAVY = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "datasets",
    "flash",
    "matplotlib",
    "numpy",
    "PIL",
    "rich",
    "statistics",
    "flash_mcp.domain.evaluation.pairing",
    "flash_mcp.domain.evaluation.stats",
    "flash_mcp.domain.runs.plots",
    "webauthn",  # the guard's passkey stack: only `flash-mcp guard run` loads it
    "flash_mcp.guard.daemon",
    "flash_mcp.guard.web",
)


def test_server_start_path_imports_no_heavy_modules(tmp_path: Path) -> None:
    """What `flash-mcp serve` loads to answer its first tools/list without a saved list: the CLI sets up logging,
    builds the server, and registers every tool to list them (`test_tools_cache.py`: with the list saved, none)."""
    code = (
        "import anyio, json, logging, sys\n"
        "logging.basicConfig()\n"
        "import contextlib, io, flash_mcp.cli, flash_mcp.server\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    flash_mcp.cli.main(['serve', '--help'])  # the whole parser, the guard's commands included\n"
        "from flash_mcp.core.settings import ServerSettings\n"
        "settings = ServerSettings.create(workspace=sys.argv[1], plane='local')\n"
        "server = flash_mcp.server.build_server(settings, tools_cache=False)\n"
        "assert len(anyio.run(server.list_tools)) > 20 and server.surface_loaded\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "FLASH_MCP_HOME": str(tmp_path / "state")}
    command = [sys.executable, "-c", code, str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True, env=env)
    loaded = set(json.loads(result.stdout))
    heavy = {name for name in loaded if any(name == h or name.startswith(h + ".") for h in HEAVY)}
    assert not heavy, sorted(heavy)
