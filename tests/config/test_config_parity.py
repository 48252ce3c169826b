"""Parity with Flash 1.3.28's own parser (freesolo-flash, a test dependency) on a corpus of configs."""

from __future__ import annotations

import copy

import pytest
from flash.schema import ConfigError, spec_from_dict

from flash_mcp.domain.config.validate import validate_raw
from tests.config_corpus import CASES, Case


def _flash_verdict(raw: dict) -> str | None:
    """None when Flash accepts the config, else its error message."""
    try:
        spec_from_dict(copy.deepcopy(raw), project_required=True)
    except (ConfigError, ValueError, TypeError) as exc:
        return str(exc)
    return None


def test_the_corpus_is_large_and_covers_both_verdicts() -> None:
    assert len(CASES) >= 80
    assert sum(case.key is None for case in CASES) >= 30
    assert sum(case.key is not None for case in CASES) >= 80
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_same_verdict_and_offending_key_as_flash(case: Case) -> None:
    raw = case.config()
    flash_error = _flash_verdict(raw)
    ours = validate_raw(raw, project_required=True)
    if case.key is None:
        assert flash_error is None, f"corpus expects Flash to accept, Flash said: {flash_error}"
        assert ours.valid, [issue.message for issue in ours.errors]
        return
    assert flash_error is not None, "corpus expects Flash to reject this config"
    assert not ours.valid, "Flash rejects this config, flash-mcp accepted it"
    keys = [issue.where for issue in ours.errors]
    assert keys[0] == case.key, f"first error names {keys[0]!r}, expected {case.key!r}: {ours.errors}"
    leaf = case.key.split(".")[-1]
    assert leaf in flash_error or case.key in flash_error or _names_value(case, flash_error), flash_error
    assert ours.errors[0].message == flash_error or leaf in ours.errors[0].message
    assert ours.errors[0].fix


def _names_value(case: Case, message: str) -> bool:
    """Some Flash messages name the offending value rather than the key (e.g. an unknown model)."""
    return any(str(value) in message for value in case.patch.values() if isinstance(value, str))


@pytest.mark.parametrize("case", [c for c in CASES if c.key is not None], ids=lambda case: case.name)
def test_first_error_uses_flashs_own_wording(case: Case) -> None:
    flash_error = _flash_verdict(case.config())
    ours = validate_raw(case.config(), project_required=True)
    assert _same_words(ours.errors[0].message, flash_error), (ours.errors[0].message, flash_error)


def _same_words(ours: str, theirs: str) -> bool:
    """Identical, or identical up to Flash's trailing fork-the-catalog advice."""
    return ours == theirs or theirs.startswith(ours)
