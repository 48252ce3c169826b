"""From a config file plus `--set`-style overrides to a resolved spec with recipe defaults filled."""

from __future__ import annotations

import copy
import math
import tomllib
from typing import Any

from pydantic import BaseModel, Field

from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.rules import Parsed
from flash_mcp.domain.config.schema import TRAIN_KNOBS


def coerce_override(key: str, value: Any) -> Any:
    """`flash train --set` coercion for string values; typed JSON values pass through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if key.split(".")[0] == "wandb":
        return text
    if text.startswith("[") and text.endswith("]"):
        try:
            return tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError:
            return [_scalar(part.strip()) for part in text[1:-1].split(",") if part.strip()]
    return _scalar(text)


def _scalar(text: str) -> Any:
    if text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of `raw` with dotted-key overrides applied, creating tables as `--set` does."""
    merged = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = key.strip().split(".")
        node = merged
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override path {key!r} traverses a non-table value")
        node[parts[-1]] = coerce_override(key, value)
    return merged


def authored_keys(raw: dict[str, Any]) -> list[str]:
    """Every dotted key the author set, tables flattened (params kept whole)."""
    keys: list[str] = []
    for name, value in raw.items():
        if isinstance(value, dict) and name in ("environment", "train", "gpu", "wandb"):
            keys += [f"{name}.{inner}" for inner in value]
        else:
            keys.append(name)
    return sorted(keys)


class ResolvedSpec(BaseModel):
    """What a run would train with: authored values plus the algorithm's recipe defaults."""

    model: str
    project: str | None
    algorithm: str
    thinking: bool
    seed: int
    environment: dict[str, Any]
    train: dict[str, Any] = Field(description="Every [train] key that applies to the algorithm")
    gpu: dict[str, Any]
    wandb: dict[str, str]
    authored_keys: list[str] = Field(description="Dotted keys the author set")
    defaulted_keys: list[str] = Field(description="[train] keys filled from the recipe")


def resolve(parsed: Parsed, raw: dict[str, Any]) -> ResolvedSpec:
    algorithm = parsed.algorithm or "sft"
    train = {name: parsed.train.get(name) for name, knob in TRAIN_KNOBS.items() if algorithm in knob.algorithms}
    defaults = recipe_defaults(algorithm, parsed.thinking, train)
    defaulted = sorted(name for name, value in defaults.items() if train.get(name) is None and value is not None)
    for name in defaulted:
        train[name] = defaults[name]
    return ResolvedSpec(
        model=parsed.model or catalog.DEFAULT_MODEL,
        project=parsed.project or None,
        algorithm=algorithm,
        thinking=parsed.thinking,
        seed=parsed.seed,
        environment={
            "id": parsed.environment.get("id", ""),
            "params": parsed.environment.get("params", {}),
            "pip": parsed.environment.get("pip") or [],
            "secrets": parsed.environment.get("secrets") or [],
        },
        train=train,
        gpu={
            "type": parsed.gpu.get("type") or [],
            "count": parsed.gpu.get("count"),
            "provider": parsed.gpu.get("provider") or None,
            "providers": parsed.gpu.get("providers") or [],
        },
        wandb=parsed.wandb,
        authored_keys=authored_keys(raw),
        defaulted_keys=defaulted,
    )


def recipe_defaults(algorithm: str, thinking: bool, train: dict[str, Any]) -> dict[str, Any]:
    """The worker's recipe value for each unset [train] key of this algorithm."""
    defaults: dict[str, Any] = dict(catalog.RECIPE_DEFAULTS[algorithm])
    rank = train.get("lora_rank") or catalog.DEFAULT_LORA_RANK
    defaults["lora_rank"] = catalog.DEFAULT_LORA_RANK
    defaults["lora_alpha"] = 2 * rank
    if algorithm == "sft":
        defaults["max_context_tokens"] = catalog.SFT_SEQ_LEN[1 if thinking else 0]
        return defaults
    completion = catalog.completion_tokens(algorithm, train.get("max_completion_tokens"), thinking)
    defaults["max_completion_tokens"] = completion
    defaults["max_context_tokens"] = max(1024, catalog.PROMPT_TOKENS[algorithm] + completion)
    defaults["max_steps"] = on_policy_steps(train, defaults)
    return defaults


def on_policy_steps(train: dict[str, Any], defaults: dict[str, Any]) -> int | None:
    """GRPO/OPD optimizer steps: max_steps, else ceil(rows x epochs / min(prompts_per_step, rows))."""
    if train.get("max_steps"):
        return train["max_steps"]
    rows = train.get("max_examples")
    if not rows:
        return None
    epochs = train.get("epochs") or defaults["epochs"]
    per_step = min(train.get("prompts_per_step") or defaults["prompts_per_step"], rows)
    return max(1, math.ceil(rows * epochs / per_step))
