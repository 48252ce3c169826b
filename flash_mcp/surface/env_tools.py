"""Environment tools: test every row out of process, a static preflight, and dataset rows."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.envtest.report import EnvTestReport
from flash_mcp.loop import datasets, envtest
from flash_mcp.loop.datasets import AppendResult, DatasetPage
from flash_mcp.loop.envtest import ProjectCheck
from flash_mcp.surface.server.registry import READ, add_tool

log = logging.getLogger(__name__)
MAX_APPEND = 1000
READ_DEFAULT, READ_MAX = 20, 200
ProjectDir = Annotated[str, Field(description="Project folder, workspace-relative")]
ConfigArg = Annotated[
    str | None,
    Field(description="Config for [environment.params], algorithm and thinking, e.g. configs/rl.toml"),
]


class CandidateResponse(BaseModel):
    row_id: str = Field(description="Row id from read_dataset, e.g. example_000003")
    response: str | list[str] = Field(description="Answer to score (turns if multi-turn)")


_MESSAGES = {"type": "array", "items": {"type": "object", "required": ["role", "content"]}}
# Typed in the schema the agent reads; checked by the dataset's row contract, whose errors name the row.
PromptValue = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "string"}, _MESSAGES]})]
GoldValue = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                _MESSAGES,
                {"type": "object", "properties": {"messages": _MESSAGES}, "required": ["messages"]},
                {"type": "null"},
            ]
        }
    ),
]


class NewRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: PromptValue = Field(description="The prompt: text, or chat messages [{role, content}]")
    output: GoldValue = Field(default=None, description='Gold answer: text, a message list, or {"messages": [...]}')
    metadata: dict[str, Any] | None = Field(default=None, description="Data the scorer sees and the model does not")


def register(server: MCPServer, settings: ServerSettings) -> None:
    workspace = settings.workspace

    async def test_environment(
        ctx: Context,
        directory: ProjectDir = ".",
        config: ConfigArg = None,
        rows: Annotated[Literal["all"] | int, Field(description='"all", or the first N rows')] = "all",
        params: Annotated[dict[str, Any], Field(description="Override [environment.params] keys")] = {},  # noqa: B006
        responses: Annotated[
            list[CandidateResponse], Field(description="Answers to score, probing the reward for hacks")
        ] = [],  # noqa: B006
        timeout_s: Annotated[float, Field(gt=0, le=3600, description="Limit for the whole test")] = 600,
        row_timeout_s: Annotated[float, Field(gt=0, le=600, description="Limit for one row")] = 30,
    ) -> EnvTestReport:
        """Run environment.py on every row (or the first N) in its own process: Flash's contract checks, gold
        and wrong answers scored, a reward audit (exploit probes, one verdict per family in audit.families;
        open families fail GRPO/OPD configs), scorer errors kept, hangs and crashes contained."""
        candidates = [r.model_dump() for r in responses]
        test = await anyio.to_thread.run_sync(  # file work off the event loop: a FIFO must not stall it
            envtest.prepare_test, workspace, directory, config, rows, params, candidates, (timeout_s, row_timeout_s)
        )
        return await anyio.to_thread.run_sync(envtest.run_test, test, _progress_reporter(ctx))

    def check_project(directory: ProjectDir = ".", config: ConfigArg = None) -> ProjectCheck:
        """Static preflight (no code runs): empty environment ids, dropped params, max_examples vs rows,
        unpriceable GRPO/OPD configs, missing splits and secrets, datasets/ vs dataset/, scorer imports
        missing from pip, untagged thinking golds, algorithm vs environment kind."""
        return envtest.check_project(workspace, directory, config)

    def read_dataset(
        path: Annotated[str, Field(description="Dataset file, e.g. 'dataset/train.jsonl'")],
        offset: Annotated[int, Field(ge=0, description="First row to return")] = 0,
        limit: Annotated[int, Field(ge=1, le=READ_MAX, description="Rows to return")] = READ_DEFAULT,
    ) -> DatasetPage:
        """Read dataset rows with their positional ids (example_000000, ...), long fields cut."""
        return datasets.read_dataset(workspace, path, offset, limit)

    def append_dataset_rows(
        path: Annotated[str, Field(description="A .jsonl dataset, e.g. 'dataset/train.jsonl'")],
        rows: Annotated[list[NewRow], Field(min_length=1, max_length=MAX_APPEND)],
    ) -> AppendResult:
        """Append rows (each with `input`, optional `output` and `metadata`) atomically; if any row is
        invalid nothing is written."""
        return datasets.append_dataset_rows(workspace, path, [row.model_dump(exclude_none=True) for row in rows])

    add_tool(server, test_environment, title="Test an environment", **READ)
    add_tool(server, check_project, title="Check a project", **READ)
    add_tool(server, read_dataset, title="Read dataset rows", **READ)
    add_tool(server, append_dataset_rows, title="Append dataset rows", read_only=False, destructive=False,
             idempotent=False)  # fmt: skip


def _progress_reporter(ctx: Context):
    """A thread-side callback that sends MCP progress notifications, best effort."""
    token = anyio.lowlevel.current_token()

    def progress(done: int, total: int) -> None:
        try:
            anyio.from_thread.run(ctx.report_progress, done, total or None, f"{done} rows checked", token=token)
        except Exception:  # progress is best effort: a departed client must not stop the test
            log.debug("progress notification failed", exc_info=True)

    return progress
