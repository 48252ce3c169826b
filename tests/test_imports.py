"""Starting the server must stay light: no training stack, no Flash CLI."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "flash", "matplotlib", "numpy")


def test_server_start_path_imports_no_heavy_modules() -> None:
    code = (
        "import json, sys\n"
        "import flash_mcp.cli, flash_mcp.server\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(result.stdout))
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
