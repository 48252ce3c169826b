"""A lane's examples are the SDK's examples: converted up front for its own rows, on first use for the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flash_mcp.runtime import load
from tests.envs import projects as seeds


@pytest.mark.parametrize("source", ["dataset file", "in-code dataset", "another split's file"])
def test_a_lanes_examples_equal_the_whole_load(tmp_path: Path, source: str) -> None:
    rows = [{"input": f"q{i}", "output": str(i), "metadata": {"n": i}, "id": "ignored"} for i in range(9)]
    project = seeds.make_project(tmp_path, "p", seeds.environment(), rows)
    sources = {"dataset file": {}, "in-code dataset": {"records": rows}, "another split's file": {"split": "test"}}
    params = sources[source]
    if source == "another split's file":  # read from the file by the loader, not from the environment's dataset
        (project / "dataset" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[::-1]))
    whole = load({"entrypoint": str(project / "environment.py"), "params": dict(params)})[1]
    for lane in ((0, 1), (0, 2), (1, 2), (2, 3)):
        _, examples, info = load({"entrypoint": str(project / "environment.py"), "params": dict(params)}, lane=lane)
        assert info["rows"] == len(examples) == len(whole) == 9
        assert [examples[i] for i in (8, 0, 5)] == [whole[8], whole[0], whole[5]], "rows read out of order"
        assert list(examples) == list(whole) and examples[-1] == whole[-1]
        assert [example.id for example in examples] == [f"example_{i:06d}" for i in range(9)]
        assert examples[0].input == ("q8" if source == "another split's file" else "q0")


def test_a_malformed_row_of_the_lane_fails_the_load(tmp_path: Path) -> None:
    project = seeds.make_project(tmp_path, "p", seeds.environment(), [{"input": "q", "output": "1"}] * 4)
    dataset = project / "dataset" / "train.jsonl"
    lines = dataset.read_text().splitlines()
    lines[3] = json.dumps({"output": "no input"})
    dataset.write_text("\n".join(lines) + "\n")
    job = {"entrypoint": str(project / "environment.py"), "params": {}}
    with pytest.raises(ValueError, match="must contain input"):
        load(job, lane=(1, 2))
    assert load(job, lane=(0, 2))[1][0].input == "q", "the other lane's rows are read when it needs them"
