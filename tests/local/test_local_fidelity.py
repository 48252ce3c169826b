"""Every config key has a local meaning or no local meaning (noted in the run and in dry_run)."""

from __future__ import annotations

from flash_mcp.domain.config.fidelity import LOCAL_FIDELITY, unmapped_notes
from flash_mcp.domain.config.schema import (
    ENVIRONMENT_KEYS,
    GPU_KEYS,
    TABLES,
    TOP_LEVEL_KEYS,
    TRAIN_KNOBS,
    WANDB_KEYS,
    TrainingConfig,
)


def _schema_keys() -> set[str]:
    keys = {key for key in TOP_LEVEL_KEYS if key not in TABLES}
    keys |= {f"train.{name}" for name in TRAIN_KNOBS}
    for table, inner in (("environment", ENVIRONMENT_KEYS), ("gpu", GPU_KEYS), ("wandb", WANDB_KEYS)):
        keys |= {f"{table}.{name}" for name in inner}
    return keys


def test_every_schema_key_has_exactly_one_local_fidelity() -> None:
    assert set(LOCAL_FIDELITY) == _schema_keys()
    pydantic_keys = {name for name in TrainingConfig.model_fields if name not in TABLES}
    assert pydantic_keys <= set(LOCAL_FIDELITY)
    assert {fidelity.kind for fidelity in LOCAL_FIDELITY.values()} <= {"local", "none"}


def _spec(**train: object) -> dict:
    return {
        "model": "m", "project": None, "algorithm": "grpo", "thinking": False, "seed": 42,
        "environment": {"id": "local/default/e", "params": {}, "pip": [], "secrets": []},
        "train": {"learning_rate": 1e-5, **train}, "gpu": {"type": None, "count": None}, "wandb": {},
    }  # fmt: skip


def test_only_authored_keys_without_local_meaning_are_noted() -> None:
    spec = _spec(stop_sequences=["\n"], structured_outputs="json_object", credit_assignment="per_episode")
    spec["gpu"]["type"] = "h100"
    spec["environment"]["pip"] = ["sympy"]
    authored = ["train.stop_sequences", "train.learning_rate", "gpu.type", "train.credit_assignment", "model"]
    notes = unmapped_notes(spec, authored)
    assert [note.split(" ")[0] for note in notes] == ["gpu.type", "train.stop_sequences"]
    assert "has no local meaning" in notes[0]
    assert unmapped_notes(spec, [*authored, "environment.pip"])[0].startswith("environment.pip has no local meaning")
