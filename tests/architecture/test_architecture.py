"""ARCHITECTURE.md stays true: it names every package and loop module, and the claims it makes about imports hold.

The import graph is tests/architecture/test_layers.py's (every flash_mcp import, lazy ones too); the layer rules
themselves (nothing imports jobs, surface/server/ imports no declaration, no cycles) are tested there, not again
here.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

from flash_mcp.core.settings import PLANES
from flash_mcp.planes import REGISTERED
from flash_mcp.surface.server.planes import PlaneChoice
from tests.architecture.test_layers import EDGES, MODULES, PACKAGE

ARCHITECTURE = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")

# What the surface may import beyond loop/, core/, the planes' seam and its own server machinery: the types its
# tools take or return and the static catalogs its resources serve, each named in ARCHITECTURE.md. A rule of the
# product (a config check, a verdict, a price) is reached through loop/, never imported here.
SURFACE_MAY_ALSO_IMPORT = {
    ("flash_mcp.domain.envtest.report", "EnvTestReport"),
    ("flash_mcp.domain.evaluation.record", "Sampling"),
    ("flash_mcp.domain.config", "catalog"),
    ("flash_mcp.domain.config.schema", "config_json_schema"),
    ("flash_mcp.sandbox", "sandbox_status"),
}
# The planes' seam: the protocol and its data types, and the registry (building a plane, its capabilities).
SEAM = {"flash_mcp.planes", "flash_mcp.planes.base"}


def _packages() -> list[str]:
    """Every package under flash_mcp/ as ARCHITECTURE.md writes it: `surface/server/`."""
    return sorted(
        f"{path.parent.relative_to(PACKAGE).as_posix()}/"
        for path in PACKAGE.rglob("__init__.py")
        if path.parent != PACKAGE and "templates" not in path.relative_to(PACKAGE).parts
    )


def _bullet(folder: str) -> str:
    """The one-sentence-per-folder bullet that starts with `folder`, up to the next bullet."""
    match = re.search(rf"^- `{re.escape(folder)}`.*?(?=^- |^## )", ARCHITECTURE, flags=re.M | re.S)
    assert match, f"ARCHITECTURE.md has a bullet for {folder}"
    return match.group(0)


def _surface_declarations() -> list[str]:
    return [m for m in MODULES if m.startswith("flash_mcp.surface.") and not m.startswith("flash_mcp.surface.server")]


def test_every_package_is_named() -> None:
    missing = [package for package in _packages() if package not in ARCHITECTURE]
    assert not missing, f"say what these packages are in ARCHITECTURE.md: {missing}"


def test_every_loop_module_is_named() -> None:
    loop = sorted(Path(MODULES[m]).stem for m in MODULES if m.startswith("flash_mcp.loop."))
    assert "launch" in loop, "the scan found the loop modules"
    paragraph = _bullet("loop/")
    missing = [name for name in loop if not re.search(rf"`{name}(\.py)?`", paragraph)]
    assert not missing, f"name these loop modules in ARCHITECTURE.md's loop list: {missing}"


def test_every_file_it_names_exists() -> None:
    """A `name.py` in ARCHITECTURE.md is a file of the repository (written from the repo root or any folder)."""
    files = [path.relative_to(PACKAGE.parent).as_posix() for path in PACKAGE.parent.glob("[!.]*/**/*.py")]
    named = set(re.findall(r"`([\w/]+\.py)`", ARCHITECTURE))
    assert len(named) > 20, "the scan found the named files"
    missing = sorted(n for n in named if not any(f == n or f.endswith(f"/{n}") for f in files))
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"


def test_every_plane_package_is_registered_by_one_line() -> None:
    """A new plane is one package (or module) under planes/ plus one line in planes/__init__.py:REGISTERED."""
    planes = PACKAGE / "planes"
    found = {p.name for p in planes.iterdir() if (p / "__init__.py").exists()}
    found |= {p.stem for p in planes.glob("*.py") if p.stem not in {"__init__", "base"}}
    assert found == {module.rsplit(".", 1)[1] for module in REGISTERED.values()}
    assert all(REGISTERED[name] == f"flash_mcp.planes.{name}" for name in REGISTERED)
    registry = (planes / "__init__.py").read_text(encoding="utf-8")
    assert all(registry.count(f'"flash_mcp.planes.{name}"') == 1 for name in found)
    assert "planes/__init__.py:REGISTERED" in ARCHITECTURE and "planes/memory.py" in ARCHITECTURE


def test_the_planes_agents_choose_are_registered_and_in_the_tools_schema() -> None:
    """`--plane` values (core/settings.py:PLANES) are registered, and the `plane` argument offers exactly them."""
    assert set(PLANES) <= set(REGISTERED)
    (choice, _none) = typing.get_args(typing.get_args(PlaneChoice)[0])
    assert set(typing.get_args(choice)) == set(PLANES)
    assert "core/settings.py:PLANES" in ARCHITECTURE and "surface/server/planes.py:PlaneChoice" in ARCHITECTURE


def test_the_loop_and_the_surface_reach_planes_only_through_the_seam() -> None:
    """'loop/ imports no plane package': no planes/local, planes/flash or planes/memory above the planes."""
    reaching = sorted(
        f"{source} imports {target}"
        for source, target, _, _ in EDGES
        if source.split(".")[1] in {"loop", "surface"} and target.startswith("flash_mcp.planes") and target not in SEAM
    )
    assert not reaching, "\n".join(reaching)
    assert "`loop/` imports no plane package" in ARCHITECTURE


def test_the_surface_holds_no_product_rules() -> None:
    """Surface declarations import loop/, core/, the planes' seam and surface/server/; beyond that only the
    result types and static catalogs ARCHITECTURE.md lists."""
    declarations = _surface_declarations()
    assert "flash_mcp.surface.run_tools" in declarations, "the scan found the tool modules"
    allowed_layers = {"loop", "core", "surface"}
    extra = set()
    for source, target, _, names in EDGES:
        if source not in declarations or target.split(".")[1] in allowed_layers or target in SEAM:
            continue
        taken = names or (target.rsplit(".", 1)[1],)
        parent = target.rsplit(".", 1)[0] if not names else target
        extra |= {(parent, name) for name in taken}
    assert extra <= SURFACE_MAY_ALSO_IMPORT, f"reach these through loop/: {sorted(extra - SURFACE_MAY_ALSO_IMPORT)}"
    undocumented = [name for _, name in sorted(SURFACE_MAY_ALSO_IMPORT) if f"`{name}`" not in ARCHITECTURE]
    assert not undocumented, f"name these surface imports in ARCHITECTURE.md: {undocumented}"


def test_the_loop_speaks_no_mcp() -> None:
    """'plain Python returning pydantic results, no `mcp` imports'."""
    speaking = sorted(
        str(path.relative_to(PACKAGE.parent))
        for name, path in MODULES.items()
        if name.startswith("flash_mcp.loop")
        and re.search(r"^\s*(from|import) mcp\b", path.read_text(encoding="utf-8"), flags=re.M)
    )
    assert not speaking, speaking
    assert "no `mcp` imports" in ARCHITECTURE
