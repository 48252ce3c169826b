"""Environment tools: test every row out of process, a static preflight, and dataset rows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import BaseModel, ConfigDict, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.config.validate import load_toml
from flash_mcp.domain.envtest.report import EnvTestReport, Tally, build_report
from flash_mcp.domain.envtest.runner import EnvTestJob, run_env_test
from flash_mcp.domain.project.dataset import append_rows, clip, read_rows, row_id, row_problem
from flash_mcp.domain.project.preflight import check_project as preflight
from flash_mcp.surface.registry import add_tool

log = logging.getLogger(__name__)
MAX_RESPONSES = 50
MAX_APPEND = 1000
READ_DEFAULT, READ_MAX = 20, 200
ProjectDir = Annotated[str, Field(description="Project folder relative to the workspace ('.' is the workspace)")]
ConfigArg = Annotated[
    str | None,
    Field(description="Config whose [environment.params], algorithm and thinking to use, e.g. configs/rl.toml"),
]


class CandidateResponse(BaseModel):
    row_id: str = Field(description="Row id from read_dataset, e.g. example_000003")
    response: str | list[str] = Field(description="The answer to score (a list of turns for multi-turn)")


class Finding(BaseModel):
    code: str
    severity: Literal["error", "warning"]
    message: str
    fix: str
    where: str = Field(description="The file the finding is about")


class ProjectCheck(BaseModel):
    directory: str
    ok: bool = Field(description="True when there are no errors")
    errors: int
    warnings: int
    findings: list[Finding]


class DatasetRowView(BaseModel):
    id: str
    input: Any = None
    output: Any = None
    metadata: Any = None
    problem: str | None = Field(default=None, description="Why this row breaks the row contract, if it does")


class DatasetPage(BaseModel):
    path: str
    total_rows: int
    offset: int
    rows: list[DatasetRowView]
    next_offset: int | None = Field(description="Pass as offset to read on; null at the end")


class NewRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: Any = Field(description="The prompt text (or chat messages)")
    output: Any = Field(default=None, description='Gold answer: text, a message list, or {"messages": [...]}')
    metadata: dict[str, Any] | None = Field(default=None, description="Data the scorer sees and the model does not")


class AppendResult(BaseModel):
    path: str
    appended: int
    total_rows: int
    first_id: str
    last_id: str


def register(server: MCPServer, settings: ServerSettings) -> None:
    workspace = settings.workspace

    async def test_environment(
        ctx: Context,
        directory: ProjectDir = ".",
        config: ConfigArg = None,
        rows: Annotated[Literal["all"] | int, Field(description='"all", or the first N rows')] = "all",
        params: Annotated[dict[str, Any], Field(description="Override [environment.params] keys")] = {},  # noqa: B006
        responses: Annotated[
            list[CandidateResponse], Field(description="Candidate answers to score, to probe the reward for hacks")
        ] = [],  # noqa: B006
        timeout_s: Annotated[float, Field(gt=0, le=3600, description="Limit for the whole test")] = 600,
        row_timeout_s: Annotated[float, Field(gt=0, le=600, description="Limit for one row")] = 30,
    ) -> EnvTestReport:
        """Run environment.py in its own process on every row (or the first N): Flash's contract checks,
        the gold answer and wrong answers scored, scorer errors kept, hangs and crashes contained."""
        project = _project(workspace.resolve(directory))
        if isinstance(rows, int) and rows < 1:
            raise UserError('rows must be "all" or a positive number')
        if len(responses) > MAX_RESPONSES:
            raise UserError(f"at most {MAX_RESPONSES} candidate responses per call")
        algorithm, thinking, merged = "grpo", False, dict(params)
        if config:
            raw = load_toml(workspace.resolve(config))
            algorithm, thinking, merged = _from_config(raw, params)
        job = EnvTestJob(
            entrypoint=project / "environment.py",
            params=merged,
            limit=None if rows == "all" else rows,
            responses=[r.model_dump() for r in responses],
            row_timeout_s=row_timeout_s,
            total_timeout_s=timeout_s,
        )
        tally = Tally(algorithm=algorithm, thinking=thinking)
        token = anyio.lowlevel.current_token()

        def progress(done: int, total: int) -> None:
            try:
                anyio.from_thread.run(ctx.report_progress, done, total or None, f"{done} rows checked", token=token)
            except Exception:  # progress is best effort: a departed client must not stop the test
                log.debug("progress notification failed", exc_info=True)

        capture = await anyio.to_thread.run_sync(run_env_test, job, tally, progress)
        return build_report(tally, capture.text(), capture.total, merged)

    def check_project(directory: ProjectDir = ".", config: ConfigArg = None) -> ProjectCheck:
        """Static preflight (no code runs): empty environment ids, dropped params, max_examples versus rows,
        missing splits and secrets, datasets/ vs dataset/, scorer imports missing from pip, untagged
        thinking golds, algorithm versus environment kind."""
        project = workspace.resolve(directory)
        if not project.is_dir():
            raise UserError(f"{directory!r} is not a directory; pass the project folder")
        configs = [workspace.resolve(config)] if config else []
        findings = preflight(project, configs, workspace.relative)
        errors = sum(f.severity == "error" for f in findings)
        return ProjectCheck(
            directory=workspace.relative(project),
            ok=errors == 0,
            errors=errors,
            warnings=len(findings) - errors,
            findings=[Finding(**f.__dict__) for f in findings],
        )

    def read_dataset(
        path: Annotated[str, Field(description="Dataset file, e.g. 'dataset/train.jsonl'")],
        offset: Annotated[int, Field(ge=0, description="First row to return")] = 0,
        limit: Annotated[int, Field(ge=1, le=READ_MAX, description="Rows to return")] = READ_DEFAULT,
    ) -> DatasetPage:
        """Read dataset rows with their positional ids (example_000000, ...), long fields cut."""
        real = workspace.resolve(path)
        rows = read_rows(real)
        page = [_view(row) for row in rows[offset : offset + limit]]
        end = offset + len(page)
        return DatasetPage(
            path=workspace.relative(real),
            total_rows=len(rows),
            offset=offset,
            rows=page,
            next_offset=end if end < len(rows) else None,
        )

    def append_dataset_rows(
        path: Annotated[str, Field(description="A .jsonl dataset, e.g. 'dataset/train.jsonl'")],
        rows: Annotated[list[NewRow], Field(min_length=1, max_length=MAX_APPEND)],
    ) -> AppendResult:
        """Append rows (each with `input`, optional `output` and `metadata`) atomically; if any row is
        invalid nothing is written."""
        real = workspace.resolve(path, write=True)
        values = [row.model_dump(exclude_none=True) for row in rows]
        total = append_rows(real, values)
        return AppendResult(
            path=workspace.relative(real),
            appended=len(values),
            total_rows=total,
            first_id=row_id(total - len(values)),
            last_id=row_id(total - 1),
        )

    add_tool(server, test_environment, title="Test an environment", read_only=True, destructive=False,
             idempotent=True)  # fmt: skip
    add_tool(server, check_project, title="Check a project", read_only=True, destructive=False, idempotent=True)
    add_tool(server, read_dataset, title="Read dataset rows", read_only=True, destructive=False, idempotent=True)
    add_tool(server, append_dataset_rows, title="Append dataset rows", read_only=False, destructive=False,
             idempotent=False)  # fmt: skip


def _project(directory: Path) -> Path:
    if not (directory / "environment.py").is_file():
        raise UserError(f"no environment.py in {directory.name or 'the workspace'}; run setup_project first")
    return directory


def _from_config(raw: dict[str, Any], params: dict[str, Any]) -> tuple[str, bool, dict[str, Any]]:
    env = raw.get("environment") if isinstance(raw.get("environment"), dict) else {}
    configured = env.get("params") if isinstance(env.get("params"), dict) else {}
    algorithm = str(raw.get("algorithm") or "sft").lower()
    return algorithm, raw.get("thinking") is True, {**configured, **params}


def _view(row) -> DatasetRowView:
    value = row.value
    problem = row.error or row_problem(value)
    if isinstance(value, dict):
        return DatasetRowView(
            id=row_id(row.index),
            input=clip(value.get("input")),
            output=clip(value.get("output")),
            metadata=clip(value.get("metadata")),
            problem=problem,
        )
    return DatasetRowView(id=row_id(row.index), input=clip(value), problem=problem)
