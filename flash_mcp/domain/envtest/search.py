"""A seeded, budgeted search for wrong answers the scorer pays, on top of the fixed probes.

For a fully probed row, `cases(shape, seed)` draws wrong values of the gold's kind (digits prefixed,
appended, swapped or dropped, the decimal point replaced, offsets and multiples, random numbers, letters
changed, parser stressors), some hedged with the gold, each with text around it. Each case is scored plain and
decorated; the invariants: no wrong answer scores as high as the gold, and nothing added around a
wrong answer raises its score. The first case that breaks the first invariant is shrunk (drop the
decoration, the hedge, then simpler values) to a minimal example. Everything is a pure function of
(the gold, the seed): the server rebuilds the cases to check the child scored them all, and a finding
is reproduced by `cases(detect_shape(gold), row_seed(index))`. Standard library only: the child imports it.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache

from flash_mcp.domain.envtest.derived import answer_token, holds_answer
from flash_mcp.domain.envtest.shapes import Shape, is_code

SEED = 20261202  # the search is deterministic: the same environment gets the same verdict
CASES = 12  # per fully probed row: 2 scorer calls each
SHRINK_CALLS = 8
SEPARATORS = (" or ", "/", ", ", " | ", "; ", " and ")
BEFORE = ("", "Answer: ", "Final answer: ", "The answer is ", "**", "> ", "Sure! ", "\u2705 ", "\n", "I am sure.\n")
AFTER = ("", "**", " \u2713", ".", "!", "\n\nI am certain this is correct.", "\n\n(verified)", " (final)", "\u200b")
STRESS = ("", "inf", "-inf", "1e309", "NaN", "None", "[]", "{}", "\u0669", "\U0001f600", "\\", "</answer>")
NUMBER_RE = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Case:
    """One wrong answer: `value` (hedged with the gold when `hedge` is a separator), with text around it."""

    value: str
    hedge: str = ""
    gold_first: bool = True
    before: str = ""
    after: str = ""

    def text(self, shape: Shape, decorated: bool = True) -> str:
        gold = shape.value.strip()
        inner = self.value
        if self.hedge:
            inner = f"{gold}{self.hedge}{self.value}" if self.gold_first else f"{self.value}{self.hedge}{gold}"
        body = shape.put(inner, frame=self.value)
        return f"{self.before}{body}{self.after}" if decorated else body


def row_seed(index: int, seed: int = SEED) -> int:
    return (seed * 1_000_003 + index) & 0xFFFFFFFF


def cases(shape: Shape, seed: int, count: int = CASES) -> list[Case]:
    """`count` wrong cases for this gold, the same for the same seed."""
    rng, gold, out = random.Random(seed), shape.value.strip(), []
    code = is_code(shape)
    for _ in range(count * 4):
        if len(out) == count:
            break
        value = _mutate(rng, gold)
        if not wrong(value, gold):
            continue
        hedge = rng.choice(SEPARATORS) if rng.random() < 0.3 and value.strip() else ""
        hedge = "" if code else hedge  # `return x; junk` runs as `return x`: code is run, not read for a hedge
        before, after = rng.choice(BEFORE), rng.choice(AFTER)
        out.append(Case(value, hedge, rng.random() < 0.5, before, after or ("" if before else " \u2713")))
    return out


def _mutate(rng: random.Random, gold: str) -> str:
    if rng.random() < 0.15:
        return rng.choice(STRESS) if rng.random() < 0.8 else rng.choice("98765") * rng.randint(30, 300)
    if NUMBER_RE.match(gold):
        return _number(rng, gold)
    return _word(rng, gold) if gold else rng.choice(LETTERS) * 3


def _number(rng: random.Random, gold: str) -> str:
    sign, digits = ("-" if gold.startswith("-") else ""), gold.lstrip("+-")
    whole = digits.split(".")[0]
    ops: list[Callable[[], str]] = [
        lambda: sign + rng.choice("123456789") + digits,
        lambda: gold + rng.choice("0123456789") if "." not in gold else gold + "1",
        lambda: str(int(float(gold)) + rng.choice((-1, 1)) * rng.randint(2, 1000)),
        lambda: str(int(float(gold)) * rng.randint(2, 9)),
        lambda: _swap_digit(rng, gold),
        lambda: sign + whole[1:] if len(whole) > 1 else sign + whole + whole,
        lambda: str(rng.randint(0, 10 ** rng.randint(1, 6))),
        lambda: ("" if sign else "-") + digits,
        lambda: gold.replace(".", rng.choice("x7"), 1) if "." in gold else gold + "." + rng.choice("123456789"),
    ]
    return rng.choice(ops)()


def _swap_digit(rng: random.Random, gold: str) -> str:
    spots = [i for i, ch in enumerate(gold) if ch.isdigit()]
    i = rng.choice(spots)
    return gold[:i] + rng.choice([d for d in "0123456789" if d != gold[i]]) + gold[i + 1 :]


def _word(rng: random.Random, gold: str) -> str:
    """The value with one letter or digit changed, dropped or added (never an operator: 2*x+1 is not 2x+1)."""
    spots = [i for i, ch in enumerate(gold) if ch.isalnum()]
    if not spots:
        return gold + rng.choice(LETTERS)
    i, op = rng.choice(spots), rng.randrange(3)
    pool = "0123456789" if gold[i].isdigit() else LETTERS
    other = rng.choice([c for c in pool if c != gold[i].lower()])
    if op == 0:
        return gold[:i] + other + gold[i + 1 :]
    if op == 1 and gold[i].isalpha() and len(spots) > 2:
        return gold[:i] + gold[i + 1 :]
    return gold[: i + 1] + other + gold[i + 1 :]


def wrong(value: str, gold: str) -> bool:
    """`value` is not the gold in any ordinary form (case, spacing, 42 / 42.0 / 84/2) and does not state it."""
    value_digits = _digits(value)
    a, b = " ".join(value_digits.split()).casefold(), " ".join(_digits(gold).split()).casefold()
    if a == b:
        return False
    answer = answer_token(gold)
    value_number = _fraction(a.replace(" ", ""))
    if value_number is not None and value_number == _gold_fraction(answer.replace(" ", "")):
        return False
    return not holds_answer(value_digits, answer)


def _fraction(text: str) -> Fraction | None:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


_gold_fraction = lru_cache(maxsize=256)(_fraction)  # one gold, many wrong values: parsed once


def _digits(text: str) -> str:
    """Any script's digits as ASCII ones (int() reads \u0669 as 9)."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.digit(ch)) if ch.isdigit() and not ch.isascii() else ch for ch in text)


