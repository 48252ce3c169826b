"""An evaluation: what was measured (spec), the scored rows, and the summary. The contract between the
`evaluate` job, `get_evaluation`, and `compare_evaluations`.

On disk, one directory per evaluation, FLASH_MCP_HOME/evals/<eval_id>/:
  spec.json     the EvalSpec, written once before the job starts (atomic)
  status.json   state, progress, error, times (atomic replace; the job and the server write it)
  rows.jsonl    one EvalRow per line, appended as rows are scored (a reader skips a half-written last line)
  cancel        present when a cancel was requested (the job stops at the next batch)
  log           the job's stdout/stderr
  job.json      what the evaluator runs (the server writes it); prompts.jsonl, answers.jsonl and package/ for Flash's
Once it ends, the server keeps only these (job_files.EVAL_LAYOUT). No heavy imports here: all sides read these.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field, StringConstraints

from flash_mcp.domain import lifecycle
from flash_mcp.domain.runs import rundir

SPEC = "spec.json"
STATUS = "status.json"
ROWS = "rows.jsonl"
CANCEL = "cancel"
LOG = "log"
WORKERS = "workers.json"
JOB = "job.json"

EvalState = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_STATES = ("done", "failed", "cancelled")
STATES = get_args(EvalState)
MAX_LINE = 1 << 20  # one row's JSON: a prompt and completion are clipped long before this
MAX_ROWS_BYTES = 256 << 20  # read from rows.jsonl per load, at most
MAX_REJECTED = 1000  # rejected lines after which the rest of rows.jsonl is not read
MAX_SUITE_CASES = 10_000
TURNS_MAX = 65  # a multi-turn row's recorded model turns, at most (runtime/episode.py MAX_TURNS, and one over)
TURNS_CHARS = 64_000  # their characters together, at most; a longer episode is kept without them (not replayable)
TARGET_PATTERN = re.compile(r"^(base|(?P<run>[A-Za-z0-9][A-Za-z0-9_.-]*)/(?P<point>final|step-(?P<step>\d+)))$")


class Sampling(BaseModel):
    """How completions were drawn. Part of the ruler: two evaluations compare only with equal sampling."""

    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy decoding")
    max_tokens: int = Field(64, ge=1, le=4096, description="token ceiling per answer; hitting it = truncated")
    samples_per_row: int = Field(1, ge=1, le=16)
    seed: int = 0


class EvalSpec(BaseModel):
    eval_id: str
    target: str = Field(description='"base", "RUN/final" or "RUN/step-N"')
    plane: str
    config: str = Field(description="config path, workspace-relative")
    model: str = Field(description="the base model id")
    adapter: str | None = Field(None, description="adapter directory (local) or run id serving it (flash); None = base")
    environment_id: str
    environment_digest: str = Field(description="digest of the environment code that scored the rows")
    split: str = Field(description='dataset split, e.g. "test", or "suite:<name>" for an evaluations.py suite')
    row_ids: list[str] = Field(description='split-qualified, e.g. "test:example_000003"; order = evaluation order')
    sampling: Sampling = Field(default_factory=Sampling)
    environment_params: dict[str, Any] = Field(default_factory=dict, description="[environment.params] as loaded")
    created_at: float = Field(default_factory=time.time)


class EvalRowView(BaseModel):
    row_id: str
    sample: int = 0
    prompt: str | list[dict[str, Any]] = ""
    completion: str = ""
    score: float | None = Field(None, description="None when the row errored (kept out of the mean)")
    success: bool | None = None
    truncated: bool = False
    errored: bool = False
    error: str | None = None
    tokens: int = 0


class EvalRow(EvalRowView):
    """A row as rows.jsonl keeps it: a multi-turn row also holds the model's turns, for the comparison's replay
    (None for a single-turn row, or an episode over the caps: not replayable)."""

    turns: list[Annotated[str, StringConstraints(max_length=TURNS_CHARS)]] | None = Field(None, max_length=TURNS_MAX)


class EvalSummary(BaseModel):
    n_rows: int = Field(0, description="rows x samples attempted")
    n_scored: int = Field(0, description="rows with a score (not errored); the mean is over these")
    mean_reward: float | None = None
    success_rate: float | None = None
    share_truncated: float = 0.0
    share_errored: float = 0.0
    tokens_per_answer: float | None = None
    mean_reward_untruncated: float | None = Field(None, description="mean over scored rows that ended on their own")


class Progress(BaseModel):
    done: int = 0
    total: int = 0


class Evaluation(BaseModel):
    spec: EvalSpec
    state: EvalState = "queued"
    progress: Progress = Field(default_factory=Progress)
    rows: list[EvalRow] = Field(default_factory=list)
    rows_rejected: int = Field(0, description="Row lines the sealed spec does not name, rejected (never shown)")
    summary: EvalSummary = Field(default_factory=EvalSummary)
    error: str | None = None
    notes: list[str] = Field(default_factory=list)
    created_at: float = Field(default_factory=time.time)
    finished_at: float | None = None


# -- targets ---------------------------------------------------------------------------------


def parse_target(target: str) -> tuple[str | None, str | None]:
    """("RUN", "final" | "step-N") or (None, None) for "base"; ValueError on anything else."""
    match = TARGET_PATTERN.match(target.strip())
    if not match:
        raise ValueError(f'target {target!r}: use "base", "RUN/final" or "RUN/step-N"')
    if match.group(1) == "base":
        return None, None
    return match.group("run"), match.group("point")


def new_eval_id() -> str:
    return f"eval-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


# -- the ruler -------------------------------------------------------------------------------


# -- summary ---------------------------------------------------------------------------------


def summarize(rows: list[EvalRow]) -> EvalSummary:
    """Errored rows (the scorer or the prompt failed: no measurement) are kept out of the mean and the
    success rate and reported beside them as share_errored. Truncated rows are the model's answer as it
    stood at max_tokens, scored as Flash scores it, so they count; share_truncated says how many they
    were and mean_reward_untruncated shows the mean without them."""
    n = len(rows)
    if not n:
        return EvalSummary()
    scored = [row for row in rows if row.score is not None and not row.errored]
    complete = [row.score for row in scored if not row.truncated]
    successes = [row.success for row in scored if row.success is not None]
    answered = [row.tokens for row in rows if not row.errored]
    return EvalSummary(
        n_rows=n,
        n_scored=len(scored),
        mean_reward=_mean([row.score for row in scored]),
        success_rate=_mean([float(s) for s in successes]),
        share_truncated=sum(row.truncated for row in rows) / n,
        share_errored=sum(row.errored for row in rows) / n,
        tokens_per_answer=_mean([float(t) for t in answered]),
        mean_reward_untruncated=_mean(complete),
    )


def _mean(values: list[Any]) -> float | None:
    return sum(values) / len(values) if values else None


# -- files -----------------------------------------------------------------------------------


def evals_root(home: Path) -> Path:
    return Path(home) / "evals"


def eval_dir(home: Path, eval_id: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", eval_id):
        raise ValueError(f"not an evaluation id: {eval_id!r}")
    return evals_root(home) / eval_id


def write_json(path: Path, value: Any) -> None:
    rundir.write_json(path, value)


def read_json(path: Path) -> dict[str, Any] | None:
    """The evaluator writes its directory: no symlink it planted is followed, no FIFO blocks."""
    return rundir.read_json(path)


def write_spec(directory: Path, spec: EvalSpec, *, seal: bool = True) -> None:
    """spec.json for the job, and (server side, `seal`) the server's own copy beside the directory,
    out of the sandboxed evaluator's reach: what was measured is never the job's to relabel."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / SPEC, spec.model_dump(mode="json"))
    if seal:
        write_json(_sealed(directory), spec.model_dump(mode="json"))
    if not (directory / STATUS).exists():
        total = len(spec.row_ids) * spec.sampling.samples_per_row
        write_json(directory / STATUS, {"state": "queued", "done": 0, "total": total})


