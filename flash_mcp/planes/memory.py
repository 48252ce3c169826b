"""An in-memory plane, the way httpx tests use `MockTransport`: the whole `Plane` protocol with no process, no
network and no store. Pushes digest the project as `flash env push` would; runs are records a test moves
through their states (`set_state`). It counts what it is asked (`calls`), so a test can hold a use case to
asking a fact once. Registered in planes/__init__.py by one line; a new plane needs nothing else."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.domain.evaluation.record import EvalSpec
from flash_mcp.domain.evaluation.request import ConfigView, EvalApproval, EvalRequest
from flash_mcp.domain.packaging.package import build_package, normalize_name
from flash_mcp.planes.base import (
    TERMINAL,
    Checkpoint,
    DryRun,
    Identity,
    LogWindow,
    PlaneCapabilities,
    PushRecord,
    PushResult,
    Quote,
    Rescore,
    RunState,
    RunView,
    SubmitRequest,
    Turns,
)

CAPABILITIES = PlaneCapabilities(
    name="memory", open_world=False, bills=True, requires_project=False, serves_checkpoints=False,
    evaluates_base=True, quotes_hosted=True, watch_seconds=0.0, algorithms=frozenset({"sft", "grpo", "opd"}),
)  # fmt: skip


class MemoryPlane:
    name = "memory"
    capabilities = CAPABILITIES

    def __init__(self, home: Path | None = None, *, usd: float = 1.0):
        self.home = home
        self.usd = usd  # every dry run quotes this
        self.pushes: dict[str, PushRecord] = {}
        self.runs: dict[str, RunView] = {}
        self.specs: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.waited = 0.0

    def identity(self) -> Identity:
        return Identity(plane=self.name, who="memory")

    def push(self, project: Path, name: str, project_id: str | None) -> PushResult:
        slug = normalize_name(name) or "env"
        package = build_package(project, slug, exclude=(self.home,) if self.home else ())
        environment_id = f"memory/{project_id or 'default'}/{slug}"
        self.pushes[environment_id] = PushRecord(
            environment_id=environment_id, digest=package.digest, source=str(project), created_at=time.time(),
            files=len(package.members), bytes=package.total_bytes,
        )  # fmt: skip
        return PushResult(plane=self.name, environment_id=environment_id, digest=package.digest,
                          files=len(package.members), bytes=package.total_bytes)  # fmt: skip

    def pushed(self, environment_id: str) -> PushRecord | None:
        self.calls["pushed"] += 1
        return self.pushes.get(environment_id)

    def push_unchanged(self, record: PushRecord) -> bool:
        return record.unchanged(exclude=(self.home,) if self.home else ())

    def wait(self, seconds: float) -> None:
        self.waited += seconds

    def dry_run(self, request: SubmitRequest) -> DryRun:
        self.calls["dry_run"] += 1
        quote = Quote(plane=self.name, usd=self.usd, label="the memory plane's fixed quote")
        return DryRun(plane=self.name, rows=None, steps=None, tokens=None, wall_time_s=None,
                      trained_model=request.spec.get("model"), quote=quote, notes=[])  # fmt: skip

    def submit(self, request: SubmitRequest) -> RunView:
        self.calls["submit"] += 1
        run_id = f"memory-{len(self.runs) + 1}"
        now = time.time()
        self.specs[run_id] = dict(request.spec)
        self.runs[run_id] = RunView(
            run_id=run_id, plane=self.name, state="queued", algorithm=str(request.spec.get("algorithm")),
            model=str(request.spec.get("model")), config=request.config_path, created_at=now, updated_at=now,
            environment_id=(request.spec.get("environment") or {}).get("id"), estimated_cost_usd=self.usd,
        )  # fmt: skip
        return self.runs[run_id]

    def add_run(self, run_id: str, state: RunState = "running", **fields: Any) -> RunView:
        """A run as another client of the same account would have started it."""
        now = time.time()
        defaults = {"algorithm": "sft", "model": "m", "created_at": now, "updated_at": now}
        self.runs[run_id] = RunView(run_id=run_id, plane=self.name, state=state, **{**defaults, **fields})
        return self.runs[run_id]

    def set_state(self, run_id: str, state: RunState, **fields: Any) -> RunView:
        self.runs[run_id] = self._run(run_id).model_copy(update={"state": state, **fields})
        return self.runs[run_id]

    def list_runs(self, state: str | None, limit: int, offset: int) -> tuple[list[RunView], int]:
        self.calls["list_runs"] += 1
        runs = sorted(self.runs.values(), key=lambda run: run.created_at, reverse=True)
        runs = [run for run in runs if state is None or run.state == state]
        return runs[offset : offset + limit], len(runs)

    def get_run(self, run_id: str) -> RunView:
        return self._run(run_id)

    def read_logs(self, run_id: str, offset: int, max_bytes: int) -> LogWindow:
        self._run(run_id)
        return LogWindow(run_id=run_id, offset=offset, next_offset=offset, size=0, text="", more=False)

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        self._run(run_id)
        return []

    def samples(self, run_id: str, step: int | None) -> list[dict[str, Any]]:
        self._run(run_id)
        return []

    def checkpoints(self, run_id: str) -> list[Checkpoint]:
        run = self._run(run_id)
        return [Checkpoint(id=f"{run_id}/final", step=None)] if run.state == "done" else []

    def spec(self, run_id: str) -> dict[str, Any]:
        self._run(run_id)
        return self.specs.get(run_id, {})

    def run_ids(self, prefix: str, limit: int) -> list[str]:
        return [run_id for run_id in self.runs if run_id.startswith(prefix)][:limit]

    def guard_proposals(self, status: str | None) -> list[dict[str, Any]]:
        return []  # no spend guard holds this plane's runs

    def cancel(self, run_id: str) -> RunView:
        run = self._run(run_id)
        return run if run.state in TERMINAL else self.set_state(run_id, "cancelled", finished_at=time.time())

    def plan_evaluation(self, config: ConfigView, request: EvalRequest) -> EvalApproval | None:
        self.calls["plan_evaluation"] += 1
        return None

    def start_evaluation(self, config: ConfigView, request: EvalRequest, approval: EvalApproval | None,
                         store: ApprovalStore | None, how: str) -> str:  # fmt: skip
        raise UserError("the memory plane keeps no evaluator; evaluate on the local or the flash plane")

    def rescore(self, spec: EvalSpec, pairs: list[tuple[str, str]], turns: Turns = None) -> Rescore:
        self.calls["rescore"] += 1
        return Rescore(None, "the memory plane keeps no environment to re-score with")

    def _run(self, run_id: str) -> RunView:
        if run_id not in self.runs:
            raise UserError(f"no memory run {run_id!r}; list_runs shows the runs on this plane")
        return self.runs[run_id]


def make(home: Path) -> MemoryPlane:
    return MemoryPlane(home)
