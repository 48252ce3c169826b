"""compare_evaluations and flash://evals/{a}/vs/{b} through a real MCP client, over records in the real store."""

from __future__ import annotations

import base64
import io
import random
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from PIL import Image

from flash_mcp.domain.evaluation import record
from tests.conftest import call, call_error
from tests.evaluation.records import row_ids, store

pytestmark = pytest.mark.anyio


async def test_a_trained_adapter_that_solves_the_rows_is_improved(client: Client, isolated_home: Path) -> None:
    store(isolated_home, "eval-base", "base", [0.0] * 20, completion="I do not know")
    store(isolated_home, "eval-final", "local-1/final", [1.0] * 18 + [0.0] * 2, completion="{row}: 42")
    result = await client.call_tool("compare_evaluations", {"a": "eval-base", "b": "eval-final"})
    assert not result.is_error
    report = result.structured_content
    assert report["verdict"] == "improved" and report["rows_paired"] == 20
    low, high = report["interval"]
    assert 0 < low < report["difference"] == pytest.approx(0.9) and high <= 1.0
    assert report["mcnemar_p"] == 2 / 2**18
    assert report["flipped_improved"]["total"] == 18 and report["flipped_regressed"]["total"] == 0
    flip = report["flipped_improved"]["shown"][0]
    assert flip["completion_a"] == "I do not know" and flip["completion_b"] == f"{flip['row_id']}: 42"
    assert len(report["flipped_improved"]["shown"]) == 5 and report["flips_next_offset"] == 5
    assert report["a"]["mean"] == 0.0 and report["b"]["mean"] == pytest.approx(0.9)
    text = result.content[0].text
    assert text.startswith("# eval-final (local-1/final) vs eval-base (base): improved")
    assert "exact McNemar p = 7.63e-06" in text and "95% interval [+" in text and len(text) < 4000
    page = await call(client, "compare_evaluations", a="eval-base", b="eval-final", flips_offset=15)
    assert len(page["flipped_improved"]["shown"]) == 3 and page["flips_next_offset"] is None


async def test_two_seeds_of_one_target_are_no_detectable_difference(client: Client, isolated_home: Path) -> None:
    """The null experiment: the same model sampled twice; every row succeeds with probability 1/2."""
    sampling = {seed: record.Sampling(temperature=1.0, seed=seed) for seed in (1, 2)}
    for seed in (1, 2):
        rng = random.Random(seed)
        scores = [float(rng.random() < 0.5) for _ in range(60)]
        store(isolated_home, f"eval-s{seed}", "local-1/final", scores, sampling=sampling[seed])
    report = await call(client, "compare_evaluations", a="eval-s1", b="eval-s2")
    assert report["verdict"] == "no detectable difference"
    low, high = report["interval"]
    assert low < 0 < high and report["mcnemar_p"] > 0.05
    assert report["mde"] > abs(report["difference"]) and any("would likely go unseen" in n for n in report["notes"])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"rows": [*row_ids(12)[1:], "test:example_000099"]}, "other rows (1 only in eval-a, 1 only in eval-b"),
        ({"digest": "sha256:env-2"}, "other environment digest (sha256:env-1 vs sha256:env-2)"),
        ({"sampling": record.Sampling(temperature=0.7)}, "other temperature (0.0 vs 0.7)"),
        ({"sampling": record.Sampling(max_tokens=256)}, "other max_tokens (64 vs 256)"),
        ({"sampling": record.Sampling(samples_per_row=2)}, "other samples_per_row (1 vs 2)"),
    ],
)
async def test_evaluations_measured_with_another_ruler_are_refused(
    client: Client, isolated_home: Path, change: dict, named: str
) -> None:
    store(isolated_home, "eval-a", "base", [0.0] * 12)
    samples = change.get("sampling", record.Sampling()).samples_per_row
    store(isolated_home, "eval-b", "local-1/final", [[1.0] * samples] * 12, **change)
    message = await call_error(client, "compare_evaluations", a="eval-a", b="eval-b")
    assert "not measured with the same ruler" in message and named in message, message
    with pytest.raises(MCPError, match="not measured with the same ruler") as refused:
        await client.read_resource("flash://evals/eval-a/vs/eval-b")
    assert named in str(refused.value)


