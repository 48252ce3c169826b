"""Attacks the fd-based confinement refuses: hard links, symlinked folders, swaps mid-call, FIFOs and
devices, data paths outside the project, secrets and .git, state folders in a push, oversized paths."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import warnings
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call, call_error

pytestmark = pytest.mark.anyio
OUTSIDE_TEXT = "outside secret\n"
HANG_BOUND_S = 120  # a server blocked on a FIFO never answers: the bound turns that hang into a failure, no more


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "secret.txt").write_text(OUTSIDE_TEXT, encoding="utf-8")
    (target / "rows.jsonl").write_text('{"input": "outside row", "output": "x"}\n', encoding="utf-8")
    (target / "sft.toml").write_text('project = "outside"\n', encoding="utf-8")
    return target


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


async def _answers(client: Client) -> None:
    """The server still answers, nothing left blocked: a ping (legacy era; 2026-07-28 removed it) and a tool call."""
    with anyio.fail_after(HANG_BOUND_S):
        if client.mode == "legacy":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)  # deprecated for 2026-07-28 only
                await client.send_ping()
        await call(client, "whoami")


async def _project(client: Client) -> None:
    await call(client, "setup_project", directory="p", project=PROJECT)


# -- hard links ---------------------------------------------------------------------------------------


async def test_a_hard_link_to_an_outside_file_is_not_read(client: Client, workspace: Path, outside: Path) -> None:
    await _project(client)
    os.link(outside / "secret.txt", workspace / "p" / "notes.txt")
    os.link(outside / "rows.jsonl", workspace / "p" / "dataset" / "stolen.jsonl")
    error = await call_error(client, "read_project_file", path="p/notes.txt")
    assert "hard links" in error and "p/notes.txt" in error and "outside secret" not in error
    error = await call_error(client, "read_dataset", path="p/dataset/stolen.jsonl")
    assert "hard links" in error and "outside row" not in error


async def test_a_hard_link_to_the_settings_file_is_not_read(
    client: Client, workspace: Path, settings: ServerSettings
) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "settings.toml").write_text("[budget]\nmax_run_usd = 1.0\n", encoding="utf-8")
    os.link(settings.home / "settings.toml", workspace / "budget.toml")
    error = await call_error(client, "read_project_file", path="budget.toml")
    assert "hard links" in error and "max_run_usd" not in error
    await call_error(client, "validate_config", config="budget.toml")


async def test_a_hard_linked_file_is_replaced_not_written_through(
    client: Client, workspace: Path, outside: Path
) -> None:
    os.link(outside / "secret.txt", workspace / "notes.txt")
    await call(client, "write_project_file", path="notes.txt", content="mine\n")
    assert (outside / "secret.txt").read_text(encoding="utf-8") == OUTSIDE_TEXT
    assert (workspace / "notes.txt").read_text(encoding="utf-8") == "mine\n"


async def test_a_push_refuses_a_hard_linked_file(client: Client, workspace: Path, outside: Path) -> None:
    await _project(client)
    os.link(outside / "secret.txt", workspace / "p" / "notes.txt")
    error = await call_error(client, "push_environment", name="starter", directory="p")
    assert "push refused" in error and "notes.txt" in error and "hard links" in error


# -- symlinked folders --------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["configs", "dataset"])
async def test_setup_project_never_writes_through_a_symlinked_folder(
    client: Client, workspace: Path, outside: Path, folder: str
) -> None:
    (workspace / "p").mkdir()
    (workspace / "p" / folder).symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    error = await call_error(client, "setup_project", directory="p", project=PROJECT)
    assert f"{folder}/" in error and "symlink" in error
    assert _snapshot(outside) == before and sorted(os.listdir(outside)) == ["rows.jsonl", "secret.txt", "sft.toml"]


async def test_push_never_rewrites_configs_through_a_symlinked_folder(
    client: Client, workspace: Path, outside: Path
) -> None:
    await _project(client)
    configs = workspace / "p" / "configs"
    for config in configs.iterdir():
        config.unlink()
    configs.rmdir()
    configs.symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    error = await call_error(client, "push_environment", name="starter", directory="p")
    assert "symlink" in error
    assert _snapshot(outside) == before


async def test_a_swapped_folder_never_leads_outside(client: Client, workspace: Path, outside: Path) -> None:
    """A thread exchanges a real folder and a symlink to outside while reads and writes run."""
    (workspace / "d").mkdir()
    (workspace / "d" / "f.txt").write_text("inside\n", encoding="utf-8")
    (workspace / "d-link").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    stop = threading.Event()
    swaps = itertools.count()

    d, parked, link = workspace / "d", workspace / "d-parked", workspace / "d-link"

    def restore() -> None:
        """Back to: d the real folder, d-link the symlink (a folder a write created meanwhile goes aside)."""
        if d.is_symlink() and not link.is_symlink():
            os.rename(d, link)
        if parked.exists():
            if d.is_dir() and not d.is_symlink():
                os.rename(d, workspace / f"stray-{next(swaps)}")
            os.rename(parked, d)

    def swapper() -> None:
        while not stop.is_set():
            try:
                os.rename(d, parked)
                os.rename(link, d)
                os.rename(d, link)
                os.rename(parked, d)
                next(swaps)
            except OSError:
                with contextlib.suppress(OSError):
                    restore()

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    read = []
    try:
        for i in range(200):
            result = await client.call_tool("read_project_file", {"path": "d/f.txt"})
            text = " ".join(getattr(block, "text", "") for block in result.content)
            assert "outside secret" not in text and "outside row" not in text
            if not result.is_error:
                read.append(result.structured_content["content"])
            await client.call_tool("write_project_file", {"path": f"d/new-{i}.txt", "content": "pwned\n"})
    finally:
        stop.set()
        thread.join()
        restore()
    assert next(swaps) > 0
    assert set(read) <= {"inside\n"}
    assert _snapshot(outside) == before and not any(p.name.startswith("new-") for p in outside.iterdir())


# -- data paths outside the project -------------------------------------------------------------------


async def test_an_absolute_dataset_path_in_a_config_is_refused_with_the_fix(client: Client, workspace: Path) -> None:
    await _project(client)
    config = "p/configs/sft.toml"
    await call(client, "edit_config", config=config, set={"environment.params.dataset_path": "/etc/passwd"},
               preview=True)  # fmt: skip
    report = await call(client, "validate_config", config=config, overrides={"environment.params.dataset_path": "/x"})
    [error] = [e for e in report["errors"] if e["key"] == "environment.params.dataset_path"]
    assert "absolute" in error["message"] and "relative to the project" in error["fix"]
    escaping = await call(
        client, "validate_config", config=config, overrides={"environment.params.dataset_path": "../../x.jsonl"}
    )
    assert any("leaves the project" in e["message"] for e in escaping["errors"])
    planned = await call(client, "dry_run", config=config, overrides={"environment.params.dataset_path": "/x"})
    assert planned["valid"] is False


async def test_an_absolute_dataset_path_in_test_params_is_refused(client: Client, outside: Path) -> None:
    await _project(client)
    error = await call_error(
        client, "test_environment", directory="p", params={"dataset_path": str(outside / "rows.jsonl")}
    )
    assert "absolute" in error and "relative to the project" in error and "outside row" not in error
    error = await call_error(client, "test_environment", directory="p", params={"split": "../../outside/rows"})
    assert "split" in error
    for hidden in (".env", ".git/config"):
        error = await call_error(client, "test_environment", directory="p", params={"dataset_path": hidden})
        assert "never read" in error


@pytest.mark.parametrize("how", ["absolute", "symlink"])
async def test_dev_zero_as_the_dataset_is_refused_quickly(client: Client, workspace: Path, how: str) -> None:
    await _project(client)
    dataset_path = "/dev/zero"
    if how == "symlink":
        (workspace / "p" / "dataset" / "zero.jsonl").symlink_to("/dev/zero")
        dataset_path = "dataset/zero.jsonl"
    with anyio.fail_after(HANG_BOUND_S):
        error = await call_error(
            client, "test_environment", directory="p", params={"dataset_path": dataset_path}, timeout_s=5
        )
    assert "relative to the project" in error or "outside the project" in error
    await _answers(client)


# -- FIFOs ---------------------------------------------------------------------------------------------


@pytest.fixture
async def fifo_project(client: Client, workspace: Path) -> Path:
    await _project(client)
    os.mkfifo(workspace / "p" / "configs" / "pipe.toml")
    os.mkfifo(workspace / "p" / "dataset" / "pipe.jsonl")
    return workspace / "p"


FIFO_CALLS = [
    ("validate_config", {"config": "p/configs/pipe.toml"}),
    ("edit_config", {"config": "p/configs/pipe.toml", "set": {"train.epochs": 2}}),
    ("check_project", {"directory": "p", "config": "p/configs/pipe.toml"}),
    ("dry_run", {"config": "p/configs/pipe.toml"}),
    ("launch_training", {"config": "p/configs/pipe.toml"}),
    ("estimate_cost", {"config": "p/configs/pipe.toml"}),
    ("read_dataset", {"path": "p/dataset/pipe.jsonl"}),
    ("append_dataset_rows", {"path": "p/dataset/pipe.jsonl", "rows": [{"input": "a", "output": "b"}]}),
    ("read_project_file", {"path": "p/dataset/pipe.jsonl"}),
    ("test_environment", {"directory": "p", "config": "p/configs/pipe.toml"}),
    ("test_environment", {"directory": "p", "params": {"dataset_path": "dataset/pipe.jsonl"}}),
]


@pytest.mark.parametrize(("tool", "arguments"), FIFO_CALLS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(FIFO_CALLS)])
async def test_a_fifo_is_refused_without_blocking(client: Client, fifo_project: Path, tool: str, arguments) -> None:
    with anyio.fail_after(HANG_BOUND_S):
        error = await call_error(client, tool, **arguments)
    assert "FIFO" in error and "pipe." in error
    await _answers(client)


async def test_a_fifo_as_the_default_split_is_refused_by_the_project_check(client: Client, workspace: Path) -> None:
    await _project(client)
    train = workspace / "p" / "dataset" / "train.jsonl"
    train.unlink()
    os.mkfifo(train)
    calls = (("check_project", {"directory": "p"}), ("validate_config", {"config": "p/configs/sft.toml"}))
    for tool, arguments in calls:
        with anyio.fail_after(HANG_BOUND_S):
            error = await call_error(client, tool, **arguments)
        assert "FIFO" in error and "train.jsonl" in error
    await _answers(client)


# -- secrets and .git ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [".envrc", ".env-prod", ".env.local", ".ENV"])
async def test_every_env_file_is_secret(client: Client, workspace: Path, name: str) -> None:
    (workspace / name).write_text("export FREESOLO_API_KEY=fslo_envrc_secret\n", encoding="utf-8")
    for tool, arguments in (("read_project_file", {"path": name}), ("read_dataset", {"path": name}),
                            ("validate_config", {"config": name})):  # fmt: skip
        error = await call_error(client, tool, **arguments)
        assert "fslo_envrc_secret" not in error and "secrets" in error
    await call_error(client, "write_project_file", path=name, content="X=1\n")
    listing = await call(client, "list_project_files")
    assert {e["path"]: e["secret"] for e in listing["entries"]}[name] is True
    assert "fslo_envrc_secret" in (workspace / name).read_text(encoding="utf-8")


async def test_env_files_are_never_pushed(client: Client, workspace: Path, isolated_home: Path) -> None:
    await _project(client)
    for name in (".envrc", ".env-prod", ".env"):
        (workspace / "p" / name).write_text("FREESOLO_API_KEY=fslo_pushed_secret\n", encoding="utf-8")
    pushed = await call(client, "push_environment", name="starter", directory="p")
    package = isolated_home / "envs" / pushed["digest"]
    assert not [p for p in package.rglob("*") if p.name.startswith(".env")]
    assert not any(b"fslo_pushed_secret" in p.read_bytes() for p in package.rglob("*") if p.is_file())


async def test_git_is_neither_read_listed_nor_written(client: Client, workspace: Path) -> None:
    (workspace / ".git").mkdir()
    (workspace / ".git" / "config").write_text('[remote "origin"]\n\turl = git@secret\n', encoding="utf-8")
    (workspace / "sub").mkdir()
    (workspace / "sub" / ".git").write_text("gitdir: /elsewhere\n", encoding="utf-8")
    for path in (".git/config", "./.git/config", "sub/.git", ".GIT/config"):
        error = await call_error(client, "read_project_file", path=path)
        assert "git@secret" not in error and "/elsewhere" not in error
    await call_error(client, "list_project_files", directory=".git")
    error = await call_error(client, "setup_project", directory=".git/p")
    assert ".git" in error
    await call_error(client, "write_project_file", path=".git/config", content="x")
    assert not (workspace / ".git" / "p").exists()
    listing = await call(client, "list_project_files")
    assert not [e for e in listing["entries"] if e["path"].startswith(".git/")]


# -- the state and credentials directories in a push ---------------------------------------------------


async def test_state_and_credentials_inside_a_project_are_never_packaged(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = workspace / "p" / "state"
    creds = workspace / "p" / "flashdata"
    creds.mkdir(parents=True)
    (creds / "config.json").write_text('{"api_key": "fslo_saved_key"}', encoding="utf-8")
    monkeypatch.setenv("FLASH_DATA_DIR", str(creds))
    settings = ServerSettings.create(workspace, home=state)
    async with Client(build_server(settings)) as client:
        await _project(client)
        state.mkdir(parents=True, exist_ok=True)
        (state / "settings.toml").write_text("[budget]\nmax_run_usd = 1.0\n", encoding="utf-8")
        pushed = await call(client, "push_environment", name="starter", directory="p")
    package = state / "envs" / pushed["digest"]
    members = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert "environment.py" in members
    assert not [m for m in members if m.startswith(("state/", "flashdata/"))], members


# -- sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["a" * 5000, "a/" * 3000 + "x", "b" * 300, "x" * 10_000_000])
async def test_oversized_paths_get_a_short_tool_error(
    client: Client, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for tool, arguments in (
        ("read_project_file", {"path": path}),
        ("write_project_file", {"path": path, "content": "x"}),
        ("list_project_files", {"directory": path}),
        ("read_dataset", {"path": path}),
    ):
        result = await client.call_tool(tool, arguments)
        text = " ".join(getattr(block, "text", "") for block in result.content)
        assert result.is_error and "limit" in text and len(text) < 400, text[:400]
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged"
    assert sum(len(r.getMessage()) for r in caplog.records) < 8000, "the log stays small"


async def test_a_long_row_is_reported_not_loaded(client: Client, workspace: Path) -> None:
    from flash_mcp.domain.project.dataset import MAX_LINE_BYTES

    (workspace / "big.jsonl").write_bytes(
        b'{"input": "a", "output": "b"}\n' + b"x" * (MAX_LINE_BYTES + 10) + b"\n" + b'{"input": "c"}\n'
    )
    page = await call(client, "read_dataset", path="big.jsonl")
    assert page["total_rows"] == 3
    assert "longer than" in page["rows"][1]["problem"] and page["rows"][2]["input"] == "c"
    appended = await call(client, "append_dataset_rows", path="big.jsonl", rows=[{"input": "d"}])
    assert appended["total_rows"] == 4 and appended["last_id"] == "example_000003"
    assert json.loads((workspace / "big.jsonl").read_bytes().splitlines()[-1]) == {"input": "d"}
