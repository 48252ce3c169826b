"""The spend gate every launch passes: budgets, the approval policy, idempotency, proposals, the audit.

No run that can cost money reaches `plane.submit` except through `Gate.submit`, called with an
approval: the human's (elicitation or the CLI) or a policy the human wrote in settings.toml.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from flash_mcp.core.advice import human_command
from flash_mcp.core.errors import BudgetRefusal, NotPushed, UserError
from flash_mcp.core.human_settings import HumanSettings, load_human_settings
from flash_mcp.domain.approval.store import ApprovalStore, Proposal
from flash_mcp.domain.project import safe_fs
from flash_mcp.loop import notify
from flash_mcp.loop.review import data_drift, describe_request, review_details
from flash_mcp.loop.spend import Spend
from flash_mcp.planes.base import TERMINAL, LaunchPlan, Plane, Quote, RunView, SubmitRequest

GITHUB_REFS = ("github:", "https://github.com/", "http://github.com/")  # not pushed from here: no digest
ORG_RUNS_LISTED = 1000  # the concurrency limit counts the plane's active runs among these
REVIEWED = {"overrides", "config_diff", "data", "run"}


@dataclass(frozen=True)
class Launch:
    """A launch ready for a decision: what would run, where, for how much."""

    request: SubmitRequest
    plane: str
    quote: Quote
    config_digest: str
    environment_digest: str | None
    fingerprint: str
    paid: bool
    approval_reason: str | None  # why a human must approve; None when no approval is needed
    details: dict[str, Any] = field(default_factory=dict)  # overrides, their diff, data digests, the run

    @classmethod
    def from_proposal(cls, proposal: Proposal, request: SubmitRequest, quote: Quote) -> Launch:
        """The launch a stored proposal approved: its request, digests and reviewed details, at `quote`."""
        return cls(
            request=request, plane=proposal.plane, quote=quote, config_digest=proposal.config_digest,
            environment_digest=proposal.environment_digest, fingerprint=proposal.fingerprint, paid=True,
            approval_reason="proposal", details=proposal.model_dump(include=REVIEWED),
        )  # fmt: skip

    def summary(self, spent_today: float, daily_usd: float) -> str:
        """The approval question: only facts that stay the same when the client retries the call."""
        spec = self.request.spec
        rows = f"max_examples {spec['train'].get('max_examples') or 'all'}, max_steps {spec['train'].get('max_steps')}"
        return (
            f"Launch {spec['algorithm'].upper()} on {spec['model']} from {self.request.config_path} "
            f"on the {self.plane} plane{f' (billed to {self.quote.account})' if self.quote.account else ''}? "
            f"Environment {spec['environment']['id']} (digest {(self.environment_digest or 'n/a')[:12]}); {rows}. "
            f"Quote ${self.quote.usd:.2f} from the {self.plane} plane. "
            f"Spent today ${spent_today:.2f} of ${daily_usd:.2f}.\n"
            + describe_request(self.details.get("overrides") or {}, self.details.get("config_diff"),
                               self.details.get("data") or [], self.details.get("run") or {})
        )  # fmt: skip


def file_digest(path: Path) -> str:
    """sha256 of a regular file read by descriptor (see safe_fs), streamed."""
    digest = hashlib.sha256()
    with safe_fs.open_binary(path, path.name) as handle:
        for chunk in iter(lambda: handle.read(safe_fs.COPY_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def environment_digest(plane: Plane, environment_id: str) -> str | None:
    """The digest of what the push recorded, or None for a GitHub ref (nothing pushed from here)."""
    if environment_id.startswith(GITHUB_REFS):
        return None
    record = plane.pushed(environment_id)
    if record is None:
        raise NotPushed(environment_id, plane.name)
    return record.digest


def environment_unchanged(plane: Plane, environment_id: str) -> bool:
    if environment_id.startswith(GITHUB_REFS):
        return True
    record = plane.pushed(environment_id)
    return record is not None and plane.push_unchanged(record)


class Gate:
    def __init__(self, home: Path, plane: Plane, workspace_root: Path):
        self.home, self.plane, self.workspace_root = home, plane, workspace_root
        self.store = ApprovalStore(home)
        self.spend = Spend(home, plane)

    @property
    def settings(self) -> HumanSettings:
        return load_human_settings(self.home)

    def assess(self, plan: LaunchPlan, quote: Quote) -> Launch:
        """Budgets first (refusals name the setting), then whether a human must approve."""
        settings, request = self.settings, plan.request
        paid = self.plane.capabilities.bills or settings.approval.local_runs
        env_digest = plan.push.digest if plan.push is not None else None
        canonical = json.dumps(
            {"plane": self.plane.name, "config": request.config_path, "spec": request.spec, "raw": request.raw,
             "environment": env_digest},
            sort_keys=True, default=str,
        )  # fmt: skip
        launch = Launch(
            request=request, plane=self.plane.name, quote=quote, config_digest=plan.config_digest,
            environment_digest=env_digest, fingerprint=hashlib.sha256(canonical.encode()).hexdigest(), paid=paid,
            approval_reason=self._approval_reason(settings, paid, quote.usd),
            details=review_details(plan, self.workspace_root),
        )  # fmt: skip
        if paid:
            self.check_budget(quote.usd)
        return launch

    def _approval_reason(self, settings: HumanSettings, paid: bool, usd: float) -> str | None:
        if not paid:
            return None
        approval = settings.approval
        if approval.mode == "above_threshold" and usd <= approval.auto_approve_usd:
            return None
        if approval.mode == "above_threshold":
            return f"the quote ${usd:.2f} is above auto_approve_usd ${approval.auto_approve_usd:.2f}"
        return "[approval] mode is always"

    def check_budget(self, usd: float, *, concurrency: bool = True) -> None:
        budget = self.settings.budget
        where = f"{self.home / 'settings.toml'} [budget]"
        if usd > budget.max_run_usd:
            raise BudgetRefusal(
                f"the quote ${usd:.2f} is over max_run_usd ${budget.max_run_usd:.2f}",
                f"Shrink the run (max_steps, max_examples) or ask the human to raise max_run_usd in {where}",
            )
        listed = self.org_runs()
        self.spend.reconcile(listed)
        today, month = self.store.spent()
        for label, spent, limit, key in (("today", today, budget.daily_usd, "daily_usd"),
                                         ("this month", month, budget.monthly_usd, "monthly_usd")):  # fmt: skip
            if spent + usd > limit:
                raise BudgetRefusal(
                    f"${spent:.2f} spent {label} + this run's ${usd:.2f} is over {key} ${limit:.2f}",
                    f"Ask the human to raise {key} in {where}, or wait",
                )
        active = [run for run in listed if run.state not in TERMINAL]
        if concurrency and len(active) >= budget.max_concurrent_runs:
            raise BudgetRefusal(
                f"{len(active)} runs are active on the {self.plane.name} plane ({', '.join(r.run_id for r in active)}; "
                f"counted as the plane lists them, whoever started them), max_concurrent_runs is "
                f"{budget.max_concurrent_runs}",
                f"Wait for one to end, cancel one, or ask the human to raise max_concurrent_runs in {where}",
            )

    def org_runs(self) -> list[RunView]:
        """Every run the plane lists for this account, whoever started it (dry-run quotes are terminal)."""
        views, _ = self.plane.list_runs(None, ORG_RUNS_LISTED, 0)
        return views

    def existing(self, launch: Launch) -> RunView | Proposal | None:
        """The run this same launch started minutes ago, or the proposal still waiting for it."""
        run_id = self.store.recent_run(launch.fingerprint)
        if run_id is not None:
            return self.plane.get_run(run_id)
        return self.store.pending_for(launch.fingerprint)

    def propose(self, launch: Launch, client: dict[str, Any]) -> Proposal:
        with self.store.launch_lock():
            found = self.existing(launch)
            if isinstance(found, Proposal):
                return found
            proposal = self.store.propose(
                fingerprint=launch.fingerprint, plane=launch.plane, workspace=str(self.workspace_root),
                config=launch.request.config_path, request=launch.request.model_dump_json(),
                quote_usd=launch.quote.usd, quote_label=launch.quote.label, account=launch.quote.account,
                config_digest=launch.config_digest, environment_id=launch.request.spec["environment"]["id"],
                environment_digest=launch.environment_digest, details=launch.details,
            )  # fmt: skip
        self.store.audit("propose", proposal_id=proposal.id, **_facts(launch), client=client)
        notify.tell(self.home, f"proposal:{proposal.id}", "proposal-waiting", f"A {launch.plane} run waits for you",
                    f"{proposal.config}: ${proposal.quote_usd:.2f} ({proposal.id}); approve or deny it on the review "
                    f"page or with `{human_command('approve', proposal.id)}`")  # fmt: skip
        return proposal

    def submit(self, launch: Launch, *, how: str, client: dict[str, Any], proposal_id: str | None = None) -> RunView:
        """Submit once per fingerprint; a repeat within minutes returns the run already started.

        Under the state directory's launch lock (across processes): the duplicate check, the budgets and the
        concurrency limit are decided again, and the submit is recorded before the lock is released."""
        with self.store.launch_lock():
            found = self.store.recent_run(launch.fingerprint)
            if found is not None:
                return self.plane.get_run(found)
            if launch.paid:
                self.check_budget(launch.quote.usd)
            if launch.paid and how != "not needed":
                self.store.audit("approve", how=how, proposal_id=proposal_id, **_facts(launch), client=client)
            view = self.plane.submit(launch.request)
            self.store.record_spend(
                view.run_id, launch.plane, launch.fingerprint, launch.quote.usd if launch.paid else 0
            )
        self.store.audit(
            "submit", run_id=view.run_id, how=how, proposal_id=proposal_id, **_facts(launch), client=client
        )
        # The plane re-quotes at submit: a run already over its approval is flagged (or cancelled) now.
        return self.spend.run(view)[0] if launch.paid else view

    def approve(self, proposal: Proposal, config_file: Path, *, how: str, client: dict[str, Any]) -> RunView | None:
        """A human's yes to a stored proposal: single use, and only while config and environment match it.
        A deployment proposal is only marked approved (None): the agent's repeated `evaluate` uses it once."""
        if not self.store.decide(proposal.id, "approved"):
            raise UserError(f"{proposal.id} is {self._state(proposal.id)}; a proposal is approved at most once")
        if proposal.kind == "deployment":
            problem = self._drift(proposal, config_file)
            if problem is not None:
                self._refuse(proposal, problem, client)
            self.store.audit("approve", how=how, proposal_id=proposal.id, kind="deployment", config=proposal.config,
                             deployment=proposal.run.get("deploy"), client=client)  # fmt: skip
            return None
        request = SubmitRequest.model_validate_json(proposal.request)
        problem = self._drift(proposal, config_file) or data_drift(proposal)
        if problem is not None:
            self._refuse(proposal, problem, client)
        quote = Quote(
            plane=proposal.plane, usd=proposal.quote_usd, label=proposal.quote_label, account=proposal.account
        )
        try:
            launch = Launch.from_proposal(proposal, request, quote)
            view = self.submit(launch, how=how, client=client, proposal_id=proposal.id)
        except BudgetRefusal as exc:
            self._refuse(proposal, str(exc), client)
        self.store.settle(proposal.id, "submitted", view.run_id)
        return view

    def _refuse(self, proposal: Proposal, problem: str, client: dict[str, Any]) -> NoReturn:
        self.store.settle(proposal.id, "refused")
        self.store.audit("refuse", proposal_id=proposal.id, reason=problem, client=client)
        raise UserError(f"{proposal.id} was not submitted: {problem}")

    def deny(self, proposal: Proposal, *, client: dict[str, Any], reason: str | None = None) -> None:
        if not self.store.decide(proposal.id, "denied"):
            raise UserError(f"{proposal.id} is {self._state(proposal.id)}; only a pending proposal can be denied")
        if reason:
            self.store.note_denial(proposal.id, reason)
        self.store.audit("deny", proposal_id=proposal.id, quote_usd=proposal.quote_usd, config=proposal.config,
                         reason=reason, client=client)  # fmt: skip

    def _drift(self, proposal: Proposal, config_file: Path) -> str | None:
        """Why the proposal no longer matches the files (the config, the pushed environment), or None."""
        if not safe_fs.is_regular(config_file) or file_digest(config_file) != proposal.config_digest:
            return f"{proposal.config} changed since the proposal; launch again for a fresh proposal"
        env_id = proposal.environment_id
        if proposal.environment_digest is not None and (
            environment_digest(self.plane, env_id) != proposal.environment_digest
            or not environment_unchanged(self.plane, env_id)
        ):
            return f"the environment {env_id} changed since the proposal; push and launch again"
        return None

    def _state(self, proposal_id: str) -> str:
        current = self.store.get(proposal_id)
        if current is None:
            return "unknown"
        return "expired" if current.status == "pending" else current.status


def _facts(launch: Launch) -> dict[str, Any]:
    spec = launch.request.spec
    return {
        "plane": launch.plane, "config": launch.request.config_path, "config_digest": launch.config_digest,
        "environment_id": spec["environment"]["id"], "environment_digest": launch.environment_digest,
        "model": spec["model"], "algorithm": spec["algorithm"], "quote_usd": launch.quote.usd,
        "account": launch.quote.account,
    }  # fmt: skip
