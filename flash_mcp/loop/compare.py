"""compare_evaluations: a paired comparison of two finished evaluations measured with the same ruler.

Plain Python over the evaluation store (FLASH_MCP_HOME/evals); the surface and the CLI call `compare`.
Row pairing follows the evaluations' own summary rule (domain/evaluation/pairing.py): a sample counts
when it has a score and did not error (truncated answers count, scored at the token ceiling); a row's
score is the mean of its counted samples; a row pairs when both sides have at least one. Rows left out
are counted and reported beside the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.visible import clip
from flash_mcp.domain.evaluation import consistency, record
from flash_mcp.domain.evaluation.consistency import Consistency
from flash_mcp.loop.evaluate import read_evaluation
from flash_mcp.planes.base import Plane, Rescore, Turns

if TYPE_CHECKING:
    from flash_mcp.domain.evaluation import pairing
# Pairing, statistics and charts are imported where used: listing tools must not load them.

FLIPS_DEFAULT, FLIPS_MAX = 5, 20
CLIP = 400
CHECKED_MAX = 32  # comparisons whose consistency check is remembered (finished evaluations do not change)
Rescorer = Callable[[record.EvalSpec, list[tuple[str, str]], Turns], Rescore]
_CHECKED: dict[tuple, Consistency] = {}


class Side(BaseModel):
    eval_id: str
    target: str
    mean: float | None = Field(description="Mean row score over the paired rows")
    interval: tuple[float, float] | None = Field(description="95% bootstrap interval of that mean")
    successes: int | None = Field(description="Paired rows that succeeded (majority of samples)")
    share_truncated: float
    share_errored: float
    tokens_per_answer: float | None


class Flip(BaseModel):
    row_id: str
    score_a: float
    score_b: float
    completion_a: str
    completion_b: str


class FlipPage(BaseModel):
    total: int
    shown: list[Flip]


class Comparison(BaseModel):
    a: Side
    b: Side
    verdict: str = Field(
        description="B against A: improved, regressed or no detectable difference when mean reward and success "
        "agree, else each named ('mean reward improved; success no detectable difference (0/9 → 0/9)'); "
        "'unstable or target-aware reward' refuses a verdict"
    )
    reward_verdict: str | None = Field(description="Mean reward's own verdict; null when refused")
    success_verdict: str | None = Field(description="Success's own verdict (McNemar); null without success or refused")
    reason: str
    rows_paired: int
    rows_left_out: int = Field(description="Rows without a scored sample on one side (errored or missing)")
    difference: float = Field(description="Mean of per-row (B - A)")
    interval: tuple[float, float] = Field(description="Paired bootstrap 95% interval of the difference")
    mde: float | None = Field(description="Smallest difference these rows could detect (alpha 0.05, power 0.8)")
    mcnemar_p: float | None = Field(description="Exact McNemar p on per-row success; null without a success signal")
    flipped_improved: FlipPage = Field(description="Rows that went from failure to success (or up, without success)")
    flipped_regressed: FlipPage = Field(description="Rows that went from success to failure (or down)")
    flips_next_offset: int | None = Field(description="Pass as flips_offset for more flips; null when all shown")
    ruler: dict
    consistency: Consistency = Field(description="Whether the same completion on the same row scored the same")
    notes: list[str]


def load_finished(home: Path, eval_id: str) -> record.Evaluation:
    """A finished evaluation, or a UserError saying why it cannot be compared yet."""
    evaluation = read_evaluation(home, eval_id)  # a job that died is marked failed, not left "running"
    if evaluation.state in ("queued", "running"):
        done, total = evaluation.progress.done, evaluation.progress.total
        raise UserError(
            f"{eval_id} is still {evaluation.state} ({done}/{total} rows); a partial comparison names no winner: "
            f"wait with get_evaluation('{eval_id}', wait_s=60)"
        )
    if evaluation.state != "done":
        why = f": {evaluation.error}" if evaluation.error else ""
        raise UserError(f"{eval_id} {evaluation.state}{why}; only finished evaluations compare — evaluate again")
    return evaluation


def measure(home: Path, a: str, b: str) -> tuple[record.Evaluation, record.Evaluation, pairing.Pairing]:
    """Load both evaluations, check the ruler, pair the rows and compute the statistics."""
    from flash_mcp.domain.evaluation import pairing

    if a == b:
        raise UserError(f"{a} compared with itself says nothing; for a null check evaluate the target again "
                        "with another seed and compare the two")  # fmt: skip
    first, second = load_finished(home, a), load_finished(home, b)
    differences = pairing.ruler_differences(first.spec, second.spec)
    if differences:
        raise UserError(
            f"{a} and {b} were not measured with the same ruler: {'; '.join(differences)}. "
            "Evaluate both targets on the same split, rows, environment and sampling, then compare"
        )
    return first, second, pairing.pair(first, second)


def compare(home: Path, a: str, b: str, flips_offset: int = 0, flips_limit: int = FLIPS_DEFAULT,
            rescore: Rescorer | None = None) -> Comparison:  # fmt: skip
    """B against A, row by row; refuses unless both were measured with the same ruler, and names no winner
    unless the reward scored the same completion the same on both sides and again, blind (`rescore`)."""
    from flash_mcp.domain.evaluation import stats

    first, second, m = measure(home, a, b)
    ids, result = m.ids, m.result
    improved, regressed = _flips(m)
    limit = max(1, min(flips_limit, FLIPS_MAX))
    end = flips_offset + limit
    more = end < max(len(improved), len(regressed))
    side_a, side_b = _side(first, [m.rows_a[r] for r in ids]), _side(second, [m.rows_b[r] for r in ids])
    checked = check(first, second, rescore)
    reward, success = result.verdict, stats.success_verdict(result.mcnemar, result.rows) if m.with_success else None
    counts = (side_a.successes or 0, side_b.successes or 0)
    verdict, reason = stats.headline(reward, success, counts, result.rows), result.reason
    if not checked.consistent:
        verdict, reward, success = stats.UNSTABLE, None, None
        reason = _unstable(checked)
    return Comparison(
        a=side_a, b=side_b, verdict=verdict, reward_verdict=reward, success_verdict=success, reason=reason,
        rows_paired=result.rows, rows_left_out=len(first.spec.row_ids) - len(ids), difference=result.difference,
        interval=(result.interval.low, result.interval.high), mde=result.mde,
        mcnemar_p=result.mcnemar.p_value if m.with_success else None,
        flipped_improved=FlipPage(total=len(improved), shown=improved[flips_offset:end]),
        flipped_regressed=FlipPage(total=len(regressed), shown=regressed[flips_offset:end]),
        flips_next_offset=end if more else None, ruler=_ruler(first.spec), consistency=checked,
        notes=_notes(first, second, m),
    )  # fmt: skip


def _unstable(checked: Consistency) -> str:
    """Why a comparison names no winner: the pairs that scored differently, and the first one's reason."""
    why = next((d.reason for d in checked.examples if d.reason), None)
    return (f"{checked.disagreements} (row, completion) pair(s) scored differently on another side or when scored "
            "again blind (a multi-turn episode: replayed)" + (f", e.g. {why}" if why else "") +
            "; no verdict until the reward is deterministic and target-blind")  # fmt: skip


