"""Read, write and list the files of the agent's project, inside the workspace."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.workspace import Workspace
from flash_mcp.domain.project.diagnostics import Diagnostic, diagnose
from flash_mcp.domain.project.files import MAX_WRITE_BYTES, list_tree, locked, read_chunk
from flash_mcp.loop.shipping import Shipping, shipping

if TYPE_CHECKING:
    from flash_mcp.planes.base import Plane


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
    ships_with_environment: bool | None = Shipping.model_fields["ships_with_environment"]
    stale_pushes: list[str] = Shipping.model_fields["stale_pushes"]


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


def read_file(workspace: Workspace, path: str, offset: int, limit: int) -> FileChunk:
    real = workspace.resolve(path)
    chunk = read_chunk(real, offset, limit, workspace.relative(real))
    return FileChunk(
        path=workspace.relative(real), offset=offset, size=chunk.size, content=chunk.text, next_offset=chunk.next_offset
    )


def write_file(workspace: Workspace, path: str, content: str, planes: Iterable[Plane] = ()) -> WriteResult:
    """Write atomically (the old file survives any failure), then diagnose what was written and say whether it
    ships with its environment and which pushes (on `planes`) it made stale."""
    data = content.encode("utf-8")
    if len(data) > MAX_WRITE_BYTES:
        raise UserError(f"content is {len(data)} bytes; the limit is {MAX_WRITE_BYTES}. Split the file.")
    real = workspace.resolve(path, write=True)
    rel = workspace.relative(real)
    with locked(real, rel) as folder:  # the folder's flock: across threads and server processes
        created = folder.lstat(real.name) is None
        folder.replace(real.name, data)
    shipped = shipping(workspace, real, planes)
    return WriteResult(
        path=rel, bytes_written=len(data), created=created, diagnostics=diagnose(rel, content), **dict(shipped)
    )


def list_files(workspace: Workspace, directory: str, limit: int) -> FileList:
    real = workspace.resolve_dir(directory)
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
