"""Scaffold a Flash project: never overwrites, and says what to do next."""

from __future__ import annotations

from pydantic import BaseModel, Field

from flash_mcp.core.workspace import Workspace
from flash_mcp.domain.project.scaffold import scaffold_project


class SetupResult(BaseModel):
    directory: str
    created: list[str] = Field(description="Files written by this call")
    kept: list[str] = Field(description="Files that already existed and were left untouched")
    project: str | None = Field(description="Project UUID written into the configs, if any")
    multi_turn: bool
    reasoning: bool
    warnings: list[str]
    next_steps: list[str]


def setup_project(
    workspace: Workspace,
    directory: str,
    *,
    project: str | None,
    multi_turn: bool,
    reasoning: bool,
    plane: str = "local",
) -> SetupResult:
    target = workspace.resolve_dir(directory, write=True)
    result = scaffold_project(target, project=project, multi_turn=multi_turn, reasoning=reasoning)
    return SetupResult(
        directory=workspace.relative(target),
        created=[workspace.relative(p) for p in result.created],
        kept=[workspace.relative(p) for p in result.kept],
        project=result.project,
        multi_turn=result.multi_turn,
        reasoning=result.reasoning,
        warnings=result.warnings,
        next_steps=_next_steps(result.project, plane),
    )


def _next_steps(project: str | None, plane: str) -> list[str]:
    steps = []
    if project is None and plane == "local":
        steps.append(
            "No project UUID is needed to rehearse on the local plane; before moving to Flash, rerun "
            "setup_project with project=<the human's Freesolo project UUID>."
        )
    elif project is None:
        steps.append("Ask the human for their Freesolo project UUID and rerun setup_project with project=<uuid>.")
    steps += [
        "Replace dataset/train.jsonl with real rows and the reward in environment.py with real grading.",
        "Read flash://guide for the loop: test every row, push, dry-run, then launch.",
    ]
    return steps