def through(plane_for: Callable[[str], Plane]) -> Rescorer:
    """A rescorer asking the plane each evaluation was measured on (built on first use)."""

    def rescore(spec: record.EvalSpec, pairs: list[tuple[str, str]], turns: Turns) -> Rescore:
        return plane_for(spec.plane).rescore(spec, pairs, turns)

    return rescore


def check(first: record.Evaluation, second: record.Evaluation, rescore: Rescorer | None) -> Consistency:
    """The consistency check (remembered per pair of finished evaluations): identical completions across sides,
    and a mixed, shuffled re-score of both sides' pairs through the plane's fresh worker."""
    key = tuple((e.spec.eval_id, e.spec.created_at, e.summary.n_rows) for e in (first, second))
    if key in _CHECKED:
        return _CHECKED[key]
    probes = consistency.probes(first, second)
    answer = Rescore(None, "no plane to re-score with")
    if rescore is not None and probes:
        try:
            answer = rescore(first.spec, [(p.row_id, p.completion) for p in probes], [p.turns for p in probes])
        except UserError as exc:
            answer = Rescore(None, str(exc))
    scores = answer.scores if answer.scores is not None and len(answer.scores) == len(probes) else None
    found = consistency.judge(
        first, second, probes, scores, answer.reason or "the re-score answered wrongly", answer.errors
    )
    if answer.failed:
        return found  # not remembered: the next comparison re-scores again
    if len(_CHECKED) >= CHECKED_MAX:
        _CHECKED.pop(next(iter(_CHECKED)))
    _CHECKED[key] = found
    return found


