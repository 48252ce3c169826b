"""Reading, writing and listing project files: paged, atomic, diagnosed, bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.domain.project import files
from tests.conftest import call, call_error

pytestmark = pytest.mark.anyio


async def test_pages_chain_to_the_end_with_nothing_lost_or_repeated(client: Client, workspace: Path) -> None:
    text = "".join(f"line {i} — naïve ünïcödé ✓\n" for i in range(3000))
    (workspace / "big.txt").write_text(text, encoding="utf-8")
    pieces, offset = [], 0
    while offset is not None:
        chunk = await call(client, "read_project_file", path="big.txt", offset=offset, limit=4097)
        assert chunk["size"] == len(text.encode("utf-8"))
        pieces.append(chunk["content"])
        offset = chunk["next_offset"]
    assert "".join(pieces) == text
    assert len(pieces) > 10


async def test_reading_past_the_end_or_a_binary_file_is_refused(client: Client, workspace: Path) -> None:
    (workspace / "small.txt").write_text("abc", encoding="utf-8")
    assert "past the end" in await call_error(client, "read_project_file", path="small.txt", offset=10)
    (workspace / "blob.bin").write_bytes(b"\x00\x01\x02")
    assert "binary" in await call_error(client, "read_project_file", path="blob.bin")


async def test_write_reports_toml_errors_with_line_and_column(client: Client) -> None:
    result = await call(client, "write_project_file", path="configs/x.toml", content='model = "a"\nalgorithm = \n')
    [diagnostic] = result["diagnostics"]
    assert diagnostic["severity"] == "error" and diagnostic["line"] == 2 and diagnostic["column"]
    assert result["created"] is True


async def test_write_reports_jsonl_rows_that_are_not_objects_with_input(client: Client) -> None:
    content = '{"input": "ok", "output": "1"}\n[1, 2]\n{"output": "no input"}\nnot json\n\n{"input": "x"}\n'
    result = await call(client, "write_project_file", path="dataset/train.jsonl", content=content)
    lines = {d["line"]: d["message"] for d in result["diagnostics"]}
    assert set(lines) == {2, 3, 4}
    assert "object" in lines[2] and "input" in lines[3] and "JSON" in lines[4]


async def test_write_reports_python_syntax_errors_with_line_numbers(client: Client) -> None:
    result = await call(client, "write_project_file", path="environment.py", content="import os\n\ndef f(:\n    pass\n")
    [diagnostic] = result["diagnostics"]
    assert diagnostic["line"] == 3 and "syntax" in diagnostic["message"].lower()


async def test_a_clean_write_has_no_diagnostics_and_overwrites(client: Client, workspace: Path) -> None:
    (workspace / "notes.md").write_text("old", encoding="utf-8")
    result = await call(client, "write_project_file", path="notes.md", content="new\n")
    assert result == {"path": "notes.md", "bytes_written": 4, "created": False, "diagnostics": [],
                      "ships_with_environment": None, "stale_pushes": []}  # fmt: skip
    assert (workspace / "notes.md").read_text(encoding="utf-8") == "new\n"


async def test_a_failed_write_leaves_the_old_file_intact(
    client: Client, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = workspace / "keep.txt"
    target.write_text("precious\n", encoding="utf-8")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    result = await client.call_tool("write_project_file", {"path": "keep.txt", "content": "half"})
    assert result.is_error
    assert target.read_text(encoding="utf-8") == "precious\n"
    assert sorted(os.listdir(workspace)) == ["keep.txt"], "the temp file was cleaned up"


async def test_writes_keep_the_file_mode(client: Client, workspace: Path) -> None:
    script = workspace / "run.sh"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(0o755)
    await call(client, "write_project_file", path="run.sh", content="#!/bin/sh\necho hi\n")
    assert script.stat().st_mode & 0o777 == 0o755


async def test_listing_is_bounded_and_says_how_to_see_more(client: Client, workspace: Path) -> None:
    for i in range(30):
        (workspace / "many" / f"d{i}").mkdir(parents=True)
        (workspace / "many" / f"d{i}" / "f.txt").write_text("x", encoding="utf-8")
    (workspace / ".venv" / "lib").mkdir(parents=True)
    listing = await call(client, "list_project_files", limit=10)
    assert len(listing["entries"]) == 10 and listing["total"] == 62
    assert listing["truncated"] and "subdirectory" in listing["hint"]
    full = await call(client, "list_project_files", limit=1000)
    paths = {entry["path"] for entry in full["entries"]}
    assert ".venv" in paths and ".venv/lib" not in paths


async def test_oversized_writes_are_refused(client: Client, workspace: Path) -> None:
    text = await call_error(client, "write_project_file", path="huge.txt", content="x" * (files.MAX_WRITE_BYTES + 1))
    assert "limit" in text
    assert not (workspace / "huge.txt").exists()


async def test_a_write_says_whether_it_ships_and_which_push_it_made_stale(client: Client) -> None:
    await call(client, "setup_project", directory="p")
    pushed = await call(client, "push_environment", name="math", directory="p")
    note = await call(client, "write_project_file", path="p/NOTES.md", content="# why the reward is strict\n")
    again = await call(client, "push_environment", name="math", directory="p")
    hidden = await call(client, "write_project_file", path="p/.scratch", content="not shipped\n")
    config = await call(client, "write_project_file", path="p/configs/extra.toml", content="# a comment\n")
    outside = await call(client, "write_project_file", path="elsewhere.txt", content="x\n")
    assert note["ships_with_environment"] is True
    (stale,) = note["stale_pushes"]
    assert pushed["environment_id"] in stale and "local plane" in stale and "push_environment" in stale
    assert again["digest"] != pushed["digest"]
    assert hidden["ships_with_environment"] is False and hidden["stale_pushes"] == []
    assert config["ships_with_environment"] is True and config["stale_pushes"] == []  # configs are not digested
    assert outside.get("ships_with_environment") is None