async def test_unfinished_missing_and_self_comparisons_are_refused(client: Client, isolated_home: Path) -> None:
    store(isolated_home, "eval-done", "base", [0.0] * 12)
    store(isolated_home, "eval-running", "local-1/final", [1.0] * 3, rows=row_ids(12)[:3], state="running")
    running = await call_error(client, "compare_evaluations", a="eval-done", b="eval-running")
    assert "eval-running is still running" in running and "names no winner" in running and "get_evaluation" in running
    missing = await call_error(client, "compare_evaluations", a="eval-done", b="eval-nope")
    assert "no evaluation 'eval-nope'" in missing
    itself = await call_error(client, "compare_evaluations", a="eval-done", b="eval-done")
    assert "with itself" in itself


async def test_samples_average_within_a_row_errored_rows_are_left_out_and_truncated_rows_count(
    client: Client, isolated_home: Path
) -> None:
    sampling = record.Sampling(samples_per_row=3, temperature=1.0)
    store(isolated_home, "eval-a", "base", [[0.0, 0.0, 1.0]] * 12, sampling=sampling)
    ids = row_ids(12)
    store(isolated_home, "eval-b", "local-1/final", [[1.0, 1.0, 0.0]] * 12, sampling=sampling,
          errored=set(ids[:3]), truncated=set(ids[3:5]))  # fmt: skip
    report = await call(client, "compare_evaluations", a="eval-a", b="eval-b")
    assert report["rows_paired"] == 9 and report["rows_left_out"] == 3
    assert report["difference"] == pytest.approx(1 / 3) and report["mde"] is None
    assert report["a"]["successes"] == 0 and report["b"]["successes"] == 9, "a row succeeds by majority"
    assert report["b"]["share_errored"] == 0.25 and report["b"]["share_truncated"] == pytest.approx(1 / 6)
    assert any("answers errored: A 0%, B 25%; errored rows are left out" in n for n in report["notes"])
    assert any("answers truncated at max_tokens: A 0%, B 17%" in n for n in report["notes"])


async def test_the_comparison_reads_as_resources_text_and_chart(client: Client, isolated_home: Path) -> None:
    rng = random.Random(4)
    store(isolated_home, "eval-base", "base", [round(rng.random() * 0.6, 2) for _ in range(40)])
    store(isolated_home, "eval-final", "local-1/final", [round(0.3 + rng.random() * 0.7, 2) for _ in range(40)])
    uri = "flash://evals/eval-base/vs/eval-final"
    text = (await client.read_resource(uri)).contents[0].text
    assert text.startswith("# eval-final (local-1/final) vs eval-base (base): ")
    assert "smallest detectable difference with 40 rows" in text and "## Improved" in text
    content = (await client.read_resource(f"{uri}/chart.png")).contents[0]
    assert content.mime_type == "image/png"
    png = base64.b64decode(content.blob)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (800, 360) and 10_000 < len(png) < 400_000
    templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
    assert "flash://evals/{a}/vs/{b}" in templates and "flash://evals/{a}/vs/{b}/chart.png" in templates


async def test_a_disagreement_between_the_interval_and_mcnemar_is_spelled_out(
    client: Client, isolated_home: Path
) -> None:
    """Five of twenty rows flip to success: the mean moves beyond its interval, but an exact test on five
    discordant rows can never go below p = 2/32."""
    store(isolated_home, "eval-a", "base", [0.0] * 20)
    store(isolated_home, "eval-b", "local-1/final", [1.0] * 5 + [0.0] * 15)
    report = await call(client, "compare_evaluations", a="eval-a", b="eval-b")
    assert report["verdict"] == "mean reward improved; success no detectable difference (0/20 → 5/20)"
    assert report["reward_verdict"] == "improved" and report["success_verdict"] == "no detectable difference"
    assert report["mcnemar_p"] == 2 / 32
    assert any("success alone is not significant (McNemar p = 0.0625, 5 row(s)" in n for n in report["notes"])
    assert any("smallest p possible with them is 0.0625" in n for n in report["notes"])