def chart(home: Path, a: str, b: str, rescore: Rescorer | None = None) -> bytes:
    """The comparison as a PNG: both means and the paired difference with intervals, and every row's move."""
    from flash_mcp.domain.evaluation import plots

    first, second, m = measure(home, a, b)
    verdict = compare(home, a, b, rescore=rescore).verdict
    result = m.result
    side_a = _side(first, [m.rows_a[r] for r in m.ids])
    side_b = _side(second, [m.rows_b[r] for r in m.ids])
    improved, regressed = _flips(m)
    moved = {f.row_id: 1 for f in improved} | {f.row_id: -1 for f in regressed}
    return plots.comparison_png(
        plots.ComparisonPlot(
            label_a=f"{a} ({side_a.target})", label_b=f"{b} ({side_b.target})",
            mean_a=side_a.mean or 0.0, interval_a=side_a.interval or (0.0, 0.0),
            mean_b=side_b.mean or 0.0, interval_b=side_b.interval or (0.0, 0.0),
            difference=result.difference, interval=(result.interval.low, result.interval.high), mde=result.mde,
            verdict=verdict,
            pairs=[(m.rows_a[r].score, m.rows_b[r].score, moved.get(r, 0)) for r in m.ids],
            by_success=bool(m.with_success),
        )
    )  # fmt: skip


def _ruler(spec: record.EvalSpec) -> dict:
    """The ruler both were measured with, without the row list (its length stands for it)."""
    from flash_mcp.domain.evaluation import pairing

    return {k: v for k, v in pairing.ruler(spec).items() if k != "row_ids"} | {"rows": len(spec.row_ids)}


def _flips(m: pairing.Pairing) -> tuple[list[Flip], list[Flip]]:
    """Rows whose success changed; without any success signal, rows whose score changed. Largest moves first."""
    ids, rows_a, rows_b, with_success = m.ids, m.rows_a, m.rows_b, m.with_success
    if with_success:
        moved = [r for r in with_success if rows_a[r].success != rows_b[r].success]
    else:
        moved = [r for r in ids if rows_a[r].score != rows_b[r].score]
    moved.sort(key=lambda r: -abs(rows_b[r].score - rows_a[r].score))
    flips = [
        Flip(row_id=r, score_a=rows_a[r].score, score_b=rows_b[r].score,
             completion_a=clip(rows_a[r].completion, CLIP, count=True),
             completion_b=clip(rows_b[r].completion, CLIP, count=True))
        for r in moved
    ]  # fmt: skip
    went_up = {r for r in moved if (rows_b[r].success if with_success else rows_b[r].score > rows_a[r].score)}
    return [f for f in flips if f.row_id in went_up], [f for f in flips if f.row_id not in went_up]


def _side(evaluation: record.Evaluation, rows: list[pairing.Row]) -> Side:
    from flash_mcp.domain.evaluation import pairing, stats

    scores = [r.score for r in rows]
    interval = stats.bootstrap_interval(scores, seed=pairing.SEED) if scores else None
    known = [r.success for r in rows if r.success is not None]
    summary = evaluation.summary
    return Side(
        eval_id=evaluation.spec.eval_id, target=evaluation.spec.target,
        mean=stats.mean(scores) if scores else None, interval=(interval.low, interval.high) if interval else None,
        successes=sum(known) if known else None, share_truncated=summary.share_truncated,
        share_errored=summary.share_errored, tokens_per_answer=summary.tokens_per_answer,
    )  # fmt: skip


def _notes(first: record.Evaluation, second: record.Evaluation, m: pairing.Pairing) -> list[str]:
    from flash_mcp.domain.evaluation import stats

    result = m.result
    notes = _agreement(m)
    truncated = first.summary.share_truncated, second.summary.share_truncated
    if abs(truncated[0] - truncated[1]) >= 0.05:
        notes.append(
            f"answers truncated at max_tokens: A {truncated[0]:.0%}, B {truncated[1]:.0%}; they are scored as they "
            "stood at the ceiling, so part of the difference may be length, not quality: read the flips"
        )
    errored = first.summary.share_errored, second.summary.share_errored
    if abs(errored[0] - errored[1]) >= 0.05:
        notes.append(
            f"answers errored: A {errored[0]:.0%}, B {errored[1]:.0%}; errored rows are left out of the pairing, "
            "so read them before trusting the verdict"
        )
    if result.verdict == stats.NO_DIFFERENCE and result.mde is not None:
        notes.append(
            f"a true difference smaller than {result.mde:.3g} would likely go unseen with {result.rows} rows; "
            "evaluate more rows to see smaller effects"
        )
    if first.spec.sampling.seed == second.spec.sampling.seed and first.spec.target == second.spec.target:
        notes.append("same target and seed: this compares the evaluation with a replay of itself")
    return notes


