"""Use case: `evaluate(target="base")` on the Flash plane. Flash serves trained adapters only (no base-model
endpoint), and Flash 1.3.28 reads `train.max_steps = 0` as "no limit", so the zero-step run whose adapter is
the base model cannot be launched. The nearest thing is launched instead: a one-step run at learning_rate
1e-9, through the same launch use case as `launch_training` (validation, preflight, push freshness, quote,
budgets, the approval policy, elicitation or a proposal for `flash-mcp approve`, audit). Its `RUN/final` is
then evaluated like any checkpoint; chaining that evaluation is left to the agent (the exact call is returned).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.approval.store import ProposalView
from flash_mcp.loop import launch
from flash_mcp.loop.evaluate import EvalRequest
from flash_mcp.loop.gate import Gate, Launch
from flash_mcp.planes.base import Plane

OVERRIDES: dict[str, Any] = {"train.max_steps": 1, "train.learning_rate": 1e-9}
WHY = (
    "Flash has no base-model endpoint and 1.3.28 reads train.max_steps = 0 as 'no limit', so the baseline is a "
    "one-step run with learning_rate 1e-9 (overrides train.max_steps = 1, train.learning_rate = 1e-9). LoRA "
    "starts with its B matrix at zero, so the adapter adds exactly nothing to the base weights; one optimizer "
    "step at 1e-9 moves B by about 1e-9, far below what changes an answer, so its RUN/final is the base model "
    "to within that."
)


class Baseline(BaseModel):
    status: str = Field(description="launched, existing_run or awaiting_approval")
    state: str = Field(description="The baseline run's state, or awaiting_approval")
    run_id: str | None = Field(description="The baseline run (null while its proposal waits for the human)")
    quote_usd: float
    proposal: ProposalView | None = None
    approve_command: str | None = None
    why: str = WHY
    next: list[str]


def is_baseline(plane: Plane, request: EvalRequest) -> bool:
    return not plane.capabilities.evaluates_base and request.target.strip() == "base"


def prepare(settings: ServerSettings, plane: Plane, gate: Gate, request: EvalRequest) -> Launch:
    """Everything `launch_training(config, overrides=OVERRIDES)` checks before a decision."""
    return launch.prepare_launch(settings, plane, gate, request.config, dict(OVERRIDES))


def question(gate: Gate, ready: Launch) -> str:
    return f"Baseline for evaluate(target='base'): {WHY}\n{launch.approval_question(gate, ready)}"


def launch_baseline(
    settings: ServerSettings, plane: Plane, gate: Gate, request: EvalRequest, *,
    can_ask: bool = False, approved: bool = False, client: dict[str, Any] | None = None,
) -> Baseline:  # fmt: skip
    """Launch (or propose, or find) the baseline run; say how to evaluate it once it is done."""
    ready = prepare(settings, plane, gate, request)
    report = launch.decide(gate, ready, can_ask=can_ask, approved=approved, client=client or {})
    run = report.run_id or "RUN"
    follow = f"evaluate({next_call(request, f'{run}/final')})"
    if report.run_id is None:
        steps = [*report.next, f"once the human approved it, find the baseline run with list_runs; when it is done: "
                               f"{follow}"]  # fmt: skip
    else:
        steps = [f"get_run(run_id='{run}', wait_s=...) until it is done, then {follow}",
                 "then compare_evaluations(<that eval>, <the trained checkpoint's eval>)"]  # fmt: skip
    return Baseline(status=report.status, state=report.state, run_id=report.run_id, quote_usd=report.quote_usd,
                    proposal=report.proposal, approve_command=report.approve_command, next=steps)  # fmt: skip


def next_call(request: EvalRequest, target: str) -> str:
    """The same evaluation of `target`: same rows (split or suite, max_rows) and sampling."""
    rows = f"suite='{request.suite}'" if request.suite else f"split='{request.split}'"
    sampling = request.sampling
    return (
        f"config='{request.config}', target='{target}', {rows}, max_rows={request.max_rows}, "
        f"temperature={sampling.temperature}, max_tokens={sampling.max_tokens}, "
        f"samples_per_row={sampling.samples_per_row}, seed={sampling.seed}"
    )
