"""What an environment test found, aggregated so the report stays small however big the dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from flash_mcp.domain.envtest.audit import Audit, RewardAudit
from flash_mcp.domain.envtest.probes import CHEAP

MAX_FAILURES = 10
MAX_ROW_IDS = 5
MAX_DISTINCT = 12
_WARNING_FLAGS = frozenset({"capped", "incomplete", "junk_error"})  # a row carrying none of these (and a non-zero
# replayed gold, without a thinking model) draws no row warning

_WARNINGS = {
    "gold-zero": "the gold answer scored 0",
    "no-gold": "the row has no gold answer text, so only the wrong answer was scored",
    "think-missing": "thinking is on but the gold answer has no <think>...</think> block",
    "turn-cap": "the gold episode ran to the turn cap without the environment finishing it",
    "replay-incomplete": "the gold trajectory ended before the episode did; the rest was played with wrong answers",
    "wrong-error": "the scorer reported an error on a wrong answer",
}


class RowFailure(BaseModel):
    row: int = Field(description="0-based row position")
    id: str = Field(description="Positional row id, e.g. example_000057")
    stage: str = Field(description="prompt, sft_completion, score, exception, timeout or crash")
    message: str


class EnvWarning(BaseModel):
    code: str
    message: str
    count: int = Field(description="Rows affected")
    rows: list[str] = Field(description="The first affected row ids")


class Distribution(BaseModel):
    count: int
    mean: float | None
    min: float | None
    max: float | None
    zeros: int = Field(description="How many scored exactly 0")
    values: list[float] = Field(description=f"Distinct values seen (up to {MAX_DISTINCT})")


class CandidateScore(BaseModel):
    row_id: str
    response: str
    score: float | None = None
    success: bool | None = None
    reason: str | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    error: str | None = None


class GraderGate(BaseModel):
    applies: bool = Field(description="The blocking gate runs for GRPO, which trains on the reward")
    passed: bool
    message: str


class EnvTestReport(BaseModel):
    verdict: Literal["pass", "fail"]
    summary: str
    environment: str | None = None
    multi_turn: bool | None = None
    dataset: str | None = None
    params: dict[str, Any]
    rows_total: int | None = Field(description="Rows in the dataset the environment loaded")
    rows_checked: int
    rows_passed: int
    rows_failed: int
    gold: Distribution = Field(description="Rewards of the gold answers")
    wrong: Distribution = Field(description="Rewards of a deliberately wrong answer")
    gate: GraderGate
    audit: RewardAudit = Field(description="Exploit families probed against the reward, each open or resisted")
    failures: list[RowFailure] = Field(description=f"The first {MAX_FAILURES} failing rows")
    warnings: list[EnvWarning]
    responses: list[CandidateScore] = Field(description="Scores of the candidate responses you supplied")
    load_error: str | None = None
    stopped: str | None = Field(default=None, description="Why the test ended before every row was checked")
    output: str = Field(description="The start and end of what the environment printed")
    output_bytes: int


@dataclass
class _Stats:
    count: int = 0
    total: float = 0.0
    low: float | None = None
    high: float | None = None
    zeros: int = 0
    distinct: set[float] = field(default_factory=set)
    last: float | None = None

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value == self.last:  # the common case, the row before's score: low, high and distinct already hold it
            self.zeros += value == 0.0
            return
        self.last = value
        if self.low is None or value < self.low:
            self.low = value
        if self.high is None or value > self.high:
            self.high = value
        if value == 0.0:
            self.zeros += 1
        if len(self.distinct) < MAX_DISTINCT:
            self.distinct.add(round(value, 6))

    def model(self) -> Distribution:
        mean = self.total / self.count if self.count else None
        return Distribution(
            count=self.count, mean=mean, min=self.low, max=self.high, zeros=self.zeros, values=sorted(self.distinct)
        )


@dataclass
class Tally:
    """Accumulates row results as they stream in from the child process."""

    algorithm: str = "grpo"
    thinking: bool = False
    configured: bool = False  # the algorithm came from a config: open exploit families can fail the test
    rows_total: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    checked: int = 0
    passed: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    failed: int = 0
    gold: _Stats = field(default_factory=_Stats)
    wrong: _Stats = field(default_factory=_Stats)
    eligible: int = 0
    eligible_zero: int = 0
    first_zero_wrong: float | None = None
    warnings: dict[str, list[str]] = field(default_factory=dict)
    warning_counts: dict[str, int] = field(default_factory=dict)
    responses: list[CandidateScore] = field(default_factory=list)
    load_error: str | None = None
    stop_reason: str | None = None
    audit: Audit = field(default_factory=Audit)

    def loaded(self, info: dict[str, Any]) -> None:
        if self.rows_total is None:
            self.rows_total = info["rows"]
            self.info = info
            declared = info.get("reward_range")
            self.audit.declared = (declared[0], declared[1]) if declared else None
            self.audit.multi = bool(info.get("multi_turn"))

    def target_rows(self, limit: int | None) -> int:
        total = self.rows_total if self.rows_total is not None else limit or 0
        return min(total, limit) if limit is not None else total

    def add_row(self, row: dict[str, Any]) -> None:
        self.checked += 1
        if not row["ok"]:
            self._fail(row["i"], row["id"], row.get("stage", "exception"), row.get("fail", ""))
            return
        self.passed += 1
        gold, wrong = row["gold"], row.get("junk")
        self.gold.add(gold)
        if wrong is not None:
            self.wrong.add(wrong)
        self._row_warnings(row, gold, wrong)
        self.audit.add(row)

    def add_plain(self, indices: Sequence[int], values: Sequence[float]) -> None:
        """Passing rows with no flag and only the cheap probes (most of a big dataset), four floats a row in
        `values` (gold, wrong answer, near miss, several answers): counted without building them, unless a warning
        or the audit may apply to one."""
        audit, golds, wrongs, plain = self.audit, self.gold, self.wrong, 0
        for k, index in enumerate(indices):
            gold, wrong, near, several = values[4 * k : 4 * k + 4]
            if gold == 0.0 or self.thinking or not audit.add_plain(gold, wrong, max(near, several)):
                row_id = f"example_{index:06d}"  # the SDK's positional id (freesolo's stable_example_id)
                probes = dict(zip(CHEAP, (near, several), strict=True))
                self.add_row({"i": index, "id": row_id, "ok": True, "gold": gold, "junk": wrong, "pr": probes})
                continue
            golds.add(gold)
            wrongs.add(wrong)
            plain += 1
        self.checked += plain
        self.passed += plain
        self.eligible += plain

    def _row_warnings(self, row: dict[str, Any], gold: float, wrong: float | None) -> None:
        replay = not row.get("echo")
        eligible = replay and not row.get("think") and not row.get("incomplete")
        if eligible:
            self.eligible += 1
            if gold == 0.0:
                self.eligible_zero += 1
                if self.first_zero_wrong is None:
                    self.first_zero_wrong = wrong
        if gold != 0.0 and replay and not self.thinking and row.keys().isdisjoint(_WARNING_FLAGS):
            return  # no warning can apply: the common row, kept cheap
        checks = {
            "gold-zero": replay and gold == 0.0,
            "no-gold": not replay,
            "think-missing": self.thinking and replay and not row.get("think"),
            "turn-cap": bool(row.get("capped")) and replay,
            "replay-incomplete": bool(row.get("incomplete")),
            "wrong-error": bool(row.get("junk_error")),
        }
        for code, hit in checks.items():
            if hit:
                self._warn(code, row["id"])

    def _warn(self, code: str, row_id: str) -> None:
        self.warning_counts[code] = self.warning_counts.get(code, 0) + 1
        rows = self.warnings.setdefault(code, [])
        if len(rows) < MAX_ROW_IDS:
            rows.append(row_id)

    def _fail(self, row: int, row_id: str, stage: str, message: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(RowFailure(row=row, id=row_id, stage=stage, message=message))

    def lost_row(self, row: int, kind: str, detail: str) -> None:
        """A row whose process hung or died counts as checked and failed."""
        self.checked += 1
        self._fail(row, f"example_{row:06d}", kind, detail)

    def load_failed(self, message: str, trace: str = "") -> None:
        tail = trace.strip().splitlines()[-6:] if trace else []
        self.load_error = message + ("\n" + "\n".join(tail) if tail else "")

    def stopped(self, reason: str) -> None:
        self.stop_reason = reason

    def add_response(self, event: dict[str, Any]) -> None:
        fields = {k: v for k, v in event.items() if k in CandidateScore.model_fields}
        fields["reason"] = fields.get("reason") or None
        fields["error"] = fields.get("error") or None
        self.responses.append(CandidateScore(**fields))

    def response_lost(self, number: int, detail: str) -> None:
        self.stop_reason = f"scoring candidate response {number} killed the environment process: {detail}"

    def gate(self) -> GraderGate:
        applies = self.algorithm == "grpo"
        all_zero = self.eligible > 0 and self.eligible_zero == self.eligible
        wrong_as_good = self.first_zero_wrong is not None and self.first_zero_wrong >= 0.0
        if applies and all_zero and wrong_as_good:
            message = (
                f"all {self.eligible} replayed gold answer(s) scored zero, no better than a deliberately wrong "
                "answer; the reward cannot recognize its own reference answers. Check the scorer, the format of "
                "`output`, and that the scorer's dependencies are installed."
            )
            return GraderGate(applies=True, passed=False, message=message)
        if not applies:
            return GraderGate(applies=False, passed=True, message=f"not a reward-trained run ({self.algorithm})")
        return GraderGate(
            applies=True,
            passed=True,
            message=f"gold answers score above zero on {self.eligible - self.eligible_zero} of {self.eligible} rows",
        )

    def audit_result(self) -> RewardAudit:
        return self.audit.result(self.algorithm if self.configured else None)

    def warning_models(self, audit: RewardAudit) -> list[EnvWarning]:
        found = [
            EnvWarning(code=code, message=_WARNINGS[code], count=self.warning_counts[code], rows=rows)
            for code, rows in self.warnings.items()
        ]
        found += [
            EnvWarning(code=code, message=message, count=count, rows=rows)
            for code, message, count, rows in self.audit.warnings(audit)
        ]
        dropped = self.info.get("dropped_params") or []
        if dropped:
            found.insert(
                0,
                EnvWarning(
                    code="params-dropped",
                    message=f"load_environment does not declare {', '.join(dropped)}; the SDK silently drops "
                    "those params. Add them to its signature (or **kwargs) or remove them from [environment.params]",
                    count=len(dropped),
                    rows=[],
                ),
            )
        return found


def build_report(tally: Tally, output: str, output_bytes: int, params: dict[str, Any]) -> EnvTestReport:
    gate = tally.gate()
    audit = tally.audit_result()
    if tally.load_error is None and tally.rows_total == 0:
        tally.load_error = "the environment's dataset is empty"
    failed = bool(tally.load_error or tally.failed or tally.stop_reason or not gate.passed or audit.blocking)
    return EnvTestReport(
        verdict="fail" if failed else "pass",
        summary=_summary(tally, gate, audit),
        environment=tally.info.get("environment"),
        multi_turn=tally.info.get("multi_turn"),
        dataset=tally.info.get("dataset"),
        params=params,
        rows_total=tally.rows_total,
        rows_checked=tally.checked,
        rows_passed=tally.passed,
        rows_failed=tally.failed,
        gold=tally.gold.model(),
        wrong=tally.wrong.model(),
        gate=gate,
        audit=audit,
        failures=sorted(tally.failures, key=lambda failure: failure.row),
        warnings=tally.warning_models(audit),
        responses=tally.responses,
        load_error=tally.load_error,
        stopped=tally.stop_reason,
        output=output,
        output_bytes=output_bytes,
    )


def _summary(tally: Tally, gate: GraderGate, audit: RewardAudit) -> str:
    if tally.load_error:
        return f"FAIL: environment.py did not load: {tally.load_error.splitlines()[0]}"
    head = f"{tally.passed}/{tally.checked} rows passed"
    if tally.rows_total is not None and tally.checked < tally.rows_total:
        head += f" (of {tally.rows_total} in the dataset)"
    if tally.failures:
        first = tally.failures[0]
        return f"FAIL: {head}; first failure row {first.row} ({first.id}, {first.stage}): {first.message}"
    if not gate.passed:
        return f"FAIL: {head}; {gate.message}"
    if tally.stop_reason:
        return f"FAIL: {head}; {tally.stop_reason}"
    gold, wrong = tally.gold.model(), tally.wrong.model()
    means = f"gold mean {gold.mean:.3f}, wrong-answer mean {wrong.mean:.3f}" if gold.mean is not None else ""
    opened = [f"{f.family} ({f.rows_open} rows)" for f in audit.families if f.status == "open"]
    if audit.any_answer_rows:
        opened.append(f"any answer earns the full reward on {', '.join(audit.any_answer_rows)}")
    if audit.blocking:
        return f"FAIL: {head}; the {tally.algorithm.upper()} reward can be gamed: {'; '.join(opened)}; {means}"
    kinds = len(tally.warnings) + sum(f.status in ("open", "partial") for f in audit.families)
    warned = f"; {kinds} warning kind(s)" if kinds else ""
    hacks = f"; exploits open: {', '.join(opened)}" if opened else ""
    return f"PASS: {head}; {means}{hacks}{warned}"
