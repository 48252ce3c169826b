"""The Flash 1.3.28 training config as a pydantic model: every key, its type, bounds and algorithms.

`TRAIN_KNOBS` is the single source for `[train]`: the pydantic model (and so the JSON Schema
agents read) and the validator's bounds both come from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from flash_mcp.domain.config.catalog import ALGORITHMS, DEFAULT_MODEL, GPU_ALIASES, MODELS, TEACHERS

ROLLOUT = ("grpo", "opd")


@dataclass(frozen=True)
class Knob:
    """One `[train]` key."""

    kind: Literal["int", "float", "str", "steps", "step_list", "stops", "structured", "choice"]
    description: str
    algorithms: tuple[str, ...] = ALGORITHMS
    minimum: float | None = None
    exclusive: bool = False
    maximum: float | None = None
    introduced_in: str = "0.2.0"
    choices: tuple[str, ...] = ()


TRAIN_KNOBS: dict[str, Knob] = {
    "epochs": Knob("int", "Passes over the dataset. Recipe: sft 2, grpo 1, opd 1.", minimum=1),
    "max_examples": Knob(
        "int",
        "Rows to train on (0 or unset = every row). GRPO/OPD quotes need this or max_steps.",
        minimum=0,
    ),
    "max_steps": Knob("steps", "Exact optimizer-update horizon; 0 or negative = unset (derived)."),
    "save_every": Knob("int", "Checkpoint every N steps. Recipe: sft 50, grpo/opd 20.", minimum=1),
    "save_at_steps": Knob(
        "step_list",
        "Exact steps to checkpoint: strictly increasing positive ints <= max_steps; needs max_steps.",
        introduced_in="0.2.57",
    ),
    "lora_rank": Knob("int", "LoRA rank (default 32), at most the model's serving max_lora_rank.", minimum=1),
    "lora_alpha": Knob("int", "LoRA alpha (default 2 x lora_rank).", minimum=1, introduced_in="1.1.35"),
    "learning_rate": Knob(
        "float", "Optimizer learning rate. Recipe: sft 1e-4, grpo/opd 1e-5.", minimum=0.0, exclusive=True
    ),
    "max_context_tokens": Knob(
        "int",
        "Context cap in tokens (<= 32768). For grpo/opd it must exceed the completion budget; "
        "unset means over-long prompts are dropped.",
        minimum=1,
        introduced_in="0.2.49",
    ),
    "init_from_adapter": Knob(
        "str", "Warm start from `RUN_ID/final` or `RUN_ID/step-N`; forbids lora_rank and lora_alpha."
    ),
    "batch_size": Knob("int", "SFT optimizer batch (grpo/opd use prompts_per_step).", ("sft",), minimum=1),
    "prompts_per_step": Knob(
        "int",
        "Prompts per optimizer step (grpo default 64, opd 8); grpo: x group_size <= 512.",
        ROLLOUT,
        minimum=1,
        introduced_in="1.1.43",
    ),
    "group_size": Knob("int", "Completions per prompt: grpo 2, 4, 8 or 16 (default 8); opd 1.", ROLLOUT, minimum=1),
    "temperature": Knob("float", "Sampling temperature for rollouts (default 1.0).", ROLLOUT, minimum=0.0),
    "max_completion_tokens": Knob(
        "int",
        "Tokens per model turn: grpo 320 (1536 with thinking), opd 512 (1536).",
        ROLLOUT,
        minimum=1,
        introduced_in="0.2.49",
    ),
    "kl_penalty_coef": Knob("float", "KL penalty scale; opd needs > 0 (default 1.0).", ROLLOUT, minimum=0.0),
    "stop_sequences": Knob("stops", "A stop string or a list of them, for rollouts.", ROLLOUT),
    "structured_outputs": Knob(
        "structured",
        'Guided decoding: a JSON schema table or string, {regex|choice|json_object = ...}, or "json_object".',
        ROLLOUT,
        introduced_in="0.2.56",
    ),
    "thinking_length_penalty_coef": Knob(
        "float", "Penalty on reasoning length, 0..1 (grpo only).", ("grpo",), minimum=0.0, maximum=1.0
    ),
    "credit_assignment": Knob(
        "choice",
        '"per_episode" (default) or "per_turn" (needs per_turn_rewards metadata from the environment).',
        ("grpo",),
        introduced_in="1.0.2",
        choices=("per_episode", "per_turn"),
    ),
    "teacher_model": Knob(
        "choice",
        "OPD teacher (default glm-5.3).",
        ("opd",),
        introduced_in="0.2.56",
        choices=tuple(TEACHERS),
    ),
}

TOP_LEVEL_KEYS = ("model", "project", "algorithm", "thinking", "seed", "environment", "train", "gpu", "wandb")
TABLES = ("environment", "train", "gpu", "wandb")
ENVIRONMENT_KEYS = ("id", "params", "pip", "secrets")
GPU_KEYS = ("type", "count", "provider", "providers")
WANDB_KEYS = ("project", "run_name")


def _train_field(knob: Knob) -> tuple[Any, Any]:
    python_type: Any = {
        "int": int,
        "float": float,
        "str": str,
        "steps": int,
        "step_list": list[int],
        "stops": str | list[str],
        "structured": dict[str, Any] | str | bool,
        "choice": Literal[knob.choices] if knob.choices else str,  # type: ignore[valid-type]
    }[knob.kind]
    bounds = {}
    if knob.minimum is not None:
        bounds["gt" if knob.exclusive else "ge"] = knob.minimum
    if knob.maximum is not None:
        bounds["le"] = knob.maximum
    extra = {"algorithms": list(knob.algorithms), "introduced_in": knob.introduced_in}
    field = Field(None, description=knob.description, json_schema_extra=extra, **bounds)
    return python_type | None, field


TrainTable = create_model(
    "TrainTable",
    __config__=ConfigDict(extra="forbid"),
    __doc__="[train]: every training knob, one flat table. `algorithms` says which algorithms accept a key.",
    **{name: _train_field(knob) for name, knob in TRAIN_KNOBS.items()},
)


class EnvironmentTable(BaseModel):
    """[environment]: which pushed environment to train on, and how to load it."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(
        description='Pushed environment id "org/project/name" (or "local/project/name", or '
        '"github:OWNER/REPO@REF:path" on a self-hosted plane). Required.'
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for load_environment(**params); `split` picks dataset/<split>.jsonl.",
    )
    pip: list[str] = Field(default_factory=list, description="Requirements the scorer imports, e.g. ['sympy>=1.12'].")
    secrets: list[str] = Field(
        default_factory=list, description="Names of env vars the environment reads; values come from shell/.env."
    )


