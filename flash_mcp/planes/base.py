"""The plane interface every run tool talks to, and the records it returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.domain.config.resolve import ResolvedSpec
from flash_mcp.domain.packaging.package import current_digest

if TYPE_CHECKING:
    from flash_mcp.domain.approval.store import ApprovalStore
    from flash_mcp.domain.config.validate import Validation
    from flash_mcp.domain.evaluation.record import EvalSpec
    from flash_mcp.domain.evaluation.request import ConfigView, EvalApproval, EvalRequest

RunState = Literal["queued", "provisioning", "running", "done", "failed", "cancelled", "dry_run", "deployed"]
TERMINAL = frozenset({"done", "failed", "cancelled", "dry_run", "deployed"})


class PlaneUnavailable(UserError):
    """The plane cannot be built yet (no login): what needs no plane call, such as a proposal, goes on offline."""


@dataclass(frozen=True)
class PlaneCapabilities:
    """What a plane can do, known before it is built (a Flash plane needs a key to be built; its
    capabilities do not): callers ask these, never the plane's name."""

    name: str
    open_world: bool  # an outside service (tool annotations say so)
    bills: bool  # its runs cost money: every launch passes the approval policy
    requires_project: bool  # configs must name a project (Flash's project UUID)
    serves_checkpoints: bool  # evaluation deploys a checkpoint and chats with it (billed, so approved)
    evaluates_base: bool  # evaluate(target='base') scores the base model directly (else: a baseline run)
    quotes_hosted: bool  # its dry run is Flash's own quote (no separate hosted-estimate note needed)
    watch_seconds: float  # how often the run watcher may list its runs (0: as often as the watcher ticks)
    algorithms: frozenset[str]  # what it trains


@dataclass(frozen=True)
class PushRecord:
    """What a push recorded: the id, the digest of the files as authored, and where they came from; a plane
    that keeps the package (local) says where."""

    environment_id: str
    digest: str
    source: str
    created_at: float
    package: str | None = None
    files: int | None = None
    bytes: int | None = None

    def unchanged(self, exclude: tuple[Path, ...] = ()) -> bool:
        """The source on disk still has the pushed digest (False when it cannot be read)."""
        try:
            return current_digest(Path(self.source), exclude=exclude) == self.digest
        except (UserError, OSError):
            return False


class Identity(BaseModel):
    plane: str
    who: str = Field(description="Who the plane acts as (the org that pays, on Flash)")
    detail: dict[str, Any] = Field(default_factory=dict)


class PushResult(BaseModel):
    plane: str
    environment_id: str = Field(description="The id to put in [environment] id")
    digest: str = Field(description="Digest of the pushed files as authored")
    files: int
    bytes: int
    packaged: list[str] = Field(default_factory=list, description="The packaged files (the first 40)")
    account: str | None = Field(default=None, description="Who owns the pushed environment on this plane")


class Quote(BaseModel):
    plane: str
    usd: float = Field(description="What this run is expected to cost on this plane")
    label: str = Field(description="Where the number comes from")
    hosted_estimate_usd: float | None = Field(
        default=None, description="Flash's own offline estimate for the hosted plane (GRPO/OPD), when available"
    )
    account: str | None = Field(default=None, description="Who would pay: the org behind the plane's key")


class DryRun(BaseModel):
    plane: str
    rows: int | None = Field(description="Training rows after max_examples")
    steps: int | None = Field(description="Optimizer steps the run will take")
    tokens: int | None = Field(description="Input + gold-output tokens over the training rows (the model's tokenizer)")
    wall_time_s: float | None = Field(description="Expected wall time, from earlier local runs of this model")
    trained_model: str | None = Field(description="The model that would actually train (a stand-in locally)")
    quote: Quote
    notes: list[str]


class RunView(BaseModel):
    run_id: str
    plane: str
    state: RunState
    stage: str | None = None
    algorithm: str
    model: str
    trained_model: str | None = Field(default=None, description="What actually trained, when it differs from model")
    config: str | None = None
    environment_id: str | None = None
    created_at: float
    updated_at: float
    finished_at: float | None = None
    step: int | None = None
    total_steps: int | None = None
    heartbeat_age_s: float | None = None
    latest_metrics: dict[str, float] = Field(default_factory=dict)
    cost_usd: float | None = None
    estimated_cost_usd: float | None = None
    error: str | None = None
    notes: list[str] = Field(default_factory=list)


class WorkerArtifact(BaseModel):
    name: str
    attempt: int | None
    label: str = Field(description="Which attempt wrote it, and whether that attempt is still the live one")
    tail: str = Field(description="The artifact's last characters")


class LogWindow(BaseModel):
    run_id: str
    offset: int
    next_offset: int
    size: int = Field(description="Log size in bytes right now")
    text: str
    more: bool = Field(description="True when more log follows next_offset")
    worker: list[WorkerArtifact] = Field(
        default_factory=list, description="Worker console artifacts (Flash), shown once the log is read to its end"
    )


class Checkpoint(BaseModel):
    id: str = Field(description="RUN/step-N or RUN/final")
    step: int | None
    path: str | None = None


