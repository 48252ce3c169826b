"""Attacks on the sandbox, as an agent limited to MCP would make them: environment.py written with
`write_project_file`, run by `test_environment`, against a server holding real-looking secrets."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import call
from tests.envs import projects as seeds


@dataclass(frozen=True)
class Secrets:
    api_key: str
    token: str
    settings: str
    credentials: str
    dotenv: str

    def all(self) -> list[str]:
        return [self.api_key, self.token, self.settings, self.credentials, self.dotenv]


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch, isolated_home: Path, tmp_path: Path, workspace: Path) -> Secrets:
    """Secrets where an attacker would look: the server's env, settings.toml, ~/.flash, a project .env."""
    found = Secrets(*(f"sentinel-{name}-{secrets.token_hex(8)}" for name in ("key", "tok", "set", "cred", "env")))
    monkeypatch.setenv("FREESOLO_API_KEY", found.api_key)
    monkeypatch.setenv("FLASH_MCP_TOKEN", found.token)
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text(
        f'# {found.settings}\n[approval]\nmode = "always"\n\n[sandbox]\nmax_processes = 48\n', encoding="utf-8"
    )
    data = tmp_path / "flash-data"
    data.mkdir()
    (data / "config.json").write_text(json.dumps({"api_key": found.credentials}), encoding="utf-8")
    seeds.make_project(workspace, "p", seeds.environment(), seeds.rows(4))
    (workspace / "p" / ".env").write_text(f"FREESOLO_API_KEY={found.dotenv}\n", encoding="utf-8")
    return found


@pytest.fixture
async def agent(settings: ServerSettings, planted: Secrets) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as connected:
        yield connected


async def run_environment(client: Client, source: str, **arguments) -> dict:
    """Write environment.py through MCP, as the agent would, and test it through MCP."""
    await call(client, "write_project_file", path="p/environment.py", content=source)
    return await call(client, "test_environment", directory="p", **arguments)


def attack(code: str, **values: object) -> str:
    """An environment.py whose module body runs `code` (at load, inside the sandbox) with `values`."""
    bound = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    body = "\n".join("    " + line for line in code.strip("\n").splitlines())
    top = f"\n{bound}\ndef _attack():\n{body}\n\n\n_attack()\n"
    return seeds.environment(top=top)


def processes_tagged(tag: str) -> list[int]:
    """Live processes whose command line carries `tag` (zombies excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if tag.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found