class GpuTable(BaseModel):
    """[gpu]: optional; omit for managed, cheapest-fit allocation."""

    model_config = ConfigDict(extra="forbid")
    type: str | list[str] | None = Field(
        None, description=f"A GPU class or an ordered list of them: {', '.join(sorted(set(GPU_ALIASES.values())))}."
    )
    count: int | None = Field(None, ge=1, le=8, description="Card ceiling 1..8 (only 1, 2, 4, 8 are rented).")
    provider: Literal["modal"] | None = Field(None, description="Hard provider pin; only modal in 1.3.28.")
    providers: list[Literal["modal"]] | None = Field(
        None, description="Ordered provider preference; not with provider."
    )


class WandbTable(BaseModel):
    """[wandb]: optional W&B labels; logging needs WANDB_API_KEY at submit."""

    model_config = ConfigDict(extra="forbid")
    project: str | None = Field(None, description="W&B project name.")
    run_name: str | None = Field(None, description="W&B run name.")


class TrainingConfig(BaseModel):
    """A Flash 1.3.28 training config (configs/*.toml)."""

    model_config = ConfigDict(extra="forbid", title="Flash training config (1.3.28)")
    model: Literal[tuple(MODELS)] = Field(DEFAULT_MODEL, description="Base model id from the catalog.")  # type: ignore[valid-type]
    project: str | None = Field(None, description="Freesolo project UUID; required to train on Flash.")
    algorithm: Literal["sft", "grpo", "opd"] = Field("sft", description="sft | grpo | opd (case-insensitive).")
    thinking: bool = Field(False, description="Reasoning mode; needs a thinking-capable model.")
    seed: int = Field(42, ge=0, le=2**63 - 1, description="The run's seed.")
    environment: EnvironmentTable
    train: TrainTable = Field(default_factory=TrainTable)  # type: ignore[valid-type]
    gpu: GpuTable = Field(default_factory=GpuTable)
    wandb: WandbTable = Field(default_factory=WandbTable)


def config_json_schema() -> dict[str, Any]:
    return TrainingConfig.model_json_schema()
