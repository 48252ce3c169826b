"""What an evaluation is asked for, before any plane runs it: the request, the config it scores with, the
held-out rows it reads, and (for a plane whose evaluation spends money) the facts a human approves."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.domain.evaluation.record import JOB as JOB  # re-exported: the evaluator's job file
from flash_mcp.domain.evaluation.record import Sampling
from flash_mcp.domain.project.dataset import read_rows, row_id

FLASH_ONLY_PARAMS = ("dataset_path", "records")


@dataclass(frozen=True)
class EvalRequest:
    config: str
    target: str = "base"
    split: str = "test"
    suite: str | None = None  # an evaluations.py suite instead of the split's rows
    max_rows: int | None = None
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class ConfigView:
    path: str
    project_dir: Path
    spec: dict[str, Any]


def held_out_rows(package: Path, split: str, max_rows: int | None) -> list[str]:
    """Split-qualified positional ids of the first max_rows rows of dataset/<split>.jsonl in the package."""
    if not split or not split.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"split {split!r}: use a dataset file name such as 'test' (dataset/test.jsonl)")
    path = next((p for p in (package / "dataset" / f"{split}.jsonl", package / "dataset" / f"{split}.json")
                 if p.is_file()), None)  # fmt: skip
    if path is None:
        raise UserError(
            f"the pushed environment has no dataset/{split}.jsonl: add held-out rows there (append_dataset_rows), "
            "keep them out of train.jsonl, and call push_environment again"
        )
    rows = read_rows(path)
    bad = [row.line for row in rows if row.error]
    if bad:
        raise UserError(f"dataset/{split}.jsonl has rows that are not JSON (lines {bad[:5]}); fix them and push again")
    if not rows:
        raise UserError(f"dataset/{split}.jsonl is empty; add held-out rows and push again")
    count = len(rows) if max_rows is None else min(len(rows), max_rows)
    return [f"{split}:{row_id(index)}" for index in range(count)]


def environment_params(spec: dict[str, Any], split: str | None) -> dict[str, Any]:
    """The config's environment params, reading `split` (when given) from the package, not the train data."""
    params = {k: v for k, v in (spec["environment"].get("params") or {}).items() if k not in FLASH_ONLY_PARAMS}
    if split is not None:
        params["split"] = split
    return params


@dataclass(frozen=True)
class EvalApproval:
    """What a plane's evaluation would spend, checked before a decision (Flash: the deployment it makes)."""

    request: EvalRequest
    config: ConfigView
    checkpoint: str
    environment_id: str
    environment_digest: str
    source: Path
    fingerprint: str
    question: str  # what the human is asked
    plane: str
    thinking: bool = False  # the run's own `thinking`: the CLI strips <think> before scoring only then
