"""The plane interface every run tool talks to, and the records it returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

RunState = Literal["queued", "provisioning", "running", "done", "failed", "cancelled", "dry_run", "deployed"]
TERMINAL = frozenset({"done", "failed", "cancelled", "dry_run", "deployed"})


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


class ChatAnswer(BaseModel):
    text: str
    tokens: int = Field(description="Completion tokens, as the plane counted them")
    truncated: bool = Field(description="Stopped at max_tokens")


class Plane(Protocol):
    name: str

    def identity(self) -> Identity: ...
    def push(self, project: Path, name: str, project_id: str | None) -> PushResult: ...
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
    def deploy(self, checkpoint_id: str, *, dry_run: bool = False) -> Deployment: ...
    def deployment(self, checkpoint_id: str) -> Deployment: ...
    def undeploy(self, checkpoint_id: str) -> Deployment: ...
    def chat(self, checkpoint_id: str, messages: list[dict], *, temperature: float, max_tokens: int) -> ChatAnswer: ...


class SubmitRequest(BaseModel):
    """A validated config, ready for a plane: the resolved spec plus where it came from."""

    config_path: str
    project_dir: Path
    spec: dict[str, Any]
    authored_train_keys: list[str]
    raw: dict[str, Any] = Field(default_factory=dict, description="The config as authored, overrides applied")
    secret_folders: list[Path] = Field(default_factory=list, description="Where .env files with run secrets may be")