def _sealed(directory: Path, name: str = SPEC) -> Path:
    return directory.parent / f".{directory.name}.{name}"


def write_workers(directory: Path, scratch: list[str]) -> None:
    """The server's record of the scratch directories of an evaluation's environment workers (removed once
    it ends), out of every job's reach."""
    write_json(_sealed(directory, WORKERS), {"scratch": scratch})


def restore_spec(directory: Path) -> None:
    """spec.json from the server's sealed copy, where the job's is gone or unreadable (once the job has ended)."""
    sealed = read_json(_sealed(directory))
    if sealed is not None and read_json(directory / SPEC) is None:
        write_json(directory / SPEC, sealed)


def worker_scratch(directory: Path) -> list[str]:
    found = (read_json(_sealed(directory, WORKERS)) or {}).get("scratch")
    return [str(path) for path in found] if isinstance(found, list) else []


def read_spec(directory: Path) -> EvalSpec | None:
    """The server's sealed spec when there is one (a suite's case ids, known only to the job, are
    taken from the job's copy); otherwise, as in the evaluator itself, the job's spec.json."""
    data, sealed = read_json(directory / SPEC), read_json(_sealed(directory))
    if sealed is None:
        return EvalSpec.model_validate(data) if data else None
    spec = EvalSpec.model_validate(sealed)
    if spec.split.startswith("suite:") and not spec.row_ids and data:
        with contextlib.suppress(ValueError):
            spec = spec.model_copy(update={"row_ids": EvalSpec.model_validate(data).row_ids[:MAX_SUITE_CASES]})
    return spec


