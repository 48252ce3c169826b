"""Rewards too strict to learn from: the gold answer in another ordinary form scoring below it.

Rows carry `eq` (rendering -> score) and `eqx` (the renderings that lost, clipped) from
`probes.run_probes`. A rendering that scores no higher than a wrong answer makes a right answer
written that way indistinguishable from a wrong one: a GRPO group whose right answers are all
written so has zero advantage, and the run pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from flash_mcp.domain.envtest.probes import EPS

CODE = "too-strict"
FIX = (
    "normalise before comparing: strip whitespace, parse numbers (42 == 42.0), compare words without case, "
    "compare JSON with json.loads"
)
MAX_ROWS = 5


class StrictExample(BaseModel):
    row_id: str
    form: str = Field(description="Which rendering of the gold, e.g. decimal-form, json-compact, case")
    response: str
    score: float
    gold_score: float


class TooStrict(BaseModel):
    rows_probed: int = Field(description="Rows whose gold was scored in other ordinary forms")
    rows_affected: int = Field(description="Rows where such a form scored below the gold")
    share: float = Field(description="rows_affected / rows_probed")
    forms: dict[str, int] = Field(description="Rendering -> rows where it scored below the gold")
    zero_advantage_share: float = Field(
        description="Share of rows where a right answer in another form scores no higher than a wrong one: a GRPO "
        "group whose right answers are written so has zero advantage"
    )
    examples: list[StrictExample]


@dataclass
class Strictness:
    probed: int = 0
    affected: int = 0
    flat: int = 0
    forms: dict[str, int] = field(default_factory=dict)
    rows: list[str] = field(default_factory=list)
    examples: list[StrictExample] = field(default_factory=list)

    def add(self, row: dict[str, Any]) -> None:
        scores: dict[str, float] = row.get("eq") or {}
        gold, junk = row["gold"], row.get("junk")
        if not scores or gold <= EPS or (junk is not None and junk >= gold - EPS):
            return  # a row whose gold earns nothing over a wrong answer proves nothing
        self.probed += 1
        lost = {name: value for name, value in scores.items() if value < gold - EPS}
        if not lost:
            return
        self.affected += 1
        if junk is not None and any(value <= junk + EPS for value in lost.values()):
            self.flat += 1
        for name in lost:
            self.forms[name] = self.forms.get(name, 0) + 1
        if len(self.rows) < MAX_ROWS:
            self.rows.append(row["id"])
        texts = row.get("eqx") or {}
        for name, value in lost.items():
            if len(self.examples) < MAX_ROWS and all(e.form != name for e in self.examples):
                self.examples.append(
                    StrictExample(
                        row_id=row["id"], form=name, response=texts.get(name, ""), score=value, gold_score=gold
                    )
                )

    def result(self) -> TooStrict | None:
        if not self.probed:
            return None
        return TooStrict(
            rows_probed=self.probed,
            rows_affected=self.affected,
            share=round(self.affected / self.probed, 4),
            forms=self.forms,
            zero_advantage_share=round(self.flat / self.probed, 4),
            examples=self.examples,
        )

    def warning(self, found: TooStrict | None, trained: bool) -> tuple[str, str, int, list[str]] | None:
        """(code, message, count, rows) when some right answer in another form lost reward."""
        if found is None or not found.rows_affected:
            return None
        forms = ", ".join(f"{name} ({count} rows)" for name, count in sorted(found.forms.items()))
        message = (
            f"the reward is too strict: the gold answer in another ordinary form scored below the gold on "
            f"{found.rows_affected} of {found.rows_probed} probed rows ({found.share:.0%}): {forms}"
        )
        if found.examples:
            ex = found.examples[0]
            message += f"; e.g. {ex.row_id} {ex.form} {ex.response[:80]!r} scored {ex.score:g} (gold {ex.gold_score:g})"
        if trained or found.zero_advantage_share:
            message += (
                f". In GRPO, {found.zero_advantage_share:.0%} of groups whose right answers are written so get "
                "zero advantage (a right answer scores as a wrong one): steps spent learning nothing"
            )
        return CODE, f"{message}. Fix: {FIX}", found.rows_affected, self.rows
