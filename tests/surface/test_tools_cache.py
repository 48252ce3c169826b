"""`tools/list` from the saved list: the same answer as building it, never a stale one, and nothing imported.

These servers ignore the list the package ships (`shipped_list=False`), so a first start builds; the shipped list
is tested in tests/surface/test_surface.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, MCPError

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from flash_mcp.surface.server.tools_cache import CACHE_DIR, KEPT, PACKAGE, ToolsCache, fingerprint
from tests.conftest import ERAS, call

pytestmark = pytest.mark.anyio


def _saved(settings: ServerSettings) -> Path:
    return ToolsCache(settings.home, settings.plane).path


async def _listed(settings: ServerSettings, mode: str = "legacy", **options) -> tuple[list[dict], bool]:
    """The wire form of `tools/list` from a new server, and whether answering it registered the surface."""
    server = build_server(settings, **{"shipped_list": False, **options})
    async with Client(server, mode=mode) as client:
        tools = [tool.model_dump(by_alias=True, mode="json") for tool in (await client.list_tools()).tools]
    return tools, server.surface_loaded


@pytest.mark.parametrize("mode", ERAS)
async def test_a_second_start_lists_the_same_tools_without_registering_them(
    settings: ServerSettings, mode: str
) -> None:
    built, loaded_first = await _listed(settings, mode)
    assert loaded_first and _saved(settings).is_file()
    cached, loaded_second = await _listed(settings, mode)
    assert not loaded_second, "the second start answered tools/list without importing a tool"
    assert cached == built
    uncached, _ = await _listed(settings, mode, tools_cache=False)
    assert uncached == built


async def test_a_server_that_listed_from_the_cache_still_calls_validates_and_reads(settings: ServerSettings) -> None:
    built, _ = await _listed(settings)
    saved = _saved(settings).stat().st_ino
    server = build_server(settings, shipped_list=False)
    async with Client(server) as client:
        assert len((await client.list_tools()).tools) > 20 and not server.surface_loaded
        assert (await call(client, "list_project_files"))["directory"] == "."
        refused = await client.call_tool("list_project_files", {"nosuch": 1})
        assert refused.is_error and "takes no argument 'nosuch'" in refused.content[0].text
        assert (await client.list_prompts()).prompts and (await client.list_resources()).resources
        relisted = [tool.model_dump(by_alias=True, mode="json") for tool in (await client.list_tools()).tools]
    assert server.surface_loaded and relisted == built
    assert _saved(settings).stat().st_ino == saved, "a list read from the file is not written back"


async def test_a_start_whose_first_request_is_a_call_still_saves_the_list(settings: ServerSettings) -> None:
    server = build_server(settings, shipped_list=False)
    async with Client(server) as client:
        assert (await call(client, "list_project_files"))["directory"] == "."
        await client.list_tools()
    assert _saved(settings).is_file()


@pytest.mark.parametrize("surface", ["resources", "templates", "prompts", "read"])
async def test_every_other_list_or_read_registers_the_surface_first(settings: ServerSettings, surface: str) -> None:
    server = build_server(settings, shipped_list=False)
    async with Client(server) as client:
        if surface == "resources":
            assert any(str(r.uri) == "flash://guide" for r in (await client.list_resources()).resources)
        elif surface == "templates":
            assert (await client.list_resource_templates()).resource_templates
        elif surface == "prompts":
            assert (await client.list_prompts()).prompts
        else:
            assert (await client.read_resource("flash://runs")).contents
    assert server.surface_loaded


async def test_a_file_holding_another_fingerprint_is_ignored_and_rewritten(settings: ServerSettings) -> None:
    built, _ = await _listed(settings)
    path = _saved(settings)
    stale = json.loads(path.read_text())
    stale["key"] = "0" * 32
    stale["tools"][0]["description"] = "stale"
    path.write_text(json.dumps(stale))
    listed, loaded = await _listed(settings)
    assert loaded and listed == built
    assert json.loads(path.read_text())["key"] == fingerprint("local")


@pytest.mark.parametrize("damage", ["garbage", "not-a-list", "bad-tool", "deep", "huge", "directory", "fifo"])
async def test_an_unreadable_cache_is_ignored(settings: ServerSettings, damage: str) -> None:
    built, _ = await _listed(settings)
    path = _saved(settings)
    key = fingerprint("local")
    path.unlink()
    if damage == "directory":
        path.mkdir()
    elif damage == "fifo":
        os.mkfifo(path)  # a read would block the server forever
    else:
        body = {
            "garbage": b"\xff{not json",
            "not-a-list": json.dumps({"key": key, "tools": 3}).encode(),
            "bad-tool": json.dumps({"key": key, "tools": [{"name": 7}]}).encode(),
            "deep": b"[" * 100_000,  # json.loads raises RecursionError
            "huge": json.dumps({"key": key, "tools": [], "pad": "x" * (5 * 2**20)}).encode(),
        }[damage]
        path.write_bytes(body)
    listed, loaded = await _listed(settings)
    assert loaded and listed == built


async def test_each_plane_keeps_its_own_list_in_a_shared_state_directory(workspace: Path, isolated_home: Path) -> None:
    """The list is keyed by plane as well as by sources: servers of both planes sharing a state directory each
    start from their own saved list."""
    planes = {plane: ServerSettings.create(workspace, home=isolated_home, plane=plane) for plane in ("local", "flash")}
    built = {plane: await _listed(settings) for plane, settings in planes.items()}
    assert all(loaded for _, loaded in built.values())
    assert ToolsCache(isolated_home, "local").path != ToolsCache(isolated_home, "flash").path
    for plane, settings in planes.items():
        assert await _listed(settings) == (built[plane][0], False)


def test_only_the_newest_lists_are_kept_and_abandoned_temporary_files_go(isolated_home: Path) -> None:
    folder = isolated_home / CACHE_DIR
    folder.mkdir(parents=True)
    for number in range(KEPT + 2):  # lists of older sources, oldest first
        (folder / f"tools-{number:032x}.json").write_text("{}")
        os.utime(folder / f"tools-{number:032x}.json", (1_000_000 + number,) * 2)
    (folder / ".tools-list.killed.tmp").write_text("{")
    os.utime(folder / ".tools-list.killed.tmp", (1_000_000,) * 2)
    (folder / ".tools-list.writing.tmp").write_text("{")  # another server writing now
    cache = ToolsCache(isolated_home, "local")
    cache.save([])
    kept = sorted(path.name for path in folder.iterdir())
    older = [f"tools-{number:032x}.json" for number in range(KEPT + 2)][-(KEPT - 1) :]
    assert kept == sorted([".tools-list.writing.tmp", cache.path.name, *older])


def test_a_list_built_after_the_sources_changed_is_not_saved(isolated_home: Path) -> None:
    """The key is taken at start and the tools are imported later: an edit in between must not be saved under
    the old sources' key."""
    started_before_the_edit = ToolsCache(isolated_home, "local", key="0" * 32)
    started_before_the_edit.save([])
    assert not started_before_the_edit.path.exists()


