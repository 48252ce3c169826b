"""Every escape from the workspace is refused, and nothing is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client

from tests.conftest import call, call_error

pytestmark = pytest.mark.anyio

OUTSIDE_TEXT = "outside secret\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "secret.txt").write_text(OUTSIDE_TEXT, encoding="utf-8")
    return target


@pytest.fixture
def traps(workspace: Path, outside: Path) -> Path:
    """Symlinks inside the workspace that point out of it, and a .env with a value."""
    (workspace / "linkdir").symlink_to(outside, target_is_directory=True)
    (workspace / "linkfile.txt").symlink_to(outside / "secret.txt")
    (workspace / ".env").write_text("FREESOLO_API_KEY=fslo_supersecret\n", encoding="utf-8")
    (workspace / "env-alias.txt").symlink_to(workspace / ".env")
    return workspace


def _snapshot(*roots: Path) -> dict[str, bytes]:
    files = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files[str(path)] = path.read_bytes()
    return files


ESCAPES = [
    "/etc/passwd",
    "../outside/secret.txt",
    "sub/../../outside/secret.txt",
    "linkdir/secret.txt",
    "linkfile.txt",
    "linkdir/new.txt",
    "with\0nul.txt",
    "C:\\Windows\\win.ini",
    "..\\outside\\secret.txt",
    "~/secret.txt",
    "",
]


@pytest.mark.parametrize("path", ESCAPES)
async def test_reads_outside_the_workspace_are_refused(client: Client, traps: Path, path: str) -> None:
    text = await call_error(client, "read_project_file", path=path)
    assert "outside secret" not in text


@pytest.mark.parametrize("path", ESCAPES)
async def test_writes_outside_the_workspace_are_refused_and_write_nothing(
    client: Client, traps: Path, outside: Path, path: str
) -> None:
    before = _snapshot(traps, outside)
    await call_error(client, "write_project_file", path=path, content="pwned\n")
    assert _snapshot(traps, outside) == before
    assert (outside / "secret.txt").read_text(encoding="utf-8") == OUTSIDE_TEXT


@pytest.mark.parametrize("path", ["linkdir", "../outside", "/tmp"])
async def test_listing_outside_the_workspace_is_refused(client: Client, traps: Path, path: str) -> None:
    await call_error(client, "list_project_files", directory=path)


@pytest.mark.parametrize("path", ["linkdir/proj", "../proj", "/tmp/proj"])
async def test_scaffolding_outside_the_workspace_is_refused(client: Client, traps: Path, path: str) -> None:
    await call_error(client, "setup_project", directory=path)
    assert not (traps.parent / "proj").exists()


@pytest.mark.parametrize("path", [".env", ".env.local", "sub/.env.production", "env-alias.txt"])
async def test_env_files_are_never_written(client: Client, traps: Path, path: str) -> None:
    before = _snapshot(traps)
    text = await call_error(client, "write_project_file", path=path, content="FREESOLO_API_KEY=other\n")
    assert _snapshot(traps) == before
    assert "fslo_supersecret" not in text


@pytest.mark.parametrize("path", [".env", "env-alias.txt"])
async def test_env_values_are_never_returned(client: Client, traps: Path, path: str) -> None:
    text = await call_error(client, "read_project_file", path=path)
    assert "fslo_supersecret" not in text


async def test_env_files_are_listed_and_marked_secret(client: Client, traps: Path) -> None:
    listing = await call(client, "list_project_files")
    entries = {entry["path"]: entry for entry in listing["entries"]}
    assert entries[".env"]["secret"] is True
    assert "fslo_supersecret" not in str(listing)


async def test_git_internals_are_never_written(client: Client, workspace: Path) -> None:
    (workspace / ".git" / "hooks").mkdir(parents=True)
    await call_error(client, "write_project_file", path=".git/hooks/pre-commit", content="#!/bin/sh\n")
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()


async def test_the_state_directory_is_off_limits_even_inside_the_workspace(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.server import build_server

    state = workspace / ".flash-mcp"
    state.mkdir()
    (state / "settings.toml").write_text("[budget]\nmax_run_usd = 1.0\n", encoding="utf-8")
    settings = ServerSettings.create(workspace, home=state)
    for mode in ("legacy", "2026-07-28"):
        async with Client(build_server(settings), mode=mode) as client:
            for path in (".flash-mcp/settings.toml", ".flash-mcp/runs.db", "./.flash-mcp/settings.toml"):
                await call_error(client, "write_project_file", path=path, content="[budget]\nmax_run_usd = 1e9\n")
                await call_error(client, "read_project_file", path=path)
            await call_error(client, "setup_project", directory=".flash-mcp")
            listing = await call(client, "list_project_files")
            assert not any(entry["path"].startswith(".flash-mcp") for entry in listing["entries"])
    assert (state / "settings.toml").read_text(encoding="utf-8") == "[budget]\nmax_run_usd = 1.0\n"
    own = {"cache", "settings.toml"} | {
        f"{db}{end}" for db in ("state.db", "approvals.db") for end in ("", "-wal", "-shm")
    }
    assert set(os.listdir(state)) <= own, "nothing but the server's own files (its run watch may have ticked)"
    assert all(name.startswith("tools-") for name in os.listdir(state / "cache"))


async def test_the_whole_home_as_workspace_still_protects_the_state_directory(tmp_path: Path) -> None:
    """A human who points --workspace at their home directory still cannot have settings edited."""
    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.server import build_server

    home = tmp_path / "home"
    state = home / ".flash-mcp"
    state.mkdir(parents=True)
    (home / "link-to-state").symlink_to(state, target_is_directory=True)
    async with Client(build_server(ServerSettings.create(home, home=state))) as client:
        await call_error(client, "write_project_file", path="link-to-state/settings.toml", content="x = 1\n")
    assert not (state / "settings.toml").exists()


async def test_an_inside_path_with_a_symlinked_parent_inside_is_allowed(client: Client, workspace: Path) -> None:
    (workspace / "real").mkdir()
    (workspace / "alias").symlink_to(workspace / "real", target_is_directory=True)
    written = await call(client, "write_project_file", path="alias/notes.txt", content="hello\n")
    assert written["path"] == "real/notes.txt"
    assert (workspace / "real" / "notes.txt").read_text(encoding="utf-8") == "hello\n"


async def test_flash_credentials_are_off_limits_with_the_home_as_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API key `flash login` saved is never readable, listable or writable through the file tools."""
    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.server import build_server

    home = tmp_path / "home"
    saved = home / ".flash" / "config.json"
    saved.parent.mkdir(parents=True)
    saved.write_text('{"api_key": "fslo_saved_login_key"}')
    monkeypatch.setenv("FLASH_DATA_DIR", str(saved.parent))
    async with Client(build_server(ServerSettings.create(home, home=home / ".flash-mcp"))) as client:
        error = await call_error(client, "read_project_file", path=".flash/config.json")
        assert "credentials directory" in error and "fslo_saved_login_key" not in error
        await call_error(client, "write_project_file", path=".flash/config.json", content="{}")
        listing = await client.call_tool("list_project_files", {"directory": "."})
    assert "config.json" not in str(listing.structured_content)
    assert "fslo_saved_login_key" in saved.read_text()
