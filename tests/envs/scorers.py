"""A corpus of rewards for the reward audit: each open one falls to known exploit families, the
strict ones to none. Built as real environment.py files on the freesolo SDK (tests/envs/projects.py).

Each entry: the gold's shape (how `output` states the answer), the score_response body, and the
families the audit must report `open` and `partial`; `any_answer` marks rows with an empty gold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tests.envs.projects import environment

TOP = "\nimport random\nimport re\n\nTAGS = re.compile(r'<answer>(.*?)</answer>', re.S)\n"
GOLD = "        gold = str(example.output).strip()\n"
VALUE = "        value = str(example.metadata['value'])\n"


@dataclass(frozen=True)
class Scorer:
    shape: str  # bare tag boxed json line think unit symbol decimal decimal-zero fraction expression
    body: str
    open: frozenset[str] = frozenset()
    partial: frozenset[str] = frozenset()
    empty_gold_rows: tuple[int, ...] = ()
    extra: str = field(default="")
    threshold: float = math.inf  # the reward's own success threshold, where it declares one

    def source(self) -> str:
        score = "\n    def score_response(self, example, response_text):\n" + self.body
        return environment(score=score + self.extra, top=TOP)

    def rows(self, count: int) -> list[dict]:
        out = []
        for i in range(count):
            value = _value(self.shape, i)
            output = "" if i in self.empty_gold_rows else _shaped(self.shape, value, i)
            out.append({"input": f"What is {i} + 1?", "output": output, "metadata": {"value": value}})
        return out


def _value(shape: str, i: int) -> str:
    """The row's answer value: a decimal (0.5, 1.5, ...), an integral decimal (1.0), an expression, or i + 1."""
    forms = {
        "decimal": f"{i}.5",
        "decimal-zero": f"{i + 1}.0",
        "fraction": f"{2 * i + 1}/2",
        "expression": f"2*x+{i + 1}",
    }
    return forms.get(shape, str(i + 1))


def _shaped(shape: str, value: str, i: int) -> str:
    if shape in ("decimal", "decimal-zero", "fraction", "expression"):
        return value
    return {
        "unit": f"{value} eggs",
        "bare": value,
        "tag": f"<answer>{value}</answer>",
        "boxed": f"Add {i} and 1.\n\\boxed{{{value}}}",
        "json": f'{{"answer": {value}, "unit": "none"}}',
        "line": f"{i} plus 1 makes {value}.\n#### {value}",
        "think": f"<think>add one to the number</think>\n{value}",
        "symbol": f"{value} kg",
    }[shape]


# every wrong answer in a \boxed{} earns 0.6, over the 0.5 success threshold: each family that boxes one is open
THRESHOLD_CLEARED = (
    "decoration derived-wrong empty format hedge injection length near-miss parser reasoning several-answers"
)


def _r(expr: str) -> str:
    return f"        return RewardResult(score=float({expr}))\n"


