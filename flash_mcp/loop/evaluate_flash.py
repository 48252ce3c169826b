"""Use case: evaluate a model target, gated where the plane's evaluation spends. On the Flash plane the checkpoint
is deployed (planes/flash/evaluate.py drives it); a deployment bills per token and Flash quotes no price for it,
so the quote is unknown and deploying always needs the human: asked in the client (elicitation), or a stored
proposal of kind `deployment` that `flash-mcp approve` marks approved; the agent's next `evaluate` with the same
arguments uses it once. The daily and monthly budgets must still have room. Every step is in the audit trail.
"""

from __future__ import annotations

import json
from typing import Any

from flash_mcp.core.advice import human_command
from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.evaluation.record import Evaluation
from flash_mcp.domain.evaluation.request import EvalApproval, EvalRequest
from flash_mcp.loop import evaluate as local
from flash_mcp.loop.gate import Gate, file_digest
from flash_mcp.planes.base import Plane

QUOTE_LABEL = "unknown: Flash bills a deployment per token and quotes no price for it"


def plan(settings: ServerSettings, plane: Plane, request: EvalRequest) -> EvalApproval | None:
    """Validate the config; the plane checks the target and the push and says what a human would approve
    (None: its evaluation spends nothing)."""
    return plane.plan_evaluation(local.load_config(settings, plane, request.config), request)


def start_evaluation(
    settings: ServerSettings, plane: Plane, gate: Gate, request: EvalRequest, *,
    can_ask: bool = False, approved: bool = False, client: dict[str, Any] | None = None,
) -> Evaluation:  # fmt: skip
    """Either plane: an evaluation that spends (a Flash deployment) is gated first, then the plane starts it."""
    config = local.load_config(settings, plane, request.config)
    ready = plane.plan_evaluation(config, request)
    how = "not needed" if ready is None else authorize(gate, ready, can_ask=can_ask, approved=approved,
                                                        client=client or {})  # fmt: skip
    eval_id = plane.start_evaluation(config, request, ready, gate.store, how)
    return local.read_evaluation(settings.home, eval_id)


def approved_already(gate: Gate, ready: EvalApproval) -> bool:
    return gate.store.approved_for(ready.fingerprint) is not None


# -- the decision --------------------------------------------------------------------------------


def authorize(gate: Gate, ready: EvalApproval, *, can_ask: bool, approved: bool, client: dict[str, Any]) -> str:
    """How the deployment was approved ('cli' proposal or 'elicitation'), or a refusal naming the next step."""
    gate.check_budget(0.0, concurrency=False)  # no price to add: the totals must still have room
    found = gate.store.approved_for(ready.fingerprint)
    if found is not None:
        gate.store.settle(found.id, "submitted", ready.checkpoint)
        return f"proposal {found.id}"
    if can_ask and approved:
        gate.store.audit("approve", how="elicitation", kind="deployment", deployment=ready.checkpoint,
                         config=ready.config.path, quote_usd=None, client=client)  # fmt: skip
        return "elicitation"
    if can_ask:
        gate.store.audit("decline", how="elicitation", kind="deployment", deployment=ready.checkpoint,
                         config=ready.config.path, client=client)  # fmt: skip
        raise UserError(f"not evaluated: the human declined deploying {ready.checkpoint}; nothing was deployed")
    proposal = gate.store.pending_for(ready.fingerprint) or _propose(gate, ready, client)
    raise UserError(
        f"deploying {ready.checkpoint} bills per token and Flash gives no price, so the human must approve it: "
        f"ask them to run `{human_command('approve', proposal.id)}`, then call evaluate again with the same "
        "arguments. "
        "Nothing was deployed"
    )


def _propose(gate: Gate, ready: EvalApproval, client: dict[str, Any]):
    config_file = gate.workspace_root / ready.config.path
    proposal = gate.store.propose(
        fingerprint=ready.fingerprint, plane="flash", workspace=str(gate.workspace_root), config=ready.config.path,
        request=json.dumps({"checkpoint": ready.checkpoint, "target": ready.request.target}), quote_usd=0.0,
        quote_label=QUOTE_LABEL, account=None, config_digest=file_digest(config_file),
        environment_id=ready.environment_id, environment_digest=ready.environment_digest,
        details={"kind": "deployment", "run": {"deploy": ready.checkpoint, "split": ready.request.split,
                                               "suite": ready.request.suite, "max_rows": ready.request.max_rows,
                                               "sampling": ready.request.sampling.model_dump()}},
    )  # fmt: skip
    gate.store.audit("propose", proposal_id=proposal.id, kind="deployment", deployment=ready.checkpoint,
                     config=ready.config.path, quote_usd=None, client=client)  # fmt: skip
    return proposal
