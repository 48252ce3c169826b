"""Project tools: scaffold a project and read, write and list its files inside the workspace."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from flash_mcp.core.settings import ServerSettings
from flash_mcp.loop import files, scaffold
from flash_mcp.loop.files import FileChunk, FileList, WriteResult
from flash_mcp.loop.scaffold import SetupResult
from flash_mcp.surface.server.planes import Planes
from flash_mcp.surface.server.registry import READ, add_tool

ProjectPath = Annotated[str, Field(description="Workspace-relative, e.g. 'configs/rl.toml'")]
ProjectDir = Annotated[str, Field(description="Workspace-relative folder")]

READ_LIMIT_DEFAULT = 20_000
READ_LIMIT_MAX = 60_000
LIST_DEFAULT = 200
LIST_MAX = 1000


def register(server: MCPServer, settings: ServerSettings, planes: Planes) -> None:
    workspace = settings.workspace

    def setup_project(
        directory: ProjectDir = ".",
        project: Annotated[str | None, Field(description="Freesolo project UUID; optional on the local plane")] = None,
        multi_turn: Annotated[bool, Field(description="Scaffold the multi-turn (episode) starter")] = False,
        reasoning: Annotated[bool, Field(description="Set thinking = true in the configs")] = False,
    ) -> SetupResult:
        """Scaffold a Flash project: environment.py, evaluations.py, dataset/train.jsonl,
        configs/{sft,rl,opd}.toml and TRAINING.md. Never overwrites: rerunning lists kept files."""
        return scaffold.setup_project(
            workspace, directory, project=project, multi_turn=multi_turn, reasoning=reasoning, plane=settings.plane
        )

    def read_project_file(
        path: ProjectPath,
        offset: Annotated[int, Field(ge=0, description="Byte offset to start at")] = 0,
        limit: Annotated[int, Field(ge=1, le=READ_LIMIT_MAX, description="Bytes to read")] = READ_LIMIT_DEFAULT,
    ) -> FileChunk:
        """Read a text file in the workspace, a page at a time (byte offsets). .env values are never returned."""
        return files.read_file(workspace, path, offset, limit)

    def write_project_file(path: ProjectPath, content: str) -> WriteResult:
        """Write a text file in the workspace atomically and return diagnostics (TOML errors with line/column,
        JSONL rows without `input`, Python syntax errors), whether it ships with its environment and which
        pushes it made stale (push again before launching)."""
        return files.write_file(workspace, path, content, planes.built())

    def list_project_files(
        directory: ProjectDir = ".",
        limit: Annotated[int, Field(ge=1, le=LIST_MAX, description="Most entries to return")] = LIST_DEFAULT,
    ) -> FileList:
        """List the project tree breadth-first (caches, venvs and .git are shown but not descended)."""
        return files.list_files(workspace, directory, limit)

    add_tool(server, setup_project, title="Set up a Flash project", read_only=False, destructive=False, idempotent=True)
    add_tool(server, read_project_file, title="Read a project file", **READ)
    add_tool(
        server, write_project_file, title="Write a project file", read_only=False, destructive=True, idempotent=True
    )
    add_tool(server, list_project_files, title="List project files", **READ)
