"""settings.toml's `[local.teachers]`: the human's OPD teachers, checked as strictly as every other setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import load_human_settings


def _settings(home: Path, text: str):
    (home / "settings.toml").write_text(text, encoding="utf-8")
    return load_human_settings(home)


def test_teachers_are_read_by_name(tmp_path: Path) -> None:
    local = _settings(tmp_path, '[local]\nstand_in_model = "/m"\n[local.teachers]\n"glm-5.3" = "~/teacher"\n').local
    assert local.teachers == {"glm-5.3": Path("~/teacher").expanduser()} and local.stand_in_model == Path("/m")
    assert load_human_settings(tmp_path / "absent").local.teachers == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[local]\nteachers = "x"\n', r"\[local.teachers\] must be a table"),
        ('[local.teachers]\n"glm-5.3" = 3\n', r"\[local.teachers\] glm-5.3 must be a model folder"),
        ('[local.teachers]\n"glm-5.3" = " "\n', r"must be a model folder"),
    ],
)
def test_a_malformed_teacher_is_an_error_not_a_default(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        _settings(tmp_path, text)
