"""The server's record of an evaluation accepts only rows its sealed spec names, each (row, sample) once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.domain.evaluation import record
from tests.conftest import call
from tests.evaluation.records import row_ids, store

pytestmark = pytest.mark.anyio


def forged(row_id: str, sample: int = 0, score: float | str = 1.0) -> str:
    return json.dumps({"row_id": row_id, "sample": sample, "completion": "forged", "score": score,
                       "success": True}).replace('"inf"', "Infinity") + "\n"  # fmt: skip


async def test_a_spec_naming_two_rows_yields_two_however_many_are_written(client: Client, isolated_home: Path) -> None:
    store(isolated_home, "eval-two", "base", [0.0, 0.0])
    rows_file = record.eval_dir(isolated_home, "eval-two") / record.ROWS
    a, b = row_ids(2)
    junk = [forged(a), forged(b, sample=1), forged(b, score="inf"), "{not json\n", forged("test:example_999999")]
    with rows_file.open("a") as handle:  # repeats, another sample, a non-finite score, garbage, an unknown row
        handle.write("".join(junk) + forged("test:other") * 200_000)
    found = await call(client, "get_evaluation", eval_id="eval-two", rows_limit=50)
    assert [(r["row_id"], r["score"], r["completion"]) for r in found["rows"]] == [(a, 0.0, "answer 0.0"),
                                                                                 (b, 0.0, "answer 0.0")]  # fmt: skip
    assert found["summary"]["n_rows"] == 2 and found["progress"] == {"done": 2, "total": 2}
    listed = await call(client, "list_evaluations")
    assert listed["evaluations"][0]["mean_reward"] == 0.0


async def test_forged_rows_written_first_are_rejected_and_counted(client: Client, isolated_home: Path) -> None:
    spec = store(isolated_home, "eval-late", "base", [0.0, 0.0])
    directory = record.eval_dir(isolated_home, "eval-late")
    honest = (directory / record.ROWS).read_text()
    (directory / record.ROWS).write_text(forged("test:ghost") * 3 + forged(spec.row_ids[0], 5) + honest)
    found = await call(client, "get_evaluation", eval_id="eval-late")
    assert [r["completion"] for r in found["rows"]] == ["answer 0.0", "answer 0.0"]
    assert any("4 row line(s) the spec does not name" in note for note in found["notes"]), found["notes"]
    (directory / record.ROWS).write_text(forged("test:ghost") * 5000 + honest)
    flooded = await call(client, "get_evaluation", eval_id="eval-late")
    assert flooded["rows"] == [] and any(f"{record.MAX_REJECTED} row line(s)" in n for n in flooded["notes"])
