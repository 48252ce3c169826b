"""The catalog is data read off Flash 1.3.28: checked field by field against the real package."""

from __future__ import annotations

from dataclasses import fields

import pytest
from flash.core import catalog as flash_catalog
from flash.core.spec import TrainSpec
from flash.engine.plan import recipe
from flash.providers.core import base as flash_gpus
from flash.providers.modal.pricing import hourly_rate

from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.rules.environment import GRPO_RESERVED_SECRETS as _GRPO_RESERVED_SECRETS
from flash_mcp.domain.config.rules.environment import RESERVED_SECRETS as _RESERVED_SECRETS
from flash_mcp.domain.config.schema import TRAIN_KNOBS


def test_models_match_flash() -> None:
    assert list(catalog.MODELS) == list(flash_catalog.MODELS)
    for model_id, ours in catalog.MODELS.items():
        theirs = flash_catalog.MODELS[model_id]
        assert ours.algorithms == theirs.algos
        assert ours.thinking == theirs.thinking
        assert ours.max_lora_rank == theirs.serving.max_lora_rank
        assert ours.max_model_len == theirs.serving.max_model_len
        assert ours.serving_gpu == theirs.serving.gpu
        assert ours.params_b == pytest.approx(theirs.params_b, abs=0.01)
        assert ours.min_vram_gb_grpo == theirs.grpo_min_vram_gb
    assert catalog.DEFAULT_MODEL == flash_catalog.DEFAULT_MODEL


def test_gpu_classes_prices_and_aliases_match_flash() -> None:
    assert tuple(catalog.GPUS) == flash_gpus.KNOWN
    for name, ours in catalog.GPUS.items():
        theirs = flash_gpus.GPU_INFO[name]
        assert (ours.vram_gb, ours.max_count, ours.provider_name) == (
            theirs.vram_gb,
            theirs.max_count,
            theirs.modal_name,
        )
        assert ours.hourly_usd == pytest.approx(hourly_rate(name))
    assert catalog.GPU_ALIASES == flash_gpus._ALIASES


def test_teachers_and_recipe_defaults_match_flash() -> None:
    assert list(catalog.TEACHERS) == list(recipe.TEACHER_MODELS)
    for alias, teacher in catalog.TEACHERS.items():
        theirs = recipe.TEACHER_MODELS[alias]
        assert (teacher.usd_per_1m_input, teacher.usd_per_1m_output) == theirs.usd_per_1m
        assert teacher.supports_images == theirs.supports_images
    assert catalog.DEFAULT_TEACHER == recipe.DEFAULT_TEACHER_ALIAS
    r = recipe.RECIPE
    assert catalog.RECIPE_DEFAULTS["sft"]["learning_rate"] == r.sft.learning_rate
    assert catalog.RECIPE_DEFAULTS["sft"]["epochs"] == r.sft.num_epochs
    assert catalog.RECIPE_DEFAULTS["grpo"]["prompts_per_step"] == r.rl.prompts_per_step
    assert catalog.RECIPE_DEFAULTS["grpo"]["group_size"] == r.rl.group_size
    assert catalog.RECIPE_DEFAULTS["opd"]["prompts_per_step"] == r.opd.prompts_per_step
    assert catalog.RECIPE_DEFAULTS["opd"]["kl_penalty_coef"] == r.opd.kl_coef
    assert catalog.COMPLETION_TOKENS["grpo"] == (r.rl.max_completion_len, r.rl.max_completion_len_thinking)
    assert catalog.COMPLETION_TOKENS["opd"] == (r.opd.max_completion_len, r.opd.max_completion_len_thinking)
    assert {"grpo": r.rl.max_prompt_len, "opd": r.opd.max_prompt_len} == catalog.PROMPT_TOKENS


def test_train_knobs_match_flashs_train_schema() -> None:
    introduced = {f.name: f.metadata["introduced_in"] for f in fields(TrainSpec) if "introduced_in" in f.metadata}
    assert {name: knob.introduced_in for name, knob in TRAIN_KNOBS.items()} == introduced


def test_reserved_secret_names_match_flash() -> None:
    from flash.core.grpo import GRPO_CONTROL_PLANE_OWNED_ENV_KEYS
    from flash.schema.fields import _RESERVED_ENVIRONMENT_SECRET_KEYS

    assert _RESERVED_SECRETS == _RESERVED_ENVIRONMENT_SECRET_KEYS
    assert _GRPO_RESERVED_SECRETS == GRPO_CONTROL_PLANE_OWNED_ENV_KEYS
