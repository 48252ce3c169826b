"""The reward audit beyond fixed probes: rewards too strict to learn from warn with the share of rows
and the GRPO zero-advantage share; tolerant strict rewards do not; derived probes build wrong answers
from the data. Real environments on the freesolo SDK, driven through the MCP client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.domain.envtest import derived, probes
from tests.conftest import call
from tests.envs import projects as seeds
from tests.envs.scorers import STRICT, TOLERANT, TOO_STRICT, Scorer

pytestmark = pytest.mark.anyio
ROWS = 12


@pytest.fixture
async def client(settings) -> AsyncIterator[Client]:
    from flash_mcp.server import build_server

    async with Client(build_server(settings)) as connected:
        yield connected


async def _report(client: Client, workspace: Path, scorer: Scorer) -> dict:
    seeds.make_project(workspace, "p", scorer.source(), scorer.rows(ROWS))
    return await call(client, "test_environment", directory="p", config="p/configs/rl.toml")


@pytest.mark.parametrize("name", TOO_STRICT)
async def test_a_reward_too_strict_to_learn_from_warns(client: Client, workspace: Path, name: str) -> None:
    report = await _report(client, workspace, TOO_STRICT[name])
    [warning] = [w for w in report["warnings"] if w["code"] == "too-strict"]
    strict = report["audit"]["too_strict"]
    assert strict["rows_affected"] == strict["rows_probed"] == ROWS and strict["share"] == 1.0
    assert strict["zero_advantage_share"] == 1.0 and "zero advantage" in warning["message"]
    example = strict["examples"][0]
    assert example["score"] < example["gold_score"] and example["form"] in strict["forms"]
    assert report["verdict"] == "pass", "too strict is a warning: nothing can be gamed"


@pytest.mark.parametrize("name", TOLERANT)
async def test_a_strict_reward_that_accepts_ordinary_forms_draws_no_warning(
    client: Client, workspace: Path, name: str
) -> None:
    report = await _report(client, workspace, STRICT[name])
    assert not [w for w in report["warnings"] if w["code"] == "too-strict"], report["warnings"]
    assert report["audit"]["too_strict"]["rows_affected"] == 0 and report["verdict"] == "pass"


def test_derived_probes_are_wrong_answers_built_from_the_data() -> None:
    shape = probes.detect_shape("<answer>42</answer>")
    built = derived.derived_probes(shape, "49", "Tom has 17 apples and 25 pears.", ("7",))
    assert built["other-gold"] == "<answer>7</answer>"
    assert built["zero"] == "<answer>0</answer>" and built["negative"] == "<answer>-42</answer>"
    assert built["part"] == "<answer>4</answer>" and built["prompt-value"] == "<answer>Tom</answer>"
    assert "42" not in built["overflow"] and "42" not in built["huge"]
    assert built["hedge-last"] == "<answer>49 or 42</answer>"
    for name, text in built.items():
        assert text != "<answer>42</answer>", name


def test_equivalents_render_the_same_answer() -> None:
    shape = probes.detect_shape('{"answer": 3, "unit": "m"}')
    forms = derived.equivalents(shape, '{"answer": 3, "unit": "m"}')
    assert forms["json-compact"] == '{"answer":3,"unit":"m"}' and "\n" in forms["json-pretty"]
    assert derived.equivalents(probes.detect_shape("Paris"), "Paris")["case"] == "paris"
    assert (
        derived.equivalents(probes.detect_shape("<answer>2.50</answer>"), "<answer>2.50</answer>")["decimal-form"]
        == "<answer>2.5</answer>"
    )


def test_parts_of_the_gold_that_still_hold_its_answer_are_not_wrong_answers() -> None:
    shape = probes.detect_shape("51 eggs")
    built = derived.derived_probes(shape, "58 eggs", "What is 50 + 1? Say 51 if sure.", ())
    assert built["part"] == "5" and built["prompt-value"] == "What"
    assert all(text.strip() != "51" for text in built.values()), built


def test_equivalents_cover_numeric_forms_reordered_sums_and_units() -> None:
    def forms(gold: str) -> dict[str, str]:
        return derived.equivalents(probes.detect_shape(gold), gold)

    assert forms("0.5")["fraction-form"] == "1/2" and forms("1/2")["expression"] == "0.5"
    assert forms("3")["decimal-form"] == "3.0" and forms("3.0")["decimal-form"] == "3"
    assert forms("2*x+1")["reordered"] == "1+2*x" and forms("51 eggs")["no-unit"] == "51"
    assert forms("3/8")["expression"] == "0.375" and forms("0.125")["fraction-form"] == "1/8"
    assert "expression" not in forms("1/3") and "fraction-form" not in forms("0.333"), "only ordinary renderings"


@pytest.mark.parametrize("gold", ["52.00", "13.5 km", "<answer>2.50</answer>", "1.0", "12.5%"])
def test_no_wrong_probe_is_the_gold_value_in_another_decimal_form(gold: str) -> None:
    """52 for 52.00 and 13.50 km for 13.5 km are the gold: a scorer paying them is right, never gamed."""
    from fractions import Fraction

    from flash_mcp.domain.envtest import search

    shape = probes.detect_shape(gold)
    value = Fraction(derived.answer_token(shape.value.strip()))
    built = derived.derived_probes(shape, probes.near_value(shape.value), "", ())
    wrong_texts = [built[name] for name in derived.DERIVED_FAMILIES["derived-wrong"] if name in built]
    wrong_texts += [c.value for seed in range(40) for c in search.cases(shape, seed) if not c.hedge]
    for text in wrong_texts:
        numbers = re.findall(r"[+-]?\d+(?:\.\d+)?", text)
        assert not any(Fraction(n) == value for n in numbers if len(n) < 30), (gold, text)


def test_a_single_letter_gold_has_its_other_case_as_an_equivalent() -> None:
    assert derived.equivalents(probes.detect_shape("B"), "B")["case"] == "b"


@pytest.mark.parametrize(
    ("gold", "form", "written"),
    [("25%", "percent-word", "25 percent"), ("0.00012", "scientific", "1.2e-4"), ("7, 11", "list-and", "7 and 11"),
     ("14:30", "twelve-hour", "2:30 PM"), ("1776-07-04", "written-date", "July 4, 1776"),
     ("Paris", "full-stop", "Paris."), ("Antonín Dvořák", "no-accents", "Antonin Dvorak"),
     ("5kg", "unit-spacing", "5 kg"), ("3.5 km", "unit-spacing", "3.5km"),
     ("2 hours 30 minutes", "short-duration", "2h 30m"), ("2 hours 30 minutes", "decimal-duration", "2.5 hours"),
     ('{"answer": 34}', "decimal-form", '{"answer": 34.0}')],
)  # fmt: skip
def test_equivalents_include_the_forms_people_also_write(gold: str, form: str, written: str) -> None:
    assert derived.equivalents(probes.detect_shape(gold), gold)[form] == written
    assert "full-stop" not in derived.equivalents(probes.detect_shape("51 eggs"), "51 eggs"), "51 eggs. is odd"


@pytest.mark.parametrize("gold", ["a, e, i, o, u", "A, C, E", "apple, pear"])
def test_a_wrong_list_is_another_list_never_the_same_items_reordered(gold: str) -> None:
    """For an order-free question "u, o, i, e, a" is the gold: a wrong probe changes an item instead."""

    def items(text: str) -> set[str]:
        return {item.strip() for item in text.split(",")}

    for wrong in (probes.near_value(gold), probes.other_value(gold)):
        assert items(wrong) != items(gold) and wrong.count(",") == gold.count(","), wrong


@pytest.mark.parametrize(
    ("gold", "absent"),
    [("def add(a, b):\n    return a+b", {"reordered", "full-stop", "list-and"}), ("12 eggs", {"unit-spacing"}),
     ('{"name": "Maria", "age": "34"}', {"case", "decimal-form"}), ("f(a, b), g(c)", {"list-and", "list-compact"})],
)  # fmt: skip
def test_no_equivalent_changes_code_words_or_a_json_string(gold: str, absent: set[str]) -> None:
    """Code reordered, "12eggs", a JSON string's case or "34.0" for the string "34" are not the same answer."""
    assert not absent & derived.equivalents(probes.detect_shape(gold), gold).keys()


def test_a_json_answer_without_its_field_is_an_empty_answer() -> None:
    built = probes.build(probes.detect_shape('{"answer": 3, "unit": "m"}'), None)
    assert built["empty-object"] == "{}" and built["answer-dropped"] == '{"unit": "m"}'
    assert probes.FAMILY_OF["empty-object"] == probes.FAMILY_OF["answer-dropped"] == "empty"


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("gold", ["²", "٣"])
def test_a_gold_of_digits_int_cannot_or_can_read_gets_its_probes(gold: str, full: bool) -> None:
    """ "²" is a digit that is not a decimal, "٣" an Arabic-Indic decimal: neither stops the row's probes."""
    scored = probes.run_probes(gold, (1.0, 0.0), lambda text: float(text == gold), full=full, prompt="q")
    assert {"near", "several"} <= set(scored["pr"]) and gold not in (probes.near_value(gold), "")
