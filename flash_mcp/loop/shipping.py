"""After a write: does the file ship with its environment, and which pushes of that environment are now stale?

A file ships when it lies in an environment project (the nearest folder above it with environment.py) and
`flash env push`'s rules package it (domain/packaging/source.py). A push is stale when the plane's record of
it came from that project and the digest a push would record now differs (what launch and evaluate refuse).
Only planes this server has already built are asked: a write never creates one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.workspace import Workspace
from flash_mcp.domain.packaging.package import current_digest
from flash_mcp.domain.packaging.source import ENTRYPOINT, ignored, never_packaged

if TYPE_CHECKING:
    from flash_mcp.planes.base import Plane


class Shipping(BaseModel):
    ships_with_environment: bool | None = Field(
        None, description="True when a push of its project packages this file; null outside a project"
    )
    stale_pushes: list[str] = Field(default_factory=list, description="Pushes this write made stale")


def shipping(workspace: Workspace, written: Path, planes: Iterable[Plane]) -> Shipping:
    project = project_of(workspace, written)
    if project is None:
        return Shipping()
    if not ships(project, written, never_packaged((workspace.state_dir,))):
        return Shipping(ships_with_environment=False)
    return Shipping(ships_with_environment=True, stale_pushes=stale_pushes(workspace, project, planes))


def project_of(workspace: Workspace, path: Path) -> Path | None:
    """The nearest folder above `path`, inside the workspace, holding environment.py."""
    for folder in path.parents:
        if folder != workspace.root and workspace.root not in folder.parents:
            return None
        if (folder / ENTRYPOINT).is_file():
            return folder
    return None


def ships(project: Path, path: Path, exclude: tuple[Path, ...]) -> bool:
    """Whether a full-tree push of `project` packages `path` (its entrypoint always ships)."""
    if path == project / ENTRYPOINT:
        return True
    chain = [path, *[p for p in path.parents if project in p.parents]]
    return not any(ignored(part, root=project, exclude=exclude) for part in chain)


def stale_pushes(workspace: Workspace, project: Path, planes: Iterable[Plane]) -> list[str]:
    ids = environment_ids(project)
    if not ids:
        return []
    try:
        now = current_digest(project, exclude=(workspace.state_dir,))
    except (UserError, OSError):
        return []
    stale = []
    for plane in planes:
        for env_id in ids:
            record = plane.pushed(env_id)
            if record is not None and Path(record.source) == project and record.digest != now:
                stale.append(
                    f"{env_id} on the {plane.name} plane was pushed before this change; push_environment again "
                    "before launch_training or evaluate"
                )
    return stale


def environment_ids(project: Path) -> list[str]:
    """The environment ids the project's configs name (configs/*.toml `environment.id`)."""
    ids: list[str] = []
    for config in sorted((project / "configs").glob("*.toml")):
        try:
            env_id = tomllib.loads(config.read_text(encoding="utf-8")).get("environment", {}).get("id")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
            continue
        if isinstance(env_id, str) and env_id and env_id not in ids:
            ids.append(env_id)
    return ids
