"""Settings the human owns: FLASH_MCP_HOME/settings.toml. The server reads them; no tool writes them."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError

APPROVAL_MODES = ("always", "above_threshold")


def settings_file(home: Path) -> Path:
    return home / "settings.toml"


@dataclass(frozen=True)
class LocalSettings:
    stand_in_model: Path | None = None
    teachers: dict[str, Path] = field(default_factory=dict)  # `[local.teachers]`: OPD teacher name -> model folder


@dataclass(frozen=True)
class ApprovalSettings:
    mode: str = "always"
    auto_approve_usd: float = 0.0
    local_runs: bool = False


@dataclass(frozen=True)
class BudgetSettings:
    max_run_usd: float = 50.0
    daily_usd: float = 100.0
    monthly_usd: float = 1000.0
    max_concurrent_runs: int = 2
    overrun_pct: float = 25.0  # flag a run whose cost passes its approved amount by more than this share
    cancel_on_overrun: bool = False  # and cancel it (checkpoints kept)


@dataclass(frozen=True)
class WatchSettings:
    """`[watch]`: what the run watch does when a run's rollouts look like reward hacking."""

    cancel_on_hack: bool = False  # cancel the run (checkpoints kept); otherwise it is only flagged


@dataclass(frozen=True)
class SandboxLimits:
    """`[sandbox]`: bounds for agent-written code (0 = no limit), and the fail-closed escape hatch."""

    memory_mb: int = 2048
    max_processes: int = 256
    cpu_seconds: int = 3600
    training_memory_mb: int = 16384
    training_cpu_seconds: int = 2_592_000
    file_mb: int = 1024
    training_file_mb: int = 16384
    training_tree_memory_mb: int = 65536
    job_disk_mb: int = 65536
    allow_unsandboxed: bool = False
    preload_jobs: bool = True  # false: every job imports torch afresh, every env-test child the SDK


@dataclass(frozen=True)
class HumanSettings:
    local: LocalSettings = field(default_factory=LocalSettings)
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    watch: WatchSettings = field(default_factory=WatchSettings)


def load_human_settings(home: Path) -> HumanSettings:
    """Read settings.toml (absent means defaults); reread on every use, so edits apply at once.

    A malformed value is an error, never a silent default: a typo must not loosen a budget.
    """
    path = settings_file(home)
    if not path.is_file():
        return HumanSettings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML ({exc}); ask the human to fix it") from None
    names = ("local", "approval", "budget", "sandbox", "watch")
    local, approval, budget, sandbox, watch = (_table(raw, name, path) for name in names)
    stand_in = local.get("stand_in_model")
    mode = approval.get("mode", "always")
    if mode not in APPROVAL_MODES:
        raise UserError(f"{path}: [approval] mode must be one of {', '.join(APPROVAL_MODES)}; ask the human to fix it")
    return HumanSettings(
        local=LocalSettings(
            stand_in_model=Path(stand_in).expanduser() if stand_in else None, teachers=_teachers(local, path)
        ),
        approval=ApprovalSettings(
            mode=mode,
            auto_approve_usd=_amount(approval, "auto_approve_usd", 0.0, path),
            local_runs=_flag(approval, "local_runs", False, path),
        ),
        budget=BudgetSettings(
            max_run_usd=_amount(budget, "max_run_usd", 50.0, path),
            daily_usd=_amount(budget, "daily_usd", 100.0, path),
            monthly_usd=_amount(budget, "monthly_usd", 1000.0, path),
            max_concurrent_runs=int(_amount(budget, "max_concurrent_runs", 2, path)),
            overrun_pct=_amount(budget, "overrun_pct", 25.0, path),
            cancel_on_overrun=_flag(budget, "cancel_on_overrun", False, path),
        ),
        sandbox=_sandbox(sandbox, path),
        watch=WatchSettings(cancel_on_hack=_flag(watch, "cancel_on_hack", False, path)),
    )


def _sandbox(table: dict[str, Any], path: Path) -> SandboxLimits:
    defaults = SandboxLimits()
    numbers = {
        key: int(_amount(table, key, getattr(defaults, key), path))
        for key in (
            "memory_mb",
            "max_processes",
            "cpu_seconds",
            "training_memory_mb",
            "training_cpu_seconds",
            "file_mb",
            "training_file_mb",
            "training_tree_memory_mb",
            "job_disk_mb",
        )
    }
    return SandboxLimits(
        **numbers,
        allow_unsandboxed=_flag(table, "allow_unsandboxed", False, path),
        preload_jobs=_flag(table, "preload_jobs", True, path),
    )


def _teachers(local: dict[str, Any], path: Path) -> dict[str, Path]:
    table = _table(local, "teachers", path, "[local.teachers]")
    for name, folder in table.items():
        if not isinstance(folder, str) or not folder.strip():
            raise UserError(f'{path}: [local.teachers] {name} must be a model folder, e.g. "/models/teacher"; '
                            "ask the human to fix it")  # fmt: skip
    return {name: Path(folder).expanduser() for name, folder in table.items()}


def _table(raw: dict[str, Any], name: str, path: Path, label: str = "") -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise UserError(f"{path}: {label or f'[{name}]'} must be a table; ask the human to fix it")
    return value


def _amount(table: dict[str, Any], key: str, default: float, path: Path) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UserError(f"{path}: {key} must be a number >= 0; ask the human to fix it")
    return float(value)


def _flag(table: dict[str, Any], key: str, default: bool, path: Path) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise UserError(f"{path}: {key} must be true or false; ask the human to fix it")
    return value