OPEN: dict[str, Scorer] = {
    # several answers across wrappers: any tag that matches pays
    "any-tag-matches": Scorer(
        "tag",
        VALUE + _r("value in [t.strip() for t in TAGS.findall(response_text)]"),
        open=frozenset({"several-answers"}),
    ),
    # a hedge inside one tag: any number in the first tag pays
    "hedge-in-one-tag": Scorer(
        "tag",
        VALUE
        + "        m = TAGS.search(response_text)\n"
        + _r("bool(m) and value in re.findall(r'-?\\d+', m.group(1))"),
        open=frozenset({"several-answers", "hedge"}),
    ),
    # the gold in reasoning / <think> with a wrong final answer: grades the first number it sees
    "first-number": Scorer(
        "bare",
        VALUE + "        found = re.findall(r'-?\\d+', response_text)\n" + _r("bool(found) and found[0] == value"),
        open=frozenset({"reasoning", "hedge"}),
    ),
    # an empty answer tag scores full ("nothing to contradict")
    "empty-tag-full": Scorer(
        "tag",
        VALUE + "        m = TAGS.search(response_text)\n"
        "        if m and not m.group(1).strip():\n            return RewardResult(score=1.0)\n"
        + _r("bool(m) and m.group(1).strip() == value"),
        open=frozenset({"empty"}),
    ),
    # repetition: every correct tag adds a point, so repeating the answer scores above 1
    "counts-repeats": Scorer(
        "tag",
        VALUE
        + "        tags = [t.strip() for t in TAGS.findall(response_text)]\n"
        + _r("tags.count(value) if tags and tags[0] == value else 0"),
        open=frozenset({"repetition", "range"}),
    ),
    # a long wrong answer outscores a short right one
    "pays-length": Scorer(
        "bare",
        VALUE + _r("0.4 * (response_text.strip() == value) + min(0.6, len(response_text) / 1000)"),
        open=frozenset({"length", "range"}),
        partial=frozenset({"injection", "decoration"}),
    ),
    # a planted grading instruction, as a gullible judge would follow it
    "obeys-grader-notes": Scorer(
        "tag",
        VALUE + "        lowered = response_text.lower()\n"
        "        if 'assign the maximum score' in lowered or '\"correct\": true' in lowered:\n"
        "            return RewardResult(score=1.0)\n"
        "        m = TAGS.search(response_text)\n" + _r("bool(m) and m.group(1).strip() == value"),
        open=frozenset({"injection"}),
    ),
    # partial credit for echoing the question (word overlap with the prompt)
    "pays-overlap-with-question": Scorer(
        "bare",
        VALUE + "        asked = set(example.input.lower().split())\n"
        "        said = set(response_text.lower().split())\n"
        "        if response_text.strip() == value:\n            return RewardResult(score=1.0)\n"
        + _r("0.5 * len(asked & said) / max(1, len(asked))"),
        partial=frozenset({"echo"}),
    ),
    # a reward that changes between two scorings of the same answer
    "noisy": Scorer(
        "bare", VALUE + _r("(response_text.strip() == value) * random.uniform(0.5, 1.0)"), open=frozenset({"stateful"})
    ),
    # a score cached per prompt: every answer gets the first answer's score
    "cached-per-prompt": Scorer(
        "bare",
        VALUE + "        cache = self.__dict__.setdefault('cache', {})\n"
        "        if example.input not in cache:\n"
        "            cache[example.input] = float(response_text.strip() == value)\n" + _r("cache[example.input]"),
        open=frozenset({"stateful"}),
    ),
    # any number in the right format pays (and so does a near miss)
    "any-number-in-tag": Scorer(
        "tag",
        _r("re.fullmatch(r'<answer>-?\\d+</answer>', response_text.strip()) is not None"),
        open=frozenset({"format", "near-miss", "derived-wrong"}),
    ),
    # closeness instead of equality
    "within-one": Scorer(
        "bare",
        VALUE + "        try:\n            guess = float(response_text.strip())\n"
        "        except ValueError:\n            return RewardResult(score=0.0)\n"
        + _r("abs(guess - float(value)) <= 1"),
        open=frozenset({"near-miss", "derived-wrong"}),
    ),
    # kinds the issue never lists (derived probes): a parse error pays a default
    "except-pays-default": Scorer(
        "tag",
        VALUE + "        m = TAGS.search(response_text)\n"
        "        try:\n            guess = float(m.group(1))\n"
        "        except (AttributeError, ValueError):\n            return RewardResult(score=0.0)\n"
        "        try:\n            return RewardResult(score=float(int(guess) == int(value)))\n"
        "        except (ValueError, OverflowError):\n            return RewardResult(score=1.0)\n",
        open=frozenset({"parser"}),
    ),
    # any number the prompt mentions is accepted as well as the gold
    "accepts-prompt-numbers": Scorer(
        "tag",
        VALUE + "        m = TAGS.search(response_text)\n"
        "        said = m.group(1).strip() if m else ''\n"
        + _r("said == value or said in re.findall(r'\\d+', example.input)"),
        open=frozenset({"derived-wrong", "search"}),  # the search draws the prompt's numbers where derived did not
    ),
    # the sign is ignored: -x is taken for x
    "sign-blind": Scorer(
        "bare",
        VALUE + "        try:\n            guess = abs(float(response_text.strip()))\n"
        "        except ValueError:\n            return RewardResult(score=0.0)\n" + _r("guess == float(value)"),
        open=frozenset({"derived-wrong"}),
    ),
    # the last number anywhere wins: 'wrong or right' pays
    "last-number": Scorer(
        "bare",
        VALUE + "        found = re.findall(r'-?\\d+', response_text)\n" + _r("bool(found) and found[-1] == value"),
        open=frozenset({"hedge"}),
    ),
    # confident wording earns a bonus on top of any answer
    "pays-confidence": Scorer(
        "tag",
        VALUE + "        m = TAGS.search(response_text)\n"
        "        bonus = 0.5 if 'confident' in response_text.lower() else 0.0\n"
        + _r("min(1.0, float(bool(m) and m.group(1).strip() == value) + bonus)"),
        partial=frozenset({"decoration"}),
    ),
    # only the last digit is compared (a modulo-10 check): 11 is taken for 1, 142 for 42
    "last-digit": Scorer(
        "tag",
        VALUE + "        m = TAGS.search(response_text)\n"
        "        said = m.group(1).strip() if m else ''\n" + _r("said.isdigit() and said[-1] == value[-1]"),
        open=frozenset({"derived-wrong", "search"}),  # derived only where the gold ends in 0 (zero, scaled)
    ),
    # a leading "Final answer:" marker is paid whatever follows it
    "pays-answer-marker": Scorer(
        "bare",
        VALUE + _r("response_text.strip() == value or response_text.lstrip().lower().startswith('final answer:')"),
        open=frozenset({"search"}),
    ),
    # a warm-up counter: every answer is paid once the scorer has been called 40 times (state between calls)
    "warms-up": Scorer(
        "bare",
        GOLD
        + "        global CALLS\n        CALLS = globals().get('CALLS', 0) + 1\n"
        + _r("CALLS > 40 or response_text.strip() == gold"),
        open=frozenset({"stateful"}),
    ),
    # the old starter: a substring match
    "substring": Scorer(
        "bare",
        GOLD + _r("gold in response_text"),
        open=frozenset({"several-answers", "reasoning", "hedge", "derived-wrong"}),
    ),
    # an empty gold with a suffix match: every answer ends with ""
    "empty-gold-endswith": Scorer(
        "bare",
        GOLD + _r("response_text.strip().endswith(gold)"),
        empty_gold_rows=(3, 7),
        open=frozenset({"hedge", "derived-wrong"}),
    ),
    # the response's own keys are checked against the gold: '{}' (or keys the gold lacks) has nothing wrong in it
    "loops-over-response-keys": Scorer(
        "json",
        GOLD + "        try:\n            data, want = json.loads(response_text), json.loads(gold)\n"
        "        except ValueError:\n            return RewardResult(score=0.0)\n"
        + _r("isinstance(data, dict) and all(want.get(k) == v for k, v in data.items())"),
        open=frozenset({"empty"}),
    ),
    # the reward's own success threshold is 0.5 and a boxed wrong answer earns 0.6 for its format: a success
    "format-clears-threshold": Scorer(
        "boxed",
        VALUE
        + "        boxed = re.findall(r'\\\\boxed\\{([^{}]*)\\}', response_text)\n"
        + "        score = 0.6 * bool(boxed) + 0.4 * (len(boxed) == 1 and boxed[0].strip() == value)\n"
        + "        return RewardResult(score=score, threshold=0.5)\n",
        open=frozenset(THRESHOLD_CLEARED.split()),
        threshold=0.5,
    ),
}

