"""The `tools/list` answer kept on disk, so a start answers it before importing a tool.

Building the tool list means importing every use case and having pydantic write ~70 JSON schemas: about a
fifth of a second, paid on every start by every client that only lists tools. The list is saved in the state
directory under a fingerprint of everything it is made from (this package's sources, the SDK's and pydantic's
versions, the Python version and optimisation level, the plane); a start whose fingerprint differs builds the
list afresh and saves it beside the others (the newest few are kept: two checkouts or both planes sharing a
state directory each find their own). The file only ever feeds `tools/list`: calls go to the registered tools and
validate against their own schemas.

The package ships the list too (`tools-list.json`, keyed the same way, for both planes): the first start after an
install whose sources and versions match it (a release installed with constraints.txt) answers from it without
building. A checkout whose sources changed since it was written builds, as before; `tests/surface/test_surface.py`
fails until it is written again (`UPDATE_SNAPSHOTS=1`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import pydantic
import pydantic_core
from mcp.types import Tool as MCPTool

log = logging.getLogger(__name__)
CACHE_DIR = "cache"
KEPT = 4
TMP_PREFIX = ".tools-list."
HOUR_NS = 3600 * 10**9
MAX_BYTES = 4 * 2**20  # the list is ~35 kB
PACKAGE = Path(__file__).resolve().parents[2]  # flash_mcp/
PACKAGED = Path(__file__).resolve().with_name("tools-list.json")  # the list as shipped: {"keys": [...], "tools"}


def fingerprint(plane: str, package: Path = PACKAGE) -> str:
    """A digest of every input the tool list is built from."""
    digest = hashlib.blake2b(digest_size=16)
    versions = (_version("mcp"), _version("mcp-types"), pydantic.VERSION, pydantic_core.__version__)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    for part in (plane, python, str(sys.flags.optimize), *versions):
        digest.update(part.encode() + b"\0")
    for name, source in _sources(package):
        digest.update(name.encode() + b"\0")
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _sources(package: Path) -> list[tuple[str, Path]]:
    """Every file of the package (modules, and any data a description could come from) by its relative name, in
    a stable order (os.walk: a third of rglob's time)."""
    found = []
    for folder, subfolders, files in os.walk(package):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        relative = Path(folder).relative_to(package).as_posix()
        found += [(f"{relative}/{name}", Path(folder, name)) for name in files if not name.endswith(".pyc")]
    shipped = f"{PACKAGED.parent.relative_to(PACKAGE).as_posix()}/{PACKAGED.name}"
    found = [(name, path) for name, path in found if name != shipped]  # the shipped list is made from the rest
    return sorted(found)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "-"


class ToolsCache:
    """The saved `tools/list` for one fingerprint, in `home`."""

    def __init__(self, home: Path, plane: str, key: str | None = None, packaged: Path | None = PACKAGED) -> None:
        """`key` defaults to the fingerprint of the sources as they are now; `packaged` is the shipped list."""
        self.plane, self.key, self.packaged = plane, key or fingerprint(plane), packaged
        self.path = home / CACHE_DIR / f"tools-{self.key}.json"

    def load(self) -> list[MCPTool] | None:
        """The saved tools (or the shipped ones) if they were built from the same inputs; None otherwise (missing,
        stale, unreadable)."""
        for path, keys in ((self.path, "key"), (self.packaged, "keys")):
            if path is None:
                continue
            try:
                saved = json.loads(_read_regular_file(path))
                if isinstance(saved, dict) and self.key in _listed(saved.get(keys)):
                    return [MCPTool.model_validate(tool) for tool in saved["tools"]]
            except Exception:  # whatever is wrong with the file, building the list afresh is right
                continue
        return None

    def save(self, tools: list[MCPTool]) -> None:
        """Write the file atomically, unless the sources changed since the start (the tools just registered may
        be a newer edit than the key names). A state directory that cannot be written only costs the next start."""
        if fingerprint(self.plane) != self.key:
            log.info("flash-mcp's sources changed since this server started; the tools list is not saved")
            return
        body = {"key": self.key, "tools": _dumped(tools)}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=TMP_PREFIX, suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(body, out, separators=(",", ":"))
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("could not save the tools list cache (%s); the next start builds it again", exc.strerror)
            return
        self._prune()

    def _prune(self) -> None:
        """Keep the newest `KEPT` lists (older fingerprints belong to sources that are gone), and drop temporary
        files a killed server left behind."""
        folder = self.path.parent
        saved = sorted(folder.glob("tools-*.json"), key=_modified, reverse=True)
        abandoned = [tmp for tmp in folder.glob(TMP_PREFIX + "*") if _modified(tmp) < time.time_ns() - HOUR_NS]
        for old in saved[KEPT:] + abandoned:
            try:
                old.unlink(missing_ok=True)
            except OSError as exc:
                log.debug("could not remove %s: %s", old, exc.strerror)


@functools.cache
def shipped_tool_names() -> frozenset[str]:
    """The tools' names, from the list the package ships (advice to the human names them as the agent's)."""
    try:
        return frozenset(str(tool["name"]) for tool in json.loads(PACKAGED.read_text(encoding="utf-8"))["tools"])
    except (OSError, ValueError, KeyError, TypeError):
        return frozenset()


def _listed(keys: object) -> list[object]:
    """A saved file's key (one string) or the shipped file's keys (one a plane), as a list."""
    return keys if isinstance(keys, list) else [keys]


def shipped_body(tools: list[dict[str, object]]) -> dict[str, object]:
    """The shipped list's contents: `tools` (in wire form, as every plane lists them) under each plane's
    fingerprint."""
    return {"keys": [fingerprint("local"), fingerprint("flash")], "tools": tools}


def _dumped(tools: list[MCPTool]) -> list[dict[str, object]]:
    return [tool.model_dump(mode="json", by_alias=True) for tool in tools]


def _modified(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # another server pruned it first
        return 0


def _read_regular_file(path: Path) -> bytes:
    """The file's bytes if it is a regular file of sane size; a FIFO or device must not block the server."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_BYTES:
            raise ValueError(f"{path} is not a tools list")
        return file.read(MAX_BYTES + 1)