class Deployment(BaseModel):
    """A checkpoint served for chat (Flash: /v1/runs/{id}/deploy); billed per token while it is up."""

    checkpoint_id: str
    state: str = Field(description="deploying, ready, failed, undeploying or undeployed")
    error: str | None = None
    detail: str | None = None


Turns = list[list[str] | None] | None  # each re-scored pair's recorded model turns (a multi-turn episode's)


@dataclass(frozen=True)
class Rescore:
    """(row, completion) pairs scored again under an evaluation's environment: one score per pair (None where the
    scorer errored or the episode could not be replayed, `errors` saying why), or, with `scores` None, why this
    plane cannot re-score them."""

    scores: list[float | None] | None
    reason: str | None = None
    errors: list[str | None] | None = None
    failed: bool = False  # the environment's process failed while re-scoring: no pair scored, and no verdict


class ChatAnswer(BaseModel):
    text: str
    tokens: int = Field(description="Completion tokens, as the plane counted them")
    truncated: bool = Field(description="Stopped at max_tokens")


class Plane(Protocol):
    """Where runs go. Serving (deploy, chat) is a plane's own business behind `start_evaluation`."""

    name: str
    capabilities: PlaneCapabilities

    def identity(self) -> Identity: ...
    def push(self, project: Path, name: str, project_id: str | None) -> PushResult: ...
    def pushed(self, environment_id: str) -> PushRecord | None: ...
    def push_unchanged(self, record: PushRecord) -> bool: ...
    def wait(self, seconds: float) -> None: ...
    def dry_run(self, request: SubmitRequest) -> DryRun: ...
    def submit(self, request: SubmitRequest) -> RunView: ...
    def list_runs(self, state: str | None, limit: int, offset: int) -> tuple[list[RunView], int]: ...
    def get_run(self, run_id: str) -> RunView: ...
    def read_logs(self, run_id: str, offset: int, max_bytes: int) -> LogWindow: ...
    def metrics(self, run_id: str) -> list[dict[str, Any]]: ...
    def samples(self, run_id: str, step: int | None) -> list[dict[str, Any]]: ...
    def checkpoints(self, run_id: str) -> list[Checkpoint]: ...
    def spec(self, run_id: str) -> dict[str, Any]: ...
    def run_ids(self, prefix: str, limit: int) -> list[str]: ...
    def cancel(self, run_id: str) -> RunView: ...
    def guard_proposals(self, status: str | None) -> list[dict[str, Any]]:
        """The proposals a spend guard holds for this plane (guarded mode); none where no guard holds its key."""

    def plan_evaluation(self, config: ConfigView, request: EvalRequest) -> EvalApproval | None:
        """Check an evaluation; what a human must approve first (None when it spends nothing)."""

    def start_evaluation(
        self,
        config: ConfigView,
        request: EvalRequest,
        approval: EvalApproval | None,
        store: ApprovalStore | None,
        how: str,
    ) -> str:
        """Start the evaluation as a job of its own (FLASH_MCP_HOME/evals/<id>/); its id, at once."""

    def rescore(self, spec: EvalSpec, pairs: list[tuple[str, str]], turns: Turns = None) -> Rescore:
        """Score (row id, completion) pairs again through a fresh environment worker that knows no target, under
        the environment `spec` was measured with (the comparison's consistency check); a multi-turn episode is
        replayed from its recorded model turns (`turns`, one list or None per pair)."""


class SubmitRequest(BaseModel):
    """A validated config, ready for a plane: the resolved spec plus where it came from."""

    config_path: str
    project_dir: Path
    spec: dict[str, Any]
    authored_train_keys: list[str]
    raw: dict[str, Any] = Field(default_factory=dict, description="The config as authored, overrides applied")
    secret_folders: list[Path] = Field(default_factory=list, description="Where .env files with run secrets may be")
    push: PushRecord | None = Field(default=None, exclude=True, description="The launch's push record, read once")

    @property
    def resolved(self) -> ResolvedSpec:
        """The spec, typed."""
        return ResolvedSpec.model_validate(self.spec)

    @property
    def environment_id(self) -> str:
        return str((self.spec.get("environment") or {}).get("id") or "")

    @property
    def environment_params(self) -> dict[str, Any]:
        return dict((self.spec.get("environment") or {}).get("params") or {})

    @property
    def train(self) -> dict[str, Any]:
        return dict(self.spec.get("train") or {})


@dataclass(frozen=True)
class LaunchPlan:
    """One launch's facts, derived once by the launch use case (loop/launch.py:plan_launch) and handed down to
    the preflight, the gate, the review and the plane: the config read once, validated once, the push record
    read once."""

    config_file: Path
    overrides: dict[str, Any]
    raw: dict[str, Any]  # the config as authored
    validation: Validation  # with the overrides applied
    request: SubmitRequest  # the resolved spec and the merged config (`request.raw`)
    config_digest: str  # sha256 of the config file as read
    config_text: str  # the config file as read (the review's diff is made from it)
    push: PushRecord | None  # None for a GitHub ref (nothing pushed from here), or when never pushed
    pushed: bool  # pushed to this plane, or a GitHub ref
    push_fresh: bool  # the pushed source is unchanged on disk (True for a GitHub ref)

    @property
    def environment_id(self) -> str:
        return self.request.environment_id
