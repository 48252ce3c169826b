"""The human's settings that the guard holds (its settings.toml), and which changes loosen them.

Tightening applies at once; loosening (a higher budget, wider auto-approval, approval turned off, another passkey)
waits for the passkey where one is registered. Edits keep the file's comments (tomlkit) and are written atomically;
a change that would leave the file invalid is refused and the file stays as it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tomlkit

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import HumanSettings, load_human_settings

_HIGHER_IS_LOOSER = {"budget.max_run_usd", "budget.daily_usd", "budget.monthly_usd", "budget.max_concurrent_runs",
                     "budget.overrun_pct", "approval.auto_approve_usd"}  # fmt: skip
_FLAGS_LOOSER_WHEN = {"budget.cancel_on_overrun": False}
_MODES_LOOSENESS = {"always": 0, "above_threshold": 1}
SETTABLE = sorted({*_HIGHER_IS_LOOSER, *_FLAGS_LOOSER_WHEN, "approval.mode"})


def loosens(current: HumanSettings, changes: dict[str, Any]) -> list[str]:
    """The keys among `changes` that loosen the current settings."""
    unknown = sorted(set(changes) - set(SETTABLE))
    if unknown:
        raise UserError(f"the guard does not hold {', '.join(unknown)}; it holds {', '.join(SETTABLE)}")
    return [key for key, value in changes.items() if _looser(key, _current(current, key), value)]


def _current(settings: HumanSettings, key: str) -> Any:
    table, name = key.split(".")
    return getattr(getattr(settings, table), name)


def _looser(key: str, now: Any, value: Any) -> bool:
    if key in _HIGHER_IS_LOOSER:
        return _number(key, value) > now
    if key in _FLAGS_LOOSER_WHEN:
        return value == _FLAGS_LOOSER_WHEN[key] and now != value
    return _MODES_LOOSENESS.get(value, -1) > _MODES_LOOSENESS[now]


def apply(home: Path, changes: dict[str, Any]) -> HumanSettings:
    """Write `changes` into settings.toml (comments kept), atomically; the new settings."""
    path = home / "settings.toml"
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    document = tomlkit.parse(before)
    for key, value in changes.items():
        table, name = key.split(".")
        document.setdefault(table, tomlkit.table())[name] = value
    text = tomlkit.dumps(document)
    with tempfile.TemporaryDirectory(dir=home) as staging:  # validated as the guard will read it, before it counts
        (Path(staging) / "settings.toml").write_text(text, encoding="utf-8")
        settings = load_human_settings(Path(staging))
    temporary = path.with_suffix(".toml.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return settings


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{key} must be a number")
    return float(value)