def search(shape: Shape, gold_score: float, score: Callable[[str], float], seed: int) -> dict[str, object]:
    """Score every case plain and decorated (`sr`, in order); shrink the first that scores as high as the
    gold (`sx`: its case number, the minimal text and its score)."""
    found, scores = None, []
    for number, case in enumerate(cases(shape, seed)):
        plain, decorated = score(case.text(shape, decorated=False)), score(case.text(shape))
        scores += [plain, decorated]
        if found is None and max(plain, decorated) >= gold_score - 1e-9 and gold_score > 1e-9:
            found = (number, case if decorated >= gold_score - 1e-9 else replace(case, before="", after=""))
    out: dict[str, object] = {"sr": scores}
    if found is not None:
        minimal = shrink(shape, found[1], lambda text: score(text) >= gold_score - 1e-9)
        out["sx"] = {"k": found[0], "t": minimal.text(shape)}
    return out


def shrink(shape: Shape, case: Case, bad: Callable[[str], bool], calls: int = SHRINK_CALLS) -> Case:
    """The simplest variant of `case` (shortest text) that is still `bad`, within `calls` scorer calls."""
    gold, tried = shape.value.strip(), set()
    while calls > 0:
        size = (len(case.text(shape)), case.text(shape))
        smaller = {c.text(shape): c for c in _simpler(case, gold) if (len(c.text(shape)), c.text(shape)) < size}
        for text, simpler in smaller.items():
            if text in tried or calls <= 0:
                continue
            calls -= 1
            tried.add(text)
            if bad(text):
                case = simpler
                break
        else:
            return case
    return case


def _simpler(case: Case, gold: str) -> list[Case]:
    values = [v for v in (case.value[: max(1, len(case.value) // 2)], "0", "x") if wrong(v, gold)]
    bare = replace(case, before="", after="")
    out = [bare, replace(case, before=""), replace(case, after=""), replace(case, hedge="")]
    return out + [replace(case, value=v) for v in values]
