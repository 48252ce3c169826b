"""The one finding type and the error tree as plain functions: each refusal writes its own message, fix included."""

from __future__ import annotations

import inspect

import pytest

from flash_mcp.core import errors
from flash_mcp.core.errors import UserError
from flash_mcp.core.findings import Finding, listed
from flash_mcp.domain.config.validate import validate_raw

KEYED = Finding(code="config-invalid", message="group_size must be >= 2", fix="set group_size = 8", where="train.x")
CODED = Finding(code="param-dropped", message="difficulty is dropped", fix="add difficulty to the signature")

# Each error class, built as its raisers build it, and the fix its message must carry.
SAMPLES = {
    errors.ConfigInvalid: (lambda: errors.ConfigInvalid("c.toml", [KEYED]), "(fix: set group_size = 8)"),
    errors.EditRefused: (lambda: errors.EditRefused("c.toml", [KEYED]), "(fix: set group_size = 8)"),
    errors.WastedRun: (lambda: errors.WastedRun([CODED]), "(fix: add difficulty to the signature)"),
    errors.PreflightFailed: (lambda: errors.PreflightFailed([CODED]), "(fix: add difficulty to the signature)"),
    errors.NotPushed: (lambda: errors.NotPushed("acme/demo/x", "local"), "call push_environment"),
    errors.StalePush: (lambda: errors.StalePush("acme/demo/x"), "call push_environment again"),
    errors.BudgetRefusal: (lambda: errors.BudgetRefusal("over max_run_usd $5.00", "Shrink the run"), "Shrink the run"),
}


def test_every_error_class_has_a_sample_here() -> None:
    defined = {c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, UserError)} - {UserError}
    assert defined == set(SAMPLES)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda cls: cls.__name__)
def test_every_error_class_formats_its_message_with_its_fix(cls: type[UserError]) -> None:
    build, fix = SAMPLES[cls]
    error = build()
    assert isinstance(error, cls) and isinstance(error, UserError)
    assert fix in str(error) and str(error).index(fix) > 0  # what is wrong comes first, then what to do


def test_a_config_refusal_names_each_key_and_a_launch_refusal_each_code() -> None:
    assert str(errors.ConfigInvalid("c.toml", [KEYED], outcome="nothing was evaluated")) == (
        "c.toml is invalid, nothing was evaluated: train.x: group_size must be >= 2 (fix: set group_size = 8)"
    )
    assert str(errors.WastedRun([CODED, KEYED])).endswith(
        "param-dropped: difficulty is dropped (fix: add difficulty to the signature); "
        "config-invalid: group_size must be >= 2 (fix: set group_size = 8)"
    )


def test_a_finding_without_a_fix_says_no_empty_fix() -> None:
    assert (
        listed([Finding(code="more-rows-invalid", message="fix these first")]) == "more-rows-invalid: fix these first"
    )


def test_not_pushed_and_stale_push_read_the_same_on_every_plane() -> None:
    assert (
        str(errors.NotPushed("a/b/c", "flash")) == "a/b/c has not been pushed to the flash plane; call push_environment"
    )
    assert str(errors.NotPushed("a/b/c", "flash", "the run trains it")).endswith("push_environment (the run trains it)")
    assert str(errors.StalePush("a/b/c")).startswith("the environment pushed as a/b/c changed on disk since the push")


def test_certain_waste_is_a_validation_severity_one_rule_each() -> None:
    raw = {"model": "Qwen/Qwen3.5-9B", "algorithm": "grpo", "environment": {"id": "a/b/c"},
           "train": {"learning_rate": 1e-6, "max_context_tokens": 40_000}}  # fmt: skip
    validation = validate_raw(raw)
    assert {(w.code, w.where) for w in validation.waste} == {
        ("max-examples-missing", "train.max_examples"),
        ("context-over-model", "train.max_context_tokens"),
    }
    assert all(w in validation.warnings for w in validation.waste)  # validate_config warns, a launch refuses
    assert sum(w.where == "train.max_context_tokens" for w in validation.warnings) == 1
    (over,) = [w for w in validation.waste if w.code == "context-over-model"]
    assert "40000" in over.message and over.fix == "use at most 32768"
    raw["train"] = {"max_steps": 3, "max_context_tokens": 2048}
    assert validate_raw(raw).waste == []


def test_flash_refusals_carry_the_config_invalid_code_and_their_key() -> None:
    validation = validate_raw({"algorithm": "grpo", "train": {"group_size": 1}})
    assert validation.errors and all(e.code in {"config-invalid", "gpu-fit"} for e in validation.errors)
    assert "train.group_size" in {e.where for e in validation.errors}
