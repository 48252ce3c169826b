"""The package keeps its shape: import arrows point down the layers, no cycles, no private names across modules.

Layers, top to bottom (ARCHITECTURE.md): entry (cli, server, transport) > surface > loop > planes | harness >
domain > runtime | sandbox > core; the spend guard (`guard/`, a program of its own) imports only core. A module
may import its own layer and any layer below it. jobs (programs that
run agent code in a child process) may import only domain, runtime, core and the harness's wire module, and
nothing imports jobs: they are started by module name. Inside the surface, the server machinery
(`surface/server/`) imports no tool, resource or prompt module. Every import counts, including lazy ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "flash_mcp"
ENTRY = {"flash_mcp", "flash_mcp.__main__", "flash_mcp.cli", "flash_mcp.server", "flash_mcp.transport"}
RANK = {
    "entry": 7,
    "guard": 6,
    "review": 6,
    "surface": 6,
    "loop": 5,
    "planes": 4,
    "harness": 4,
    "domain": 3,
    "runtime": 2,
    "sandbox": 2,
    "core": 1,
}
JOBS_MAY_IMPORT = {"jobs", "domain", "runtime", "core"}
GUARD_MAY_IMPORT = {"guard", "core"}  # the spend guard runs as its own user: the least code it can
WIRE = "flash_mcp.harness.wire"  # the one harness module a job imports: the messages both sides speak


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "templates" in path.relative_to(PACKAGE).parts:  # scaffold templates are the agent's code, not ours
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> str:
    if module in ENTRY:
        return "entry"
    return module.split(".")[1]


def _target(name: str) -> str:
    """The module an imported dotted name lives in: itself, or the longest module prefix."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every flash_mcp import in `module`, lazy ones too."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(_target(a.name), [], node.lineno) for a in node.names if a.name.split(".")[0] == "flash_mcp"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "flash_mcp":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:  # `from pkg import module`
                    found.append((submodule, [], node.lineno))
                else:
                    found.append((_target(base), [alias.name], node.lineno))
    return found


EDGES = {
    (module, target, line, tuple(names))
    for module, path in MODULES.items()
    for target, names, line in _imports(module, path)
    if target != module
}


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}"


def _allowed(source: str, target: str) -> bool:
    src, dst = _layer(source), _layer(target)
    if src == "jobs" or dst == "jobs":
        return src == "jobs" and (dst in JOBS_MAY_IMPORT or target == WIRE)
    if src == "guard":
        return dst in GUARD_MAY_IMPORT
    if src == dst:
        return True
    return RANK[src] > RANK[dst]


def test_every_module_is_in_a_named_layer() -> None:
    unknown = sorted(m for m in MODULES if _layer(m) not in RANK and _layer(m) != "jobs")
    assert not unknown, f"put these in a named layer (see ARCHITECTURE.md): {unknown}"


def test_imports_point_down_the_layers() -> None:
    upward = sorted(
        f"{_where(src, line)}: {src} ({_layer(src)}) imports {dst} ({_layer(dst)})"
        for src, dst, line, _ in EDGES
        if not _allowed(src, dst)
    )
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_server_machinery_imports_no_declarations() -> None:
    """`surface/server/` is what every tool goes through; the declarations sit above it, never below."""
    upward = sorted(
        f"{_where(src, line)}: {src} imports {dst}"
        for src, dst, line, _ in EDGES
        if src.startswith("flash_mcp.surface.server")
        and _layer(dst) == "surface"
        and not dst.startswith("flash_mcp.surface.server")
        and dst != "flash_mcp.surface"
    )
    assert not upward, "the server machinery imports declarations:\n" + "\n".join(upward)


def test_the_wire_imports_nothing_of_ours() -> None:
    """Both sides of the environment test import the wire, so it depends on nothing of theirs."""
    assert not [dst for src, dst, _, _ in EDGES if src == WIRE]


def test_no_private_names_imported_across_modules() -> None:
    private = sorted(
        f"{_where(src, line)}: {src} imports {name} from {dst}"
        for src, dst, line, names in EDGES
        for name in names
        if name.startswith("_") and not name.startswith("__")
    )
    assert not private, "make these public or keep them in their module:\n" + "\n".join(private)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    lines = {}
    for src, dst, line, _ in EDGES:
        graph.setdefault(src, set()).add(dst)
        lines.setdefault((src, dst), line)
    cycles = [cycle for cycle in _cycles(graph) if len(cycle) > 1]
    described = [
        " -> ".join(f"{a} ({_where(a, lines[(a, b)])})" for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True))
        + f" -> {cycle[0]}"
        for cycle in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(described)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(set(component))
    return [_one_cycle(graph, component) for component in components if len(component) > 1]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, by breadth-first search inside it."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, ()) & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return [start]


MAX_MODULE_LINES = 400


def test_no_module_is_over_the_size_limit() -> None:
    """A module past ~400 lines holds more than one idea: split it by the families it already has."""
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
