"""`setup_project`: scaffold what `flash env setup` 1.3.28 scaffolds, without ever overwriting.

The starter environment, evaluations and dataset are adapted from freesolo-flash 1.3.28
(Apache-2.0). Differences from Flash's scaffold, on purpose: no reference to the nonexistent
`flash train --doc`, the OPD comment names the real default teacher (glm-5.3), and SFT does not
cap training at the starter's 2 rows.
"""

from __future__ import annotations

import stat
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from flash_mcp.core.assets import training_guide
from flash_mcp.core.errors import UserError
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.files import write_new
from flash_mcp.domain.project.scaffold.configs import ConfigContext, render_config

_TEMPLATES = Path(__file__).parent / "templates"
CONFIG_NAMES = ("sft", "rl", "opd")
MULTI_TURN_MARKER = "EnvironmentMultiTurn"
MAX_EXISTING_BYTES = 8 * 1024 * 1024


@dataclass
class ScaffoldResult:
    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    project: str | None = None
    multi_turn: bool = False
    reasoning: bool = False


def scaffold_project(directory: Path, *, project: str | None, multi_turn: bool, reasoning: bool) -> ScaffoldResult:
    """Create the starter files under `directory`; existing files are kept byte-for-byte."""
    if project is not None:
        project = _canonical_uuid(project)
    with safe_fs.folder(directory, directory.name or ".", create=True):
        pass
    for sub in ("configs", "dataset"):
        info = safe_fs.lstat(directory / sub, sub)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            raise UserError(
                f"{sub}/ in {directory.name or 'the workspace'} is a {safe_fs.kind_of(info.st_mode)}, not a folder; "
                "tools never write through symlinks — replace it with a real folder, then rerun setup_project"
            )
    configs = [directory / "configs" / f"{name}.toml" for name in CONFIG_NAMES]
    existing = _existing_configs(configs)
    result = ScaffoldResult()
    result.project = _reconcile_project(project, existing)
    result.multi_turn = _reconcile_turn_mode(directory, multi_turn, result.warnings)
    result.reasoning = _reconcile_reasoning(existing, reasoning, result.warnings)

    kind = "multi" if result.multi_turn else "single"
    env_created = _place(result, directory / "environment.py", _template(f"environment_{kind}.py"))
    evaluations = directory / "evaluations.py"
    if env_created:
        _place(result, evaluations, _template(f"evaluations_{kind}.py"))
    elif safe_fs.lstat(evaluations) is not None:
        result.kept.append(evaluations)
    _place(result, directory / "dataset" / "train.jsonl", _template(f"train_{kind}.jsonl"))
    context = ConfigContext(
        project=result.project, folder=directory.name, multi_turn=result.multi_turn, reasoning=result.reasoning
    )
    for name, path in zip(CONFIG_NAMES, configs, strict=True):
        _place(result, path, render_config(name, context))
    guide = training_guide().replace("<project-uuid>", result.project or "<project-uuid>")
    _place(result, directory / "TRAINING.md", guide)
    return result


def _place(result: ScaffoldResult, path: Path, text: str) -> bool:
    created = write_new(path, text)
    (result.created if created else result.kept).append(path)
    return created


def _template(name: str) -> str:
    return (_TEMPLATES / name).read_text(encoding="utf-8")


def _canonical_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        raise UserError(
            f"project must be a Freesolo project UUID (e.g. from `flash projects list`), got {value!r}"
        ) from None


def _existing_configs(paths: list[Path]) -> dict[Path, dict]:
    found: dict[Path, dict] = {}
    for path in paths:
        if safe_fs.lstat(path, f"configs/{path.name}") is None:
            continue
        try:
            found[path] = tomllib.loads(safe_fs.read_text(path, MAX_EXISTING_BYTES, f"configs/{path.name}"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UserError(f"cannot read existing {path.name}: {exc}; fix or delete it, then rerun") from exc
    return found


def _reconcile_project(project: str | None, existing: dict[Path, dict]) -> str | None:
    """An existing config's project must agree with the one asked for (as Flash requires)."""
    for path, raw in existing.items():
        current = raw.get("project")
        if current in (None, ""):
            continue
        try:
            current = str(uuid.UUID(str(current)))
        except ValueError:
            raise UserError(f"existing configs/{path.name} has an invalid project {current!r}; fix it") from None
        if project is None:
            project = current
        elif current != project:
            raise UserError(
                f"existing configs/{path.name} is for project {current}, not {project}; "
                "pass that project, or delete the configs to re-scaffold them"
            )
    return project


def _reconcile_turn_mode(directory: Path, asked: bool, warnings: list[str]) -> bool:
    """An existing environment.py (or starter dataset) decides the turn mode, as in Flash."""
    env_py = directory / "environment.py"
    dataset = directory / "dataset" / "train.jsonl"
    if safe_fs.lstat(env_py) is not None:
        text = safe_fs.read_text(env_py, MAX_EXISTING_BYTES, "environment.py", errors="replace")
        anchor, existing = "environment.py", MULTI_TURN_MARKER in text
    elif safe_fs.lstat(dataset) is not None:
        with safe_fs.open_binary(dataset, "dataset/train.jsonl") as handle:
            head = handle.read(64 * 1024).decode("utf-8", errors="replace")
        anchor, existing = "dataset/train.jsonl", "secret whole number" in head
    else:
        return asked
    if existing != asked:
        have, want = _turns(existing), _turns(asked)
        warnings.append(
            f"existing {anchor} is {have}; kept it and ignored multi_turn={asked}. "
            f"Delete environment.py and dataset/train.jsonl first to re-scaffold as {want}."
        )
    return existing


def _turns(multi: bool) -> str:
    return "multi-turn" if multi else "single-turn"


def _reconcile_reasoning(existing: dict[Path, dict], asked: bool, warnings: list[str]) -> bool:
    states = {path: raw.get("thinking") is True for path, raw in existing.items()}
    if not states:
        return asked
    if len(set(states.values())) > 1:
        on = ", ".join(f"configs/{p.name}" for p, v in states.items() if v)
        raise UserError(
            f"existing configs disagree about reasoning ({on} set thinking = true, the others do not); "
            "make them agree or delete them and rerun setup_project"
        )
    current = next(iter(states.values()))
    if current != asked:
        warnings.append(
            f"existing configs have thinking = {str(current).lower()}; kept them and ignored reasoning={asked}. "
            "Delete configs/*.toml first to re-scaffold them."
        )
    return current