def test_the_human_can_run_the_same_comparison_from_the_command_line(isolated_home: Path, tmp_path: Path) -> None:
    store(isolated_home, "eval-base", "base", [0.0] * 20)
    store(isolated_home, "eval-final", "local-1/final", [1.0] * 18 + [0.0] * 2)
    chart = tmp_path / "cmp.png"
    command = [sys.executable, "-m", "flash_mcp", "compare", "eval-base", "eval-final", "--chart", str(chart)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# eval-final (local-1/final) vs eval-base (base): improved")
    assert Image.open(chart).format == "PNG"
    store(isolated_home, "eval-long", "local-1/final", [1.0] * 20, sampling=record.Sampling(max_tokens=512))
    refused = subprocess.run([*command[:3], "compare", "eval-base", "eval-long"], capture_output=True, text=True,
                             timeout=120, check=False)  # fmt: skip
    assert refused.returncode == 2 and "other max_tokens (64 vs 512)" in refused.stderr


async def test_when_no_row_was_scored_on_both_sides_nothing_is_claimed(client: Client, isolated_home: Path) -> None:
    store(isolated_home, "eval-a", "base", [0.0] * 12, errored=set(row_ids(12)))
    store(isolated_home, "eval-b", "local-1/final", [1.0] * 12)
    result = await client.call_tool("compare_evaluations", {"a": "eval-a", "b": "eval-b"})
    report = result.structured_content
    assert report["verdict"] == "no detectable difference" and report["rows_paired"] == 0
    assert report["rows_left_out"] == 12 and report["mde"] is None and report["a"]["mean"] is None
    assert "no row was scored on both sides" in result.content[0].text


async def test_format_credit_alone_is_headlined_as_what_it_is(client: Client, isolated_home: Path) -> None:
    """Mean reward up through partial (format) credit, success unchanged at 0/20: only the reward improved."""
    store(isolated_home, "eval-a", "base", [0.0] * 20, completion="{row}: no tags")
    store(isolated_home, "eval-b", "local-1/final", [0.3] * 20, completion="{row}: <answer></answer>")
    result = await client.call_tool("compare_evaluations", {"a": "eval-a", "b": "eval-b"})
    report = result.structured_content
    assert report["verdict"] == "mean reward improved; success no detectable difference (0/20 → 0/20)"
    assert report["reward_verdict"] == "improved" and report["success_verdict"] == "no detectable difference"
    assert result.content[0].text.startswith("# eval-b (local-1/final) vs eval-a (base): mean reward improved; "
                                             "success no detectable difference (0/20 → 0/20)")  # fmt: skip


async def test_identical_completions_scored_apart_on_the_two_sides_get_no_verdict(
    client: Client, isolated_home: Path
) -> None:
    """The issue's forged comparison: the same completion on every row, scored 0 for base and 1 for the adapter."""
    store(isolated_home, "eval-a", "base", [0.0] * 20, completion="the same answer")
    store(isolated_home, "eval-b", "local-1/final", [1.0] * 20, completion="the same answer")
    result = await client.call_tool("compare_evaluations", {"a": "eval-a", "b": "eval-b"})
    report = result.structured_content
    assert report["verdict"] == "unstable or target-aware reward" and report["reward_verdict"] is None
    assert report["consistency"]["disagreements"] == 20 and report["consistency"]["rescored"] == 0
    assert "no longer kept here" in report["consistency"]["not_rescored"], "no package was ever pushed for it"
    assert report["consistency"]["examples"][0]["scores"] == {"A": 0.0, "B": 1.0}
    assert "- test:example_000000: 'the same answer' scored A 0, B 1" in result.content[0].text


def test_a_plane_that_cannot_rescore_says_so_and_the_cross_side_check_still_runs(isolated_home: Path) -> None:
    from flash_mcp.loop import compare
    from flash_mcp.planes.memory import MemoryPlane

    plane = MemoryPlane(isolated_home)
    store(isolated_home, "eval-a", "base", [0.0] * 12 + [1.0] * 8, completion="{row} {score}")
    store(isolated_home, "eval-b", "local-1/final", [1.0] * 20, completion="{row} {score}")
    report = compare.compare(isolated_home, "eval-a", "eval-b", rescore=compare.through(lambda name: plane))
    assert plane.calls["rescore"] == 1 and report.consistency.rescored == 0
    assert report.consistency.not_rescored == "the memory plane keeps no environment to re-score with"
    assert report.consistency.disagreements == 0 and report.verdict == "improved"
    assert "not re-scored (the memory plane keeps no environment" in compare.render(report)