def update_status(directory: Path, **fields: Any) -> dict[str, Any]:
    status = read_json(directory / STATUS) or {}
    status.update(fields)
    status["updated_at"] = time.time()
    write_json(directory / STATUS, status)
    return status


def append_rows(directory: Path, rows: list[EvalRow]) -> None:
    with (directory / ROWS).open("a", encoding="utf-8") as handle:
        handle.write("".join(row.model_dump_json() + "\n" for row in rows))
        handle.flush()


def read_rows(directory: Path, spec: EvalSpec) -> tuple[list[EvalRow], int]:
    """(accepted rows, rejected lines): only rows the spec names, each (row, sample) once, with a finite score;
    unknown, duplicate, malformed or over-long lines are rejected and counted, never shown. Streamed: reading
    stops once every expected row is in, so a spec naming two rows costs two rows however big the file is.
    A partially written last line (a job mid-append or killed) is skipped without counting."""
    expected = {row_id: spec.sampling.samples_per_row for row_id in spec.row_ids}
    wanted = sum(expected.values())
    rows: list[EvalRow] = []
    seen: set[tuple[str, int]] = set()
    rejected = 0
    for line in _lines(directory / ROWS):
        row = _row(line)
        key = (row.row_id, row.sample) if row else None
        if row is None or key in seen or not 0 <= row.sample < expected.get(row.row_id, 0):
            rejected += 1
            if rejected >= MAX_REJECTED:
                break  # a forger's file: stop reading it
            continue
        seen.add(key)  # type: ignore[arg-type]
        rows.append(row)
        if len(rows) == wanted:
            break
    return rows, rejected


def _row(line: bytes | None) -> EvalRow | None:
    if line is None:
        return None
    try:
        row = EvalRow.model_validate_json(line)
    except (ValueError, RecursionError):
        return None
    return row if row.score is None or math.isfinite(row.score) else None


def _lines(path: Path) -> Iterator[bytes | None]:
    """Complete lines of a regular file (no symlink, no FIFO), at most MAX_ROWS_BYTES read; None for a line over
    MAX_LINE (skipped unread)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        budget = MAX_ROWS_BYTES
        while budget > 0:
            line = handle.readline(min(MAX_LINE + 1, budget))
            budget -= len(line)
            if not line.endswith(b"\n"):
                if len(line) <= MAX_LINE:
                    return  # the end, or a half-written last line
                budget -= _skip_line(handle, budget)
                yield None
                continue
            yield line


def _skip_line(handle: Any, budget: int) -> int:
    skipped = 0
    while skipped < budget:
        chunk = handle.readline(min(1 << 20, budget - skipped))
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            break
    return skipped


def judged(directory: Path, reported: object, told: object) -> tuple[EvalState, str | None]:
    """(state, error) as the server shows them: the end it sealed (domain/lifecycle.py), else what the job
    reports if that is not an end (a live evaluator's forged `done` shows as running)."""
    record = lifecycle.read_record(directory)
    error = told[:2000] if isinstance(told, str) else None
    if record.ended:
        return record.ended, record.error if record.ended == "failed" else error  # type: ignore[return-value]
    if reported in ("queued", "running") or (not record.recorded and reported in STATES):
        return reported, error if reported == "failed" else None  # type: ignore[return-value]
    return ("running" if record.process else "queued"), None


def load_evaluation(directory: Path) -> Evaluation | None:
    """The evaluation as stored; its state as the server judged it (the server decides whether a job died)."""
    spec = read_spec(directory)
    if spec is None:
        return None
    try:
        status, unreadable = rundir.load_json(directory / STATUS) or {}, None
    except rundir.Unreadable as exc:
        status, unreadable = {}, f"the evaluator's {exc}"
    rows, rejected = read_rows(directory, spec)
    state, error = judged(directory, status.get("state"), status.get("error"))
    notes, finished = status.get("notes"), status.get("finished_at")
    notes = [n[:500] for n in notes[:20] if isinstance(n, str)] if isinstance(notes, list) else []
    notes += lifecycle.read_record(directory).notes
    if rejected:
        notes.append(f"{rejected} row line(s) the spec does not name (unknown, repeated or malformed) were rejected")
    total = len(spec.row_ids) * spec.sampling.samples_per_row
    return Evaluation(
        spec=spec,
        state=state,
        progress=Progress(done=len(rows), total=total),
        rows=rows,
        rows_rejected=rejected,
        summary=summarize(rows),
        error=error or unreadable,
        notes=notes,
        created_at=spec.created_at,
        finished_at=finished if isinstance(finished, int | float) and not isinstance(finished, bool) else None,
    )


def list_eval_ids(home: Path) -> list[str]:
    root = evals_root(home)
    if not root.is_dir():
        return []
    found = [(p.stat().st_mtime, p.name) for p in root.iterdir() if (p / SPEC).is_file()]
    return [name for _, name in sorted(found, reverse=True)]
