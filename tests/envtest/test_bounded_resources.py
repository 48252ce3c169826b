"""Datasets are streamed: paging and appending take memory independent of the file's size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BIG_BYTES = 100 * 1024 * 1024
PROBE = r"""
import json, resource, sys
import anyio
from mcp import Client
from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server

def peak_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

async def main(workspace, home):
    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        for tool, args in (("read_dataset", {"path": "small.jsonl", "limit": 1}),
                           ("append_dataset_rows", {"path": "small.jsonl", "rows": [{"input": "w"}]})):
            assert not (await client.call_tool(tool, args)).is_error  # warm up every code path first
        base = peak_kb()
        page = await client.call_tool("read_dataset", {"path": "big.jsonl", "limit": 1, "offset": 5})
        after_read = peak_kb()
        added = await client.call_tool("append_dataset_rows", {"path": "big.jsonl", "rows": [{"input": "new"}]})
        after_append = peak_kb()
    print(json.dumps({"base": base, "read": after_read, "append": after_append,
                      "page": page.structured_content, "added": added.structured_content}))

anyio.run(main, sys.argv[1], sys.argv[2])
"""


def _big_dataset(path: Path) -> int:
    line = json.dumps({"input": "What is 2 + 2? " + "pad " * 15, "output": "4"}).encode() + b"\n"
    block = line * (1024 * 1024 // len(line))
    rows = 0
    with path.open("wb") as handle:
        while handle.tell() < BIG_BYTES:
            handle.write(block)
            rows += block.count(b"\n")
    return rows


def test_paging_and_appending_a_100_mb_dataset_stay_small(workspace: Path, isolated_home: Path) -> None:
    rows = _big_dataset(workspace / "big.jsonl")
    (workspace / "small.jsonl").write_text('{"input": "a"}\n', encoding="utf-8")
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(workspace), str(isolated_home)],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    measured = json.loads(probe.stdout.strip().splitlines()[-1])
    assert measured["page"]["total_rows"] == rows and measured["page"]["rows"][0]["id"] == "example_000005"
    assert measured["added"]["total_rows"] == rows + 1
    grown_mb = (measured["append"] - measured["base"]) / 1024  # ru_maxrss is in KiB on Linux
    # The whole file is 100 MB; loading it (as before) peaked near 1 GB. A stream needs a few MB.
    assert grown_mb < 40, measured
    assert (workspace / "big.jsonl").read_bytes().endswith(b'{"input": "new"}\n')