async def test_a_registration_that_fails_fails_every_request_and_saves_nothing(
    settings: ServerSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flash_mcp.surface import prompts

    def broken(server: object) -> None:
        raise RuntimeError("prompts/train.md is missing")

    monkeypatch.setattr(prompts, "register", broken)
    server = build_server(settings, shipped_list=False)
    async with Client(server) as client:
        for _ in range(2):
            with pytest.raises(MCPError):
                await client.list_tools()
            with pytest.raises(MCPError):
                await client.list_prompts()
            failed = await client.call_tool("list_project_files", {})
            assert failed.is_error
    assert not server.surface_loaded and not _saved(settings).exists()
    monkeypatch.undo()
    listed, loaded = await _listed(settings)
    assert loaded and len(listed) > 20


def test_any_source_change_changes_the_fingerprint(tmp_path: Path) -> None:
    copy = tmp_path / "flash_mcp"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = fingerprint("local", copy)
    assert fingerprint("local", copy) == before
    docstring_edit = copy / "surface" / "config_tools.py"
    docstring_edit.write_text(docstring_edit.read_text().replace('"""', '""" ', 1))
    assert fingerprint("local", copy) != before
    (copy / "surface" / "new_tools.py").write_text("")
    assert len({before, fingerprint("local", copy)}) == 2


def test_an_unwritable_state_directory_costs_only_the_next_start(tmp_path: Path) -> None:
    """The save fails quietly (a warning), and tools/list still answers."""
    code = (
        "import anyio, logging, sys\n"
        "logging.basicConfig()\n"
        "from flash_mcp.core.settings import ServerSettings\n"
        "from flash_mcp.server import build_server\n"
        "server = build_server(ServerSettings.create(workspace=sys.argv[1], home=sys.argv[2]), shipped_list=False)\n"
        "print(len(anyio.run(server.list_tools)))\n"
    )
    state = tmp_path / "state"
    (state / "cache").parent.mkdir()
    (state / "cache").write_text("a file where the cache folder goes")
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), str(state)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 20
    assert "could not save the tools list cache" in result.stderr


def test_a_cached_start_imports_no_use_case(tmp_path: Path) -> None:
    """What a start loads to answer tools/list once the list is saved: the protocol layer, not the tools."""
    code = (
        "import anyio, json, logging, sys\n"
        "logging.basicConfig()\n"
        "from flash_mcp.core.settings import ServerSettings\n"
        "from flash_mcp.server import build_server\n"
        "server = build_server(ServerSettings.create(workspace=sys.argv[1], plane='local'), shipped_list=False)\n"
        "tools = anyio.run(server.list_tools)\n"
        "print(json.dumps({'tools': len(tools), 'modules': sorted(sys.modules)}))\n"
    )
    env = {**os.environ, "FLASH_MCP_HOME": str(tmp_path / "state")}
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code, str(tmp_path)],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
                env=env,
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0]["tools"] == runs[1]["tools"] > 20
    first, second = ({m for m in run["modules"] if m.startswith("flash_mcp.")} for run in runs)
    assert "flash_mcp.loop.launch" in first, "the first start builds the list"
    use_cases = sorted(m for m in second if m.split(".")[1] in ("loop", "domain", "planes", "sandbox", "runtime"))
    assert not use_cases, use_cases
