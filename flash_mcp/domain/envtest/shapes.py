"""How a gold answer states its answer, so probes can state theirs the same way.

An XML-ish tag (`<answer>42</answer>`), `\\boxed{42}`, a JSON field, a marked final line (`#### 42`,
`Answer: 42`), the last line of a longer text, or a bare value; a leading `<think>` block is kept
as framing. Standard library only: the environment-test child imports it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

THINK_RE = re.compile(r"^\s*<(think|thinking|reasoning)>.*?</\1>\s*", re.S | re.I)
TAG_RE = re.compile(r"<([A-Za-z][\w-]*)>(.*?)</\1>", re.S)
MARKER_RE = re.compile(
    r"^(?P<open>.*?(?:####|\banswer\b(?:\s+is)?\s*[:=]?|\bresult\s*[:=]))\s*(?P<value>.*?)(?P<close>[.\s]*)$", re.I
)
BARE_BREAKERS = re.compile(r"[<{\n]|\\boxed|answer|####|result", re.I)
NOT_ANSWER_TAGS = {"think", "thinking", "reasoning", "scratchpad"}
CODE_RE = re.compile(r"^\s*(?:def \w+\(|class \w+|import \w|from \w+ import |return\s+\S|SELECT\s|```)", re.M)
ANSWER_KEYS = ("answer", "final_answer", "final", "result", "solution", "output", "value", "label")


@dataclass(slots=True)
class Shape:
    """Where the answer sits in the gold: `prefix + open + value + close + suffix` (or a JSON field)."""

    kind: str  # tag | boxed | json | line | bare
    value: str
    prefix: str = ""
    open: str = ""
    close: str = ""
    suffix: str = ""
    field: str = ""
    data: str = ""  # the gold's JSON text, for kind == "json"

    def wrap(self, value: str) -> str:
        """The wrapper alone around `value`."""
        if self.kind == "json":
            return self._json(value)
        return f"{self.open}{value}{self.close}"

    def put(self, value: str, inner: str | None = None, frame: str | None = None) -> str:
        """The gold with its answer replaced by `value` (or `inner`, the whole wrapped part), and the
        gold value in the framing text replaced by `frame` (default `value`)."""
        if self.kind == "json":
            return self._json(value)
        body = self.wrap(value) if inner is None else inner
        frame = value if frame is None else frame
        return self._frame(self.prefix, frame) + body + self._frame(self.suffix, frame)

    def _frame(self, text: str, value: str) -> str:
        return text.replace(self.value, value) if text and self.value and self.value.strip() else text

    def _json(self, value: str) -> str:
        data = json.loads(self.data)
        original = data.get(self.field)
        converted: object = value
        if isinstance(original, (int, float)) and not isinstance(original, bool):
            try:
                converted = int(value) if isinstance(original, int) else float(value)
            except ValueError:
                converted = _float(value)
        data[self.field] = converted
        return json.dumps(data)


def is_code(shape: Shape) -> bool:
    """The gold is source code (a function, a query): it is run or parsed, so its text is not read as prose."""
    return CODE_RE.search(shape.prefix + shape.value) is not None


def detect_shape(gold: str) -> Shape:
    """How the gold states its answer. Cheap for the common bare value: a few substring tests."""
    if BARE_BREAKERS.search(gold) is None:
        stripped = gold.strip()
        return Shape("bare", stripped, prefix=gold[: len(gold) - len(gold.lstrip())], suffix=gold[len(gold.rstrip()) :])
    think = THINK_RE.match(gold)
    head, rest = (gold[: think.end()], gold[think.end() :]) if think else ("", gold)
    if "<" in rest:
        found = _tag(head, rest)
        if found:
            return found
    if "\\boxed{" in rest:
        found = _boxed(head, rest)
        if found:
            return found
    stripped = rest.strip()
    if stripped.startswith("{") and not head:
        found = _json_field(stripped)
        if found:
            return found
    if "\n" in stripped or "nswer" in stripped or "####" in stripped or "esult" in stripped:
        return _line(head, rest)
    lead = rest[: len(rest) - len(rest.lstrip())]
    return Shape("bare", stripped, prefix=head + lead, suffix=rest[len(lead) + len(stripped) :])


def _tag(head: str, rest: str) -> Shape | None:
    matches = [m for m in TAG_RE.finditer(rest) if m.group(1).lower() not in NOT_ANSWER_TAGS]
    if not matches:
        return None
    m = matches[-1]
    name = m.group(1)
    return Shape(
        "tag", m.group(2), prefix=head + rest[: m.start()], open=f"<{name}>", close=f"</{name}>", suffix=rest[m.end() :]
    )


def _boxed(head: str, rest: str) -> Shape | None:
    start = rest.rfind("\\boxed{")
    depth, index = 0, start + len("\\boxed{")
    for index in range(start + len("\\boxed{"), len(rest)):
        char = rest[index]
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                break
            depth -= 1
    else:
        return None
    value = rest[start + len("\\boxed{") : index]
    return Shape("boxed", value, prefix=head + rest[:start], open="\\boxed{", close="}", suffix=rest[index + 1 :])


def _json_field(text: str) -> Shape | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not data:
        return None
    lowered = {str(key).lower(): key for key in data}
    key = next((lowered[k] for k in ANSWER_KEYS if k in lowered), None)
    if key is None:
        scalars = [k for k, v in data.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
        if not scalars:
            return None
        key = scalars[-1]
    value = data[key]
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return None
    return Shape("json", str(value), field=str(key), data=text)


def _line(head: str, rest: str) -> Shape:
    body = rest.rstrip()
    cut = body.rfind("\n") + 1
    last = body[cut:]
    marked = MARKER_RE.match(last)
    if marked and marked.group("value"):
        lead = head + rest[:cut]
        return Shape(
            "line",
            marked.group("value"),
            prefix=lead,
            open=marked.group("open") + last[marked.end("open") : marked.start("value")],
            close=marked.group("close"),
            suffix=rest[len(body) :],
        )
    value = last.strip()
    lead = last[: len(last) - len(last.lstrip())]
    return Shape("line", value, prefix=head + rest[:cut] + lead, suffix=rest[len(body) :])


def _float(value: str) -> object:
    """`value` as a JSON number where it is one (34.0 for an integer field), else the text."""
    try:
        number = float(value)
    except ValueError:
        return value
    return number if number == number and abs(number) != float("inf") else value
