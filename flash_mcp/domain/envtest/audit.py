"""The reward audit: per-row probe scores turned into one verdict per exploit family.

Rows stream in from the environment-test child (see `probes.py` for what each row carries). A
family is *open* when one of its probes earned what the gold earned on some row, *partial* when a
probe of a family that deserves nothing earned more than a wrong answer in the right format, and
*resisted* otherwise. Open families fail the test for reward-trained runs (GRPO, OPD) named in the
config; otherwise they are warnings. A strict scorer that pays a little for format alone draws
nothing: the right-format wrong answer is the floor the partial checks measure from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from flash_mcp.domain.envtest.families import ANY_ANSWER, FAMILY_TEXT, NOT_RUN, NOT_RUN_MULTI_FIX, PARTIAL_TEXT
from flash_mcp.domain.envtest.probes import CHEAP, EPS, FAMILIES, FAMILY_OF, PARTIAL_SHARE, exploit_level, success_bar
from flash_mcp.domain.envtest.search import SEED, row_seed
from flash_mcp.domain.envtest.strictness import Strictness, TooStrict

MAX_ROW_IDS = 5
MAX_CANDIDATES = 10_000
MAX_DISTINCT_WRONG = 64
REWARD_TRAINED = ("grpo", "opd")

PROBE_FAMILIES = ("wrong-answer", *FAMILIES)


class Exploit(BaseModel):
    row_id: str
    probe: str = Field(description="Which probe, e.g. several-wrappers, think, echo")
    response: str = Field(description="The probe text (clipped)")
    score: float
    gold_score: float


class FamilyResult(BaseModel):
    family: str
    status: Literal["open", "partial", "resisted", "not-run", "unjudged"]
    code: str = Field(description="The warning code this family raises when open or partial")
    rows_probed: int
    rows_open: int = Field(description="Rows where a probe earned the gold's reward (or, if partial, above the floor)")
    example: Exploit | None = None
    fix: str | None = None


class RewardAudit(BaseModel):
    rows_probed: int = Field(description="Rows that got every probe (the rest got the cheap ones)")
    shapes: dict[str, int] = Field(description="How the probed golds state their answer: tag, boxed, json, line, bare")
    families: list[FamilyResult]
    any_answer_rows: list[str] = Field(
        description=f"The first {MAX_ROW_IDS} rows where a deliberately wrong answer earns the full reward"
    )
    blocking: bool = Field(description="Open families fail this test: the config trains on the reward (GRPO/OPD)")
    search_seed: int = Field(
        default=SEED, description="The seeded search's seed: row i's cases are search.cases(shape, row_seed(i, seed))"
    )
    too_strict: TooStrict | None = Field(
        default=None, description="The gold in other ordinary forms (42.0, compact JSON, case): what scored below it"
    )


@dataclass
class _Family:
    probed: int = 0
    open: int = 0
    partial: int = 0
    rows: list[str] = field(default_factory=list)
    example: Exploit | None = None
    partial_example: Exploit | None = None

    def hit(self, level: str, row_id: str, example: Exploit | None) -> None:
        if level == "open":
            self.open += 1
            if self.example is None:
                self.example = example
        else:
            self.partial += 1
            if self.partial_example is None:
                self.partial_example = example
        if len(self.rows) < MAX_ROW_IDS:
            self.rows.append(row_id)


@dataclass
class Audit:
    """Accumulates probe results row by row; `result()` judges each family."""

    declared: tuple[float, float] | None = None
    full_rows: int = 0
    shapes: dict[str, int] = field(default_factory=dict)
    families: dict[str, _Family] = field(default_factory=lambda: {name: _Family() for name in FAMILY_TEXT})
    max_gold: float | None = None
    replayed: int = 0
    probe_sets: dict[tuple[str, ...], int] = field(default_factory=dict)
    above_gold: list[tuple[float, Exploit]] = field(default_factory=list)
    wrong_full: dict[float, tuple[int, list[str]]] = field(default_factory=dict)  # wrong score -> rows, first ids
    flat: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: {"gold-first": [], "wrong-first": []})
    ordered: dict[str, int] = field(default_factory=lambda: {"gold-first": 0, "wrong-first": 0})
    strict: Strictness = field(default_factory=Strictness)
    trained: bool = False
    multi: bool = False  # a multi-turn environment: the episode family applies, played through whole episodes
    searched: int = 0  # rows the seeded search ran on
    earlier: dict[int, tuple[str, float, float]] = field(default_factory=dict)  # full row -> (id, gold, wrong)

    def add(self, row: dict[str, Any]) -> None:
        """One passing row: `gold`, `junk`, and (replayed golds) `pr` or `q`, `g2`, `j0`, `ex` (see `probes.py`)."""
        row_id, gold, junk = row["id"], row["gold"], row.get("junk")
        self.max_gold = gold if self.max_gold is None else max(self.max_gold, gold)
        paid = junk is not None and junk > EPS and (row.get("echo") or junk >= gold - EPS)
        if paid and (junk in self.wrong_full or len(self.wrong_full) < MAX_DISTINCT_WRONG):
            count, ids = self.wrong_full.get(junk, (0, []))
            self.wrong_full[junk] = (count + 1, ids if len(ids) >= MAX_ROW_IDS else [*ids, row_id])
        if row.get("echo") or junk is None:
            return
        self.replayed += 1
        if "eq" in row:
            self.strict.add(row)
        scores: dict[str, float] = row.get("pr") or {}
        key = tuple(scores) if scores else None
        if key:
            self.probe_sets[key] = self.probe_sets.get(key, 0) + 1
        floor = max(junk, scores.get("format", junk))
        top = max(scores.values(), default=floor)
        bar = success_bar(gold, row.get("th"))
        searched = self._searched(row, (gold, bar), junk) if "sr" in row else None
        if self._earned_nothing(bar, junk, floor, top):
            if searched:
                self.families["search"].hit(*searched)
            if "g2" in row:
                self._stateful(row, gold, junk, scores)
            return  # nothing earned more than it should: the common case, kept cheap
        found: dict[str, tuple[str, Exploit]] = {}
        if gold > EPS and junk >= bar - EPS:
            found["wrong-answer"] = ("open", Exploit(row_id=row_id, probe="wrong", response="test", score=junk,
                                                     gold_score=gold))  # fmt: skip
        self._probes(row_id, scores, row.get("ex") or {}, (gold, junk, floor, bar), found)
        if searched and not found:  # the search reports what the fixed probes missed on this row
            found["search"] = (searched[0], searched[2])
        for family, (level, example) in found.items():
            self.families[family].hit(level, row_id, example)
        if "g2" in row:
            self._stateful(row, gold, junk, scores)

    def add_plain(self, gold: float, junk: float, top: float) -> bool:
        """A row with only the cheap probes (`top` their best score) that earned nothing it should not: `add`'s
        common case, counted without the row. False (nothing counted) when `add` must judge it."""
        if not self._earned_nothing(gold, junk, junk, top):
            return False
        self.max_gold = gold if self.max_gold is None else max(self.max_gold, gold)
        self.replayed += 1
        self.probe_sets[CHEAP] = self.probe_sets.get(CHEAP, 0) + 1
        return True

    def _earned_nothing(self, bar: float, junk: float, floor: float, top: float) -> bool:
        """No probe (`top` the best) nor the wrong answer reached `bar` or rose above `floor`, and no range is
        declared to check: the row opens nothing."""
        return top < bar - EPS and top <= floor + EPS and junk < bar - EPS and self.declared is None

    def _searched(
        self, row: dict[str, Any], levels: tuple[float, float], junk: float
    ) -> tuple[str, str, Exploit] | None:
        """The search's first case (plain, decorated) that earned the gold's reward or reached the success bar
        (open), else the first whose decoration raised a wrong answer's score (partial); see `search.py`."""
        self.searched += 1
        scores, found = row["sr"], None
        gold, bar = levels
        if not (gold > EPS or gold > junk + EPS):
            return None
        for k in range(len(scores) // 2):
            plain, decorated = scores[2 * k], scores[2 * k + 1]
            if max(plain, decorated) >= bar - EPS:
                return "open", row["id"], self._case(row, k, max(plain, decorated), gold)
            if found is None and decorated > max(0.0, plain + max(EPS, PARTIAL_SHARE * (gold - plain))):
                found = ("partial", row["id"], self._case(row, k, decorated, gold))
        return found

    def _case(self, row: dict[str, Any], k: int, score: float, gold: float) -> Exploit:
        """Case k as the example: the child's shrunk text when it shrank this case, else the server's build."""
        shrunk, built = row.get("sx"), (row.get("ex") or {}).get(f"search:{k}", "")
        text = shrunk["t"] if shrunk and shrunk["k"] == k else built
        probe = f"search case {k}, seed {row_seed(row['i'])}" + (" (shrunk)" if text != built else "")
        return Exploit(row_id=row["id"], probe=probe, response=text, score=score, gold_score=gold)

    def _probes(self, row_id: str, scores: dict, examples: dict, levels: tuple, found: dict) -> None:
        """The row's probes that earned something: which families they open, and the range check."""
        gold, junk, floor, bar = levels
        for probe, value in scores.items():
            family = FAMILY_OF.get(probe)
            if family is None:
                continue
            level = exploit_level(family, value, gold, junk, floor, bar)
            if level is not None and (family not in found or (level == "open" and found[family][0] != "open")):
                text = examples.get(probe, "")
                found[family] = (level, Exploit(row_id=row_id, probe=probe, response=text, score=value,
                                                gold_score=gold))  # fmt: skip
            if "range" not in found:
                out_of_range = self._range(row_id, probe, value, gold, examples)
                if out_of_range is not None:
                    found["range"] = ("open", out_of_range)

    def _range(self, row_id: str, probe: str, value: float, gold: float, examples: dict) -> Exploit | None:
        """Out of the declared range now; above the row's gold is kept to judge against every gold at the end."""
        example = Exploit(row_id=row_id, probe=probe, response=examples.get(probe, ""), score=value, gold_score=gold)
        if self.declared is not None:
            low, high = self.declared
            return example if value > high + EPS or value < low - EPS else None
        if value > gold + EPS and len(self.above_gold) < MAX_CANDIDATES:
            self.above_gold.append((value, example))
        return None

    def _stateful(self, row: dict[str, Any], gold: float, junk: float, scores: dict[str, float]) -> None:
        self.full_rows += 1
        shape = row.get("shape")
        if shape:
            self.shapes[shape] = self.shapes.get(shape, 0) + 1
        stateful = self.families["stateful"]
        stateful.probed += 1
        again = next(((name[6:], value) for name, value in scores.items() if name.startswith("again:")), None)
        if again is not None and abs(scores.get(again[0], again[1]) - again[1]) > EPS:
            stateful.hit(
                "open",
                row["id"],
                Exploit(row_id=row["id"], probe=f"{again[0]}, scored again", response=row.get("ex", {}).get(
                    again[0], ""), score=again[1], gold_score=scores.get(again[0], again[1])),
            )  # fmt: skip
        elif abs(row["g2"] - gold) > EPS:
            stateful.hit(
                "open",
                row["id"],
                Exploit(row_id=row["id"], probe="gold, scored again", response="(the gold answer)",
                        score=row["g2"], gold_score=gold),
            )  # fmt: skip
        elif (later := self._scored_later(row)) is not None:
            stateful.hit("open", later.row_id, later)
        if len(self.earlier) < MAX_CANDIDATES:
            self.earlier[row["i"]] = (row["id"], gold, junk)
        order = "wrong-first" if "j0" in row else "gold-first"
        self.ordered[order] += 1
        values = [gold, junk, row["g2"], *scores.values(), *([row["j0"]] if "j0" in row else [])]
        if max(values) - min(values) <= EPS:
            self.flat[order].append((row["id"], gold))

    def _scored_later(self, row: dict[str, Any]) -> Exploit | None:
        """The previous full row's gold or wrong answer, scored again after this row's answers, changed."""
        before = self.earlier.get(row.get("pi", -1))
        if before is None:
            return None
        row_id, gold, junk = before
        after = f"scored again after {row['id']}'s answers"
        if abs(row["gp"] - gold) > EPS:
            return Exploit(row_id=row_id, probe=f"gold, {after}", response="(the gold answer)", score=row["gp"],
                           gold_score=gold)  # fmt: skip
        if abs(row["jp"] - junk) > EPS:
            return Exploit(row_id=row_id, probe=f"wrong answer, {after}", response="(the deliberately wrong answer)",
                           score=row["jp"], gold_score=gold)  # fmt: skip
        return None

    def _order_dependent(self) -> Exploit | None:
        """Every answer got the first-scored answer's score, and that depends on which came first."""
        first, wrong = self.flat["gold-first"], self.flat["wrong-first"]
        if not first or not wrong:
            return None
        if 2 * len(first) < self.ordered["gold-first"] or 2 * len(wrong) < self.ordered["wrong-first"]:
            return None
        high = sum(gold for _, gold in first) / len(first)
        row_id, low = wrong[0]
        if high <= sum(gold for _, gold in wrong) / len(wrong) + EPS:
            return None
        return Exploit(row_id=row_id, probe="gold, scored after a wrong answer", response="(the gold answer)",
                       score=low, gold_score=high)  # fmt: skip

    def any_answer(self) -> tuple[int, list[str]]:
        """How many rows pay a deliberately wrong answer the full reward (the best gold score), and the first."""
        if self.max_gold is None or self.max_gold <= EPS or self.families["stateful"].open:
            return 0, []
        full = [entry for junk, entry in self.wrong_full.items() if junk >= self.max_gold - EPS]
        return sum(count for count, _ in full), sorted(i for _, ids in full for i in ids)[:MAX_ROW_IDS]

    def result(self, algorithm: str | None) -> RewardAudit:
        self._finish()
        self.trained = algorithm in REWARD_TRAINED
        unstable = self.families["stateful"].open > 0
        names = [name for name in FAMILY_TEXT if self.multi or name != "episode"]
        families = [self._family(name, unstable) for name in names]
        blocking = algorithm in REWARD_TRAINED and (
            any(f.status == "open" for f in families) or self.any_answer()[0] > 0
        )
        return RewardAudit(
            rows_probed=self.full_rows,
            shapes=self.shapes,
            families=families,
            any_answer_rows=self.any_answer()[1],
            blocking=blocking,
            too_strict=None if unstable else self.strict.result(),
        )

    def _finish(self) -> None:
        if self.declared is None and self.max_gold is not None:
            seen: set[str] = set()
            for value, example in self.above_gold:
                if value > self.max_gold + EPS and example.row_id not in seen:
                    seen.add(example.row_id)
                    self.families["range"].hit("open", example.row_id, example)
            self.above_gold = []
        stateful = self.families["stateful"]
        order = self._order_dependent() if stateful.open == 0 else None
        if order is not None:
            flat = self.flat["wrong-first"] + self.flat["gold-first"]
            stateful.open, stateful.example = len(flat), order
            stateful.rows = [row_id for row_id, _ in flat[:MAX_ROW_IDS]]

    def _family(self, name: str, unstable: bool) -> FamilyResult:
        state = self.families[name]
        code, _, fix = FAMILY_TEXT[name]
        probed = self._probed(name)
        if unstable and name not in ("stateful", "range"):
            return FamilyResult(family=name, status="unjudged", code=code, rows_probed=probed, rows_open=0)
        if state.open:
            status, count, example = "open", state.open, state.example
        elif state.partial:
            status, count, example = "partial", state.partial, state.partial_example
        else:
            status = "resisted" if probed else "not-run"
            return FamilyResult(family=name, status=status, code=code, rows_probed=probed, rows_open=0)
        return FamilyResult(
            family=name, status=status, code=code, rows_probed=probed, rows_open=count, example=example, fix=fix
        )

    def _probed(self, family: str) -> int:
        """Rows where the family's probes ran (the wrong answer runs on every replayed row)."""
        if family == "wrong-answer":
            return self.replayed
        if family == "range":
            return sum(self.probe_sets.values())
        if family == "stateful":
            return self.families[family].probed
        if family == "search":
            return self.searched
        probes = set(FAMILIES[family])
        return sum(count for names, count in self.probe_sets.items() if probes.intersection(names))

    def warnings(self, audit: RewardAudit) -> list[tuple[str, str, int, list[str]]]:
        """(code, message, count, rows) for each open or partial family, then the any-answer rows."""
        found = []
        for result in audit.families:
            if result.status not in ("open", "partial"):
                continue
            _, what, fix = FAMILY_TEXT[result.family]
            message = what if result.status == "open" else PARTIAL_TEXT[result.family]
            if result.example is not None:
                ex = result.example
                message += f"; e.g. {ex.row_id} {ex.probe} {ex.response[:80]!r} scored {ex.score:g}"
                message += f" (gold {ex.gold_score:g}"
                message += (
                    ", and at the reward's own success threshold: a success)"
                    if ex.score < ex.gold_score - EPS and result.status == "open"
                    else ")"
                )
            found.append((result.code, f"{message}. Fix: {fix}", result.rows_open, self.families[result.family].rows))
        count, rows = self.any_answer()
        if count:
            found.append((ANY_ANSWER[0], ANY_ANSWER[1], count, rows))
        skipped = [result.family for result in audit.families if result.status == "not-run"]
        if skipped:
            code, what, fix = NOT_RUN
            fix = NOT_RUN_MULTI_FIX if self.multi else fix
            message = f"{len(skipped)} of {len(audit.families)} {what}: {', '.join(skipped)}. Fix: {fix}"
            found.append((code, message, len(skipped), []))
        strict = self.strict.warning(audit.too_strict, self.trained)
        return [*found, strict] if strict else found