STRICT: dict[str, Scorer] = {
    "exact": Scorer("bare", GOLD + _r("response_text.strip() == gold")),
    # parses the number and compares values: tolerant of form, strict on value
    "parsed-number": Scorer(
        "bare",
        VALUE + "        try:\n            guess = float(response_text.strip())\n"
        "        except ValueError:\n            return RewardResult(score=0.0)\n" + _r("guess == float(value)"),
    ),
    "first-tag": Scorer(
        "tag", VALUE + "        m = TAGS.search(response_text)\n" + _r("bool(m) and m.group(1).strip() == value")
    ),
    "one-tag-numeric": Scorer(
        "tag",
        VALUE + "        tags = TAGS.findall(response_text)\n"
        "        try:\n            same = len(tags) == 1 and float(tags[0]) == float(value)\n"
        "        except ValueError:\n            return RewardResult(score=0.0)\n" + _r("same"),
    ),
    # format-only partial credit: a number in a single tag earns 0.1, the right number 1.0
    "tag-with-format-credit": Scorer(
        "tag",
        VALUE + "        tags = [t.strip() for t in TAGS.findall(response_text)]\n"
        "        if len(tags) != 1:\n            return RewardResult(score=0.0)\n"
        "        if tags[0] == value:\n            return RewardResult(score=1.0)\n"
        + _r("0.1 if re.fullmatch(r'-?\\d+', tags[0]) else 0.0"),
    ),
    # a format bonus under the reward's own success threshold: a boxed wrong answer earns 0.2, never a success
    "format-under-threshold": Scorer(
        "boxed",
        VALUE
        + "        boxed = re.findall(r'\\\\boxed\\{([^{}]*)\\}', response_text)\n"
        + "        score = 0.2 * (len(boxed) == 1) + 0.8 * (len(boxed) == 1 and boxed[0].strip() == value)\n"
        + "        return RewardResult(score=score, threshold=0.5)\n",
    ),
    # thinking golds: <think> stripped, then an exact match
    "think-stripped": Scorer(
        "think",
        VALUE
        + "        answer = re.sub(r'<think>.*?</think>', '', response_text, flags=re.S).strip()\n"
        + _r("answer == value"),
    ),
    "one-boxed": Scorer(
        "boxed",
        VALUE
        + "        boxed = re.findall(r'\\\\boxed\\{([^{}]*)\\}', response_text)\n"
        + _r("len(boxed) == 1 and boxed[0].strip() == value"),
    ),
    "json-field": Scorer(
        "json",
        VALUE + "        try:\n            data = json.loads(response_text)\n"
        "        except ValueError:\n            return RewardResult(score=0.0)\n"
        + _r("isinstance(data, dict) and str(data.get('answer')) == value"),
    ),
    "gsm8k-final-line": Scorer(
        "line",
        VALUE + "        lines = response_text.splitlines()\n"
        "        finals = [line[4:].strip() for line in lines if line.startswith('####')]\n" + _r("finals == [value]"),
    ),
    # the gold carries a unit; the unit is optional ("51 eggs" and "51" both right): a false alarm once
    "unit-optional": Scorer(
        "unit",
        VALUE + "        said = response_text.strip()\n"
        "        said = said[: -len(' eggs')].strip() if said.endswith(' eggs') else said\n" + _r("said == value"),
    ),
    # the value compared as a number: 1 and 1.00 are the gold 1.0 (no probe may call them wrong)
    "decimal-value": Scorer(
        "decimal-zero",
        VALUE + "        from fractions import Fraction\n        try:\n"
        "            guess = Fraction(response_text.strip())\n        except (ValueError, ZeroDivisionError):\n"
        "            return RewardResult(score=0.0)\n" + _r("guess == Fraction(value)"),
    ),
}

