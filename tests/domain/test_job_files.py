"""domain/job_files.py on real directories: what an ended job left, brought to its layout without ever writing
through a link, a hard link or a FIFO the job planted."""

from __future__ import annotations

import json
import os
from pathlib import Path

from flash_mcp.domain import job_files
from flash_mcp.domain.job_files import HEAD, TAIL, Cap, Layout
from flash_mcp.domain.runs import rundir

SMALL = Layout(files={"rows.jsonl": Cap(100, HEAD), "metrics.jsonl": Cap(100, TAIL)}, what="the job")


def rows(count: int) -> bytes:
    return b"".join(json.dumps({"step": i}).encode() + b"\n" for i in range(count))  # 12-13 bytes a line


def test_a_head_and_a_tail_keep_whole_lines_only(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_bytes(rows(50))
    (tmp_path / "metrics.jsonl").write_bytes(rows(50))
    notes = job_files.settle(tmp_path, SMALL, None)
    head, tail = (tmp_path / "rows.jsonl").read_bytes(), (tmp_path / "metrics.jsonl").read_bytes()
    assert len(head) <= 100 and head.endswith(b"\n") and head.startswith(b'{"step": 0}\n')
    assert len(tail) <= 100 and tail.endswith(b'{"step": 49}\n') and all(map(json.loads, tail.splitlines()))
    assert notes == ["when the job ended, flash-mcp capped metrics.jsonl to its last 100 bytes, "
                     "rows.jsonl to its first 100 bytes"]  # fmt: skip


def test_a_hard_link_a_fifo_and_a_linked_folder_are_never_written_through(tmp_path: Path) -> None:
    job, elsewhere = tmp_path / "job", tmp_path / "elsewhere"
    job.mkdir()
    elsewhere.mkdir()
    (elsewhere / "big.jsonl").write_bytes(rows(50))
    os.link(elsewhere / "big.jsonl", job / "metrics.jsonl")  # the same inode as a file outside the job's folder
    os.mkfifo(job / "rows.jsonl")  # a reader would block on it
    (elsewhere / "adapter").mkdir()
    (elsewhere / "adapter" / "weights").write_bytes(b"w" * 10)
    (job / rundir.CHECKPOINTS).symlink_to(elsewhere / "adapter")
    layout = Layout(files=SMALL.files, folders={rundir.CHECKPOINTS: None})
    notes = job_files.settle(job, layout, None)
    assert (elsewhere / "big.jsonl").read_bytes() == rows(50), "the other name of the inode is untouched"
    assert len((job / "metrics.jsonl").read_bytes()) <= 100 and not (job / "metrics.jsonl").samefile(
        elsewhere / "big.jsonl"
    )
    assert sorted(os.listdir(job)) == ["metrics.jsonl"], "the FIFO and the link are gone"
    assert (elsewhere / "adapter" / "weights").read_bytes() == b"w" * 10, "the link's target is untouched"
    assert "rows.jsonl" in notes[0] and "checkpoints (a link)" in notes[0], notes


def test_a_log_keeps_its_start_and_its_end_and_says_what_was_cut(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"start\n" + b"." * 5000 + b"\nthe error at the end\n")
    job_files.settle(tmp_path, Layout(files={"log": Cap(1000, job_files.ENDS)}), None)
    text = (tmp_path / "log").read_bytes()
    assert text.startswith(b"start\n") and text.endswith(b"the error at the end\n") and len(text) <= 1000
    assert b"bytes removed here when the job ended: over 1000 bytes" in text