def _agreement(m: pairing.Pairing) -> list[str]:
    """Say so when the interval (mean score) and McNemar (success) point different ways."""
    from flash_mcp.domain.evaluation import stats

    result = m.result
    if not m.with_success or result.rows < stats.MIN_ROWS:
        return []
    significant = result.mcnemar.p_value < stats.ALPHA
    if (result.verdict != stats.NO_DIFFERENCE) == significant:
        return []
    discordant = result.mcnemar.improved + result.mcnemar.regressed
    if significant:
        return [f"success changed significantly (McNemar p = {result.mcnemar.p_value:.3g}) although the mean "
                "score did not move beyond its interval: read the flips"]  # fmt: skip
    return [f"the mean score moved but success alone is not significant (McNemar p = {result.mcnemar.p_value:.3g}, "
            f"{discordant} row(s) changed success; the smallest p possible with them is "
            f"{min(1.0, 2 / 2**discordant):.3g})"]  # fmt: skip


def render(c: Comparison) -> str:
    """The comparison as compact text (a few hundred tokens plus the shown flips)."""
    from flash_mcp.domain.evaluation import stats

    a, b = c.a, c.b
    low, high = c.interval
    lines = [
        f"# {b.eval_id} ({b.target}) vs {a.eval_id} ({a.target}): {c.verdict}",
        f"B - A = {c.difference:+.3g} mean score per row, 95% interval [{low:+.3g}, {high:+.3g}] "
        f"(paired bootstrap, {stats.RESAMPLES:,} resamples, {c.rows_paired} rows) — {c.reason}",
        f"mean reward: A {_num(a.mean)} {_ci(a.interval)} · B {_num(b.mean)} {_ci(b.interval)}"
        + (f" — {c.reward_verdict}" if c.reward_verdict else ""),
    ]
    if c.mcnemar_p is not None:
        lines.append(
            f"success: A {a.successes}/{c.rows_paired} → B {b.successes}/{c.rows_paired}; exact McNemar p = "
            f"{c.mcnemar_p:.3g} ({c.flipped_improved.total} rows improved, {c.flipped_regressed.total} regressed)"
            + (f" — {c.success_verdict}" if c.success_verdict else "")
        )
    lines += _consistency_lines(c.consistency)
    if c.rows_paired == 0:
        lines.insert(1, "no row was scored on both sides: there is nothing to compare (see errored below)")
    if c.mde is not None:
        mde = f"{c.mde:.3g}"
    else:
        mde = "undefined (" + ("too few rows" if c.rows_paired < 2 else "every row moved by the same amount") + ")"
    lines.append(f"smallest detectable difference with {c.rows_paired} rows: {mde} (alpha 0.05, power 0.8)")
    sampling = c.ruler["sampling"]
    lines.append(
        f"ruler: {c.ruler['split']}, {c.ruler['rows']} rows, environment {c.ruler['environment_digest'][:12]}, "
        f"temperature {sampling['temperature']:g}, max_tokens {sampling['max_tokens']}, "
        f"{sampling['samples_per_row']} sample(s)/row"
    )
    lines.append(
        f"left out: {c.rows_left_out} row(s) · truncated A {a.share_truncated:.0%} B {b.share_truncated:.0%} · "
        f"errored A {a.share_errored:.0%} B {b.share_errored:.0%} · tokens/answer A {_num(a.tokens_per_answer)} "
        f"B {_num(b.tokens_per_answer)}"
    )
    lines += [f"note: {n}" for n in c.notes]
    for title, page in (("Regressed", c.flipped_regressed), ("Improved", c.flipped_improved)):
        lines += ["", f"## {title}: {page.total} row(s)" + (f", {len(page.shown)} shown" if page.shown else "")]
        for flip in page.shown:
            lines.append(f"- {flip.row_id}: {flip.score_a:.3g} → {flip.score_b:.3g}")
            lines.append(f"  A: {flip.completion_a!r}")
            lines.append(f"  B: {flip.completion_b!r}")
    if c.flips_next_offset is not None:
        lines.append(f"\nmore flips: compare_evaluations(a, b, flips_offset={c.flips_next_offset})")
    return "\n".join(lines) + "\n"


def _consistency_lines(checked: Consistency) -> list[str]:
    if checked.disagreements:
        out = [f"reward consistency: {checked.disagreements} (row, completion) pair(s) scored differently:"]
        for d in checked.examples:
            scores = ", ".join(f"{where} {_num(score)}" for where, score in d.scores.items())
            out.append(f"- {d.row_id}: {d.completion!r} scored {scores}" + (f" ({d.reason})" if d.reason else ""))
        return out
    if checked.rescored:
        return [f"reward consistency: {checked.rescored} pair(s) of both sides re-scored blind, mixed: all agreed"]
    return [f"reward consistency: identical completions across sides agreed; not re-scored ({checked.not_rescored})"]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _ci(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"[{interval[0]:.3g}, {interval[1]:.3g}]"
