"""Config settings that will certainly waste (or fail) a paid run: shown before any quote.

validate_config reports these as warnings because the file is well-formed; check_project reports
them as errors and launch_training puts them in front of the quote, because no run with them can
succeed. Pure: reads the raw TOML dict only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flash_mcp.domain.config import catalog

ROLLOUT = ("grpo", "opd")
WASTE_CODES = ("max-examples-missing", "context-over-model")


@dataclass(frozen=True)
class Waste:
    code: str
    message: str
    fix: str


def certain_waste(raw: dict[str, Any]) -> list[Waste]:
    """What in this config makes a paid run fail or train on nothing useful, for certain."""
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    algorithm = str(raw.get("algorithm") or "sft").lower()
    found: list[Waste] = []
    if algorithm in ROLLOUT and not _positive(train.get("max_examples")) and not _positive(train.get("max_steps")):
        found.append(
            Waste(
                "max-examples-missing",
                f"{algorithm} sets neither [train] max_examples nor max_steps: the run cannot be priced, and "
                "Flash's dry-run and launch fail",
                "set [train] max_examples to your row count (or set max_steps)",
            )
        )
    model = catalog.MODELS.get(str(raw.get("model") or ""), catalog.MODELS[catalog.DEFAULT_MODEL])
    context = train.get("max_context_tokens")
    if _positive(context) and context > model.max_model_len:
        found.append(
            Waste(
                "context-over-model",
                f"max_context_tokens = {context} exceeds the model's serving context ({model.max_model_len}): "
                "Flash refuses the run at submit",
                f"use at most {model.max_model_len}",
            )
        )
    return found


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
