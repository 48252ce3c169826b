"""Target-blind consistency: the same completion on the same row under the same environment digest must score the
same, whichever side it came from and however often it is scored.

Two checks, before any verdict: across sides, identical (row, completion) pairs whose recorded scores differ;
and a re-score of a mixed, shuffled set of both sides' pairs through a fresh environment worker (the plane's
`rescore`; a multi-turn episode is replayed from its recorded model turns), compared with what was recorded. Any
difference, or an episode that cannot be replayed, is an unstable or target-aware reward.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import BaseModel, Field

from flash_mcp.core.visible import clip
from flash_mcp.domain.evaluation.record import Evaluation

MAX_RESCORE = 2000  # pairs re-scored per comparison; beyond it a seeded sample
EXAMPLES = 5
CLIP = 200
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Probe:
    side: str  # "A" or "B"
    row_id: str
    sample: int
    completion: str
    score: float
    turns: list[str] | None = None  # a multi-turn episode's model turns, for its replay


class Disagreement(BaseModel):
    row_id: str
    completion: str = Field(description="The completion scored (clipped)")
    scores: dict[str, float | None] = Field(description="Each score it got, by where it was scored")
    reason: str | None = Field(None, description="Why the re-score gave no score (the scorer failed, or the "
                               "episode could not be replayed)")  # fmt: skip


class Consistency(BaseModel):
    rescored: int = Field(description="(row, completion) pairs scored again, both sides mixed and shuffled")
    not_rescored: str | None = Field(None, description="Why no re-score ran (only the cross-side check did)")
    disagreements: int = Field(description="Pairs that scored differently: 0 means the reward looked consistent")
    examples: list[Disagreement] = Field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return self.disagreements == 0


def probes(first: Evaluation, second: Evaluation, cap: int = MAX_RESCORE) -> list[Probe]:
    """Both sides' scored pairs, mixed and shuffled (all of them up to `cap`, else a seeded sample of `cap`)."""
    found = [
        Probe(side, row.row_id, row.sample, row.completion, row.score, row.turns)
        for side, evaluation in (("A", first), ("B", second))
        for row in evaluation.rows
        if row.score is not None and not row.errored
    ]
    rng = random.Random(f"{first.spec.eval_id}|{second.spec.eval_id}")
    return rng.sample(found, min(cap, len(found)))


def cross_side(first: Evaluation, second: Evaluation) -> list[Disagreement]:
    """Identical completions on the same row that the two sides recorded with different scores."""
    recorded: dict[tuple[str, str], float] = {}
    for row in first.rows:
        if row.score is not None and not row.errored:
            recorded.setdefault((row.row_id, row.completion), row.score)
    out = []
    for row in second.rows:
        score_a = recorded.get((row.row_id, row.completion))
        if score_a is not None and row.score is not None and abs(score_a - row.score) > TOLERANCE:
            out.append(_disagreement(row.row_id, row.completion, {"A": score_a, "B": row.score}))
            recorded.pop((row.row_id, row.completion))
    return out


def judge(first: Evaluation, second: Evaluation, checked: list[Probe], scores: list[float | None] | None,
          reason: str | None = None, errors: list[str | None] | None = None) -> Consistency:  # fmt: skip
    """The cross-side check, and (when `scores` came back, one per probe, with `errors` saying why one is None)
    recorded against re-scored."""
    found = cross_side(first, second)
    if scores is not None:
        why = errors if errors is not None and len(errors) == len(scores) else [None] * len(scores)
        for probe, again, error in zip(checked, scores, why, strict=True):
            if again is None or abs(again - probe.score) > TOLERANCE:
                found.append(_disagreement(probe.row_id, probe.completion,
                                           {f"{probe.side} recorded": probe.score, "re-scored": again},
                                           error if again is None else None))  # fmt: skip
    return Consistency(
        rescored=len(checked) if scores is not None else 0,
        not_rescored=None if scores is not None else reason,
        disagreements=len(found),
        examples=found[:EXAMPLES],
    )


def _disagreement(row_id: str, completion: str, scores: dict[str, float | None],
                  reason: str | None = None) -> Disagreement:  # fmt: skip
    return Disagreement(row_id=row_id, completion=clip(completion, CLIP, count=True), scores=scores,
                        reason=clip(reason, CLIP) if reason else None)  # fmt: skip