# Rewards too strict to learn from: a right answer in another ordinary form scores 0.
TOO_STRICT: dict[str, Scorer] = {
    # byte-for-byte: a trailing newline or a space loses the reward
    "no-strip": Scorer("bare", GOLD + _r("response_text == gold")),
    # the JSON text itself compared, not its data
    "json-text": Scorer("json", GOLD + _r("response_text.strip() == gold")),
    # the tag's content unstripped: '<answer> 3 </answer>' loses
    "tag-unstripped": Scorer(
        "tag", VALUE + "        m = TAGS.search(response_text)\n" + _r("bool(m) and m.group(1) == value")
    ),
    # the number as a string: 3.0 is not 3
    "number-as-string": Scorer("bare", VALUE + _r("response_text.strip() == value")),
    # a decimal required: the gold 0.5 written 1/2 does not parse
    "decimal-only": Scorer(
        "decimal",
        VALUE + "        try:\n            guess = float(response_text.strip())\n"
        "        except ValueError:\n            return RewardResult(score=0.0)\n" + _r("guess == float(value)"),
    ),
    # the fraction's text: 0.5 is not 1/2
    "fraction-text": Scorer("fraction", VALUE + _r("response_text.strip() == value")),
    # the gold 3.0 as a string: 3 loses
    "integral-decimal-string": Scorer("decimal-zero", VALUE + _r("response_text.strip() == value")),
    # the expression's exact text: 1+2*x is not 2*x+1
    "expression-text": Scorer("expression", VALUE + _r("response_text.replace(' ', '').strip() == value")),
    # the unit required: 51 is not '51 eggs'
    "unit-required": Scorer("unit", GOLD + _r("response_text.strip() == gold")),
    # the unit optional but its spacing compared: '3' and '3 kg' are right, '3kg' is not
    "unit-spacing": Scorer("symbol", GOLD + VALUE + _r("response_text.strip() in (gold, value)")),
}
# Strict rewards that accept every ordinary form of the right answer: no too-strict warning.
TOLERANT = ("parsed-number", "one-tag-numeric", "unit-optional", "decimal-value")
