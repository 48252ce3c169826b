"""Project tools: scaffold a project and read, write and list its files inside the workspace."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server import MCPServer
from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.project.diagnostics import Diagnostic, diagnose
from flash_mcp.domain.project.files import MAX_WRITE_BYTES, atomic_write, list_tree, locked, read_chunk
from flash_mcp.domain.project.scaffold import scaffold_project
from flash_mcp.surface.registry import add_tool

ProjectPath = Annotated[str, Field(description="File path relative to the workspace, e.g. 'configs/rl.toml'")]
ProjectDir = Annotated[str, Field(description="Directory relative to the workspace ('.' is the workspace)")]

READ_LIMIT_DEFAULT = 20_000
READ_LIMIT_MAX = 60_000
LIST_DEFAULT = 200
LIST_MAX = 1000


class SetupResult(BaseModel):
    directory: str
    created: list[str] = Field(description="Files written by this call")
    kept: list[str] = Field(description="Files that already existed and were left untouched")
    project: str | None = Field(description="Project UUID written into the configs, if any")
    multi_turn: bool
    reasoning: bool
    warnings: list[str]
    next_steps: list[str]


class FileChunk(BaseModel):
    path: str
    offset: int = Field(description="Byte offset this chunk starts at")
    size: int = Field(description="Total size of the file in bytes")
    content: str
    next_offset: int | None = Field(description="Pass as offset to read on; null at end of file")


class WriteResult(BaseModel):
    path: str
    bytes_written: int
    created: bool = Field(description="True when the file did not exist before")
    diagnostics: list[Diagnostic] = Field(description="Problems found in what was written")


class FileEntry(BaseModel):
    path: str
    kind: Literal["file", "dir", "symlink"]
    size: int | None = None
    secret: bool = Field(default=False, description="A .env file: listed, but never read or written")


class FileList(BaseModel):
    directory: str
    entries: list[FileEntry]
    total: int = Field(description="Entries found, including those beyond the limit")
    truncated: bool
    hint: str | None = None


def register(server: MCPServer, settings: ServerSettings) -> None:
    workspace = settings.workspace

    def setup_project(
        directory: ProjectDir = ".",
        project: Annotated[str | None, Field(description="Freesolo project UUID to write into every config")] = None,
        multi_turn: Annotated[bool, Field(description="Scaffold the multi-turn (episode) starter")] = False,
        reasoning: Annotated[bool, Field(description="Set thinking = true in the configs")] = False,
    ) -> SetupResult:
        """Scaffold a Flash project: environment.py, evaluations.py, dataset/train.jsonl,
        configs/{sft,rl,opd}.toml and TRAINING.md. Never overwrites: rerunning lists kept files."""
        target = workspace.resolve(directory)
        if target.exists() and not target.is_dir():
            raise UserError(f"{directory!r} is a file; give a directory for the project")
        result = scaffold_project(target, project=project, multi_turn=multi_turn, reasoning=reasoning)
        return SetupResult(
            directory=workspace.relative(target),
            created=[workspace.relative(p) for p in result.created],
            kept=[workspace.relative(p) for p in result.kept],
            project=result.project,
            multi_turn=result.multi_turn,
            reasoning=result.reasoning,
            warnings=result.warnings,
            next_steps=_next_steps(result.project),
        )

    def read_project_file(
        path: ProjectPath,
        offset: Annotated[int, Field(ge=0, description="Byte offset to start at")] = 0,
        limit: Annotated[int, Field(ge=1, le=READ_LIMIT_MAX, description="Bytes to read")] = READ_LIMIT_DEFAULT,
    ) -> FileChunk:
        """Read a text file in the workspace, a page at a time (byte offsets). .env values are never returned."""
        real = workspace.resolve(path)
        chunk = read_chunk(real, offset, limit)
        return FileChunk(
            path=workspace.relative(real),
            offset=offset,
            size=chunk.size,
            content=chunk.text,
            next_offset=chunk.next_offset,
        )

    def write_project_file(path: ProjectPath, content: str) -> WriteResult:
        """Write a text file in the workspace atomically (the old file survives any failure) and
        return diagnostics: TOML errors with line/column, JSONL rows that are not objects with
        `input`, Python syntax errors."""
        data = content.encode("utf-8")
        if len(data) > MAX_WRITE_BYTES:
            raise UserError(f"content is {len(data)} bytes; the limit is {MAX_WRITE_BYTES}. Split the file.")
        real = workspace.resolve(path, write=True)
        with locked(real):
            created = not real.exists()
            atomic_write(real, data)
        rel = workspace.relative(real)
        return WriteResult(path=rel, bytes_written=len(data), created=created, diagnostics=diagnose(rel, content))

    def list_project_files(
        directory: ProjectDir = ".",
        limit: Annotated[int, Field(ge=1, le=LIST_MAX, description="Most entries to return")] = LIST_DEFAULT,
    ) -> FileList:
        """List the project tree breadth-first (caches, venvs and .git are shown but not descended)."""
        real = workspace.resolve(directory)
        if not real.is_dir():
            raise UserError(f"{directory!r} is not a directory; call list_project_files on its parent")
        entries, total = list_tree(workspace, real, limit)
        truncated = total > len(entries)
        return FileList(
            directory=workspace.relative(real),
            entries=[FileEntry(path=e.path, kind=e.kind, size=e.size, secret=e.secret) for e in entries],
            total=total,
            truncated=truncated,
            hint="more entries exist: list a subdirectory or raise limit" if truncated else None,
        )

    add_tool(server, setup_project, title="Set up a Flash project", read_only=False, destructive=False, idempotent=True)
    add_tool(server, read_project_file, title="Read a project file", read_only=True, destructive=False, idempotent=True)
    add_tool(
        server, write_project_file, title="Write a project file", read_only=False, destructive=True, idempotent=True
    )
    add_tool(server, list_project_files, title="List project files", read_only=True, destructive=False, idempotent=True)


def _next_steps(project: str | None) -> list[str]:
    steps = []
    if project is None:
        steps.append("Ask the human for their Freesolo project UUID and rerun setup_project with project=<uuid>.")
    steps += [
        "Replace dataset/train.jsonl with real rows and the reward in environment.py with real grading.",
        "Read flash://guide for the loop: test every row, push, dry-run, then launch.",
    ]
    return steps
