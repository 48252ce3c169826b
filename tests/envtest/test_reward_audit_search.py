"""The seeded search: reproducible by its seed, only wrong answers, findings shrunk to a minimal example, and
reported through MCP with the seed that reproduces them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.domain.envtest import search
from flash_mcp.domain.envtest.derived import equivalents
from flash_mcp.domain.envtest.shapes import detect_shape, is_code
from tests.conftest import call
from tests.envs import projects as seeds
from tests.envs.scorers import OPEN

pytestmark = pytest.mark.anyio
GOLDS = [
    "42",
    "<answer>7</answer>",
    "Paris",
    "2*x+1",
    '{"answer": 3, "unit": "m"}',
    "6 plus 6\n#### 12",
    "0.5",
    "51 eggs",
]


@pytest.mark.parametrize("gold", GOLDS)
def test_the_search_is_reproducible_by_its_seed_and_never_builds_the_gold(gold: str) -> None:
    shape = detect_shape(gold)
    drawn = search.cases(shape, search.row_seed(5))
    assert drawn == search.cases(shape, search.row_seed(5)) and len(drawn) == search.CASES
    assert drawn != search.cases(shape, search.row_seed(6)), "another row, other cases"
    right = {gold.strip(), *(form.strip() for form in equivalents(shape, gold).values())}
    for case in drawn:
        assert case.text(shape, decorated=False).strip() not in right and case.value.strip() != shape.value.strip()


def test_a_finding_is_shrunk_to_a_minimal_example() -> None:
    shape = detect_shape("42")

    def pays_marker(text: str) -> float:
        return float(text.strip() == "42" or text.lower().startswith("final answer:"))

    found = next(
        (search.search(shape, 1.0, pays_marker, search.row_seed(i)) for i in range(50)
         if "sx" in search.search(shape, 1.0, pays_marker, search.row_seed(i))),
        None,
    )  # fmt: skip
    assert found is not None and found["sx"]["t"].startswith("Final answer: ")
    assert len(found["sx"]["t"]) <= len("Final answer: 42"), found["sx"]
    assert len(found["sr"]) == 2 * search.CASES


def test_a_strict_scorer_has_no_finding() -> None:
    for gold in GOLDS:
        shape = detect_shape(gold)
        for index in range(20):
            out = search.search(
                shape, 1.0, lambda text, g=gold: float(text.strip() == g.strip()), search.row_seed(index)
            )
            assert "sx" not in out and max(out["sr"]) == 0.0


@pytest.fixture
async def client(settings) -> AsyncIterator[Client]:
    from flash_mcp.server import build_server

    async with Client(build_server(settings)) as connected:
        yield connected


async def test_the_report_names_the_seed_and_the_minimal_example(client: Client, workspace: Path) -> None:
    scorer = OPEN["pays-answer-marker"]
    seeds.make_project(workspace, "p", scorer.source(), scorer.rows(12))
    report = await call(client, "test_environment", directory="p", config="p/configs/rl.toml")
    found = next(f for f in report["audit"]["families"] if f["family"] == "search")
    assert found["status"] == "open" and report["verdict"] == "fail" and report["audit"]["search_seed"] == search.SEED
    example = found["example"]
    assert "seed" in example["probe"] and example["response"].lower().startswith("final answer:")
    [warning] = [w for w in report["warnings"] if w["code"] == "search-credit"]
    assert "seed" in warning["message"] and "Fix:" in warning["message"]


@pytest.mark.parametrize("gold", ["def mx(a, b):\n    return max(a, b)", "SELECT name FROM users"])
def test_code_is_never_hedged(gold: str) -> None:
    """`return max(a, b); junk` runs as the gold: for code a hedge is a right answer, not a gamed one."""
    shape = detect_shape(gold)
    assert is_code(shape) and not any(case.hedge for seed in range(30) for case in search.cases(shape, seed))
    assert any(case.hedge for seed in range(30) for case in search.cases(detect_shape("42"), seed))
