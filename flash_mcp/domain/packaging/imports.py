"""Single-file push selection, as flash/cli/commands/env/ops/imports.py (1.3.28) walks it.

README.md, TRAINING.md, root `*.toml`, `configs/**/*.toml`, the entrypoint's static import closure
(including literal `importlib.import_module`/`__import__` calls through local aliases),
`evaluations.py` and its closure, then `dataset/` and `datasets/`.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from flash_mcp.core import pysource
from flash_mcp.core.errors import UserError
from flash_mcp.domain.packaging.source import Source, ignored, read_member

Selected = Iterator[tuple[Path, str]]
_DYNAMIC = frozenset({"import_module", "__import__"})
EVALUATIONS = "evaluations.py"


def single_file_sidecars(source: Source) -> Selected:
    root, entry = source.root, source.entrypoint
    skip = _Skip(root, entry, source.exclude)
    seen: set[Path] = set()
    for doc in (root / "README.md", root / "TRAINING.md"):
        if doc.is_file() and not skip(doc):
            seen.add(doc)
            yield doc, _rel(doc, root)
    for config in sorted(root.iterdir()):
        if config.is_file() and config.suffix.lower() == ".toml" and config not in seen and not skip(config):
            seen.add(config)
            yield config, _rel(config, root)
    configs = root / "configs"
    if configs.is_dir() and not skip(configs):
        for file in _walk(configs, skip):
            if file.suffix.lower() == ".toml" and file not in seen:
                seen.add(file)
                yield file, _rel(file, root)
    tree = _parse(entry)
    if tree is not None:
        yield from _closure(_imported_names(tree), root, skip, seen)
    sidecar = root / EVALUATIONS
    if sidecar.is_file() and sidecar != entry and not skip(sidecar):
        if sidecar not in seen:
            seen.add(sidecar)
            yield sidecar, _rel(sidecar, root)
        try:
            evaluations = pysource.parse(_read_source(sidecar), filename=str(sidecar))
        except SyntaxError as exc:
            raise UserError(f"{EVALUATIONS}: invalid evaluation sidecar syntax: {exc.msg}") from None
        yield from _closure(_imported_names(evaluations), root, skip, seen)
    for folder in (root / "dataset", root / "datasets"):
        if folder.is_dir() and not folder.is_symlink():
            for file in _walk(folder, skip):
                if file not in seen:
                    seen.add(file)
                    yield file, _rel(file, root)


class _Skip:
    def __init__(self, root: Path, entrypoint: Path, exclude: tuple[Path, ...] = ()):
        self.root, self.entrypoint, self.exclude = root, entrypoint, exclude

    def __call__(self, path: Path) -> bool:
        return ignored(path, root=self.root, entrypoint=self.entrypoint, exclude=self.exclude)


def _walk(top: Path, skip: _Skip) -> Iterator[Path]:
    def fail(error: OSError) -> None:
        raise error

    for current, dirs, files in os.walk(top, topdown=True, followlinks=False, onerror=fail):
        here = Path(current)
        dirs[:] = sorted(name for name in dirs if not skip(here / name))
        for name in sorted(files):
            if not skip(here / name):
                yield here / name


def _closure(seeds: set[str], root: Path, skip: _Skip, seen: set[Path]) -> Selected:
    """Sibling modules and packages the seeds import, transitively."""
    pending, visited = sorted(seeds), set()
    while pending:
        module = pending.pop()
        if module in visited:
            continue
        visited.add(module)
        package, helper = root / module, root / f"{module}.py"
        ships_package = (
            package.is_dir() and not package.is_symlink()
            and ((package / "__init__.py").is_file() or not helper.is_file())
        )  # fmt: skip
        if ships_package:
            if not skip(package):
                for file in _walk(package, skip):
                    if file not in seen:
                        seen.add(file)
                        pending.extend(_helper_imports(file, root))
                        yield file, _rel(file, root)
            continue
        if helper.is_file() and helper != skip.entrypoint and helper not in seen and not skip(helper):
            seen.add(helper)
            pending.extend(_helper_imports(helper, root))
            yield helper, _rel(helper, root)


def _helper_imports(helper: Path, root: Path) -> set[str]:
    if helper.suffix != ".py":
        return set()
    tree = _parse(helper)
    return _imported_names(tree, siblings=helper.parent == root) if tree is not None else set()


def _imported_names(tree: ast.AST, *, siblings: bool = True) -> set[str]:
    """Top-level names imported by statement or by a literal dynamic-import call."""
    names: set[str] = set()
    callees = _dynamic_callees(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".", 1)[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module.split(".", 1)[0])
            elif node.level == 1 and siblings:
                if node.module:
                    names.add(node.module.split(".", 1)[0])
                else:
                    names.update(alias.name.split(".", 1)[0] for alias in node.names)
        elif isinstance(node, ast.Call) and (dynamic := _dynamic_name(node, callees)):
            names.add(dynamic)
    return names


def _dynamic_callees(tree: ast.AST) -> frozenset[str]:
    """Names bound (directly or through assignment chains) to import_module or __import__."""
    names = set(_DYNAMIC)
    pending: dict[str, list[str]] = {}
    fresh: deque[str] = deque()

    def learn(name: str) -> None:
        if name not in names:
            names.add(name)
            fresh.append(name)

    def bind(targets: list[ast.expr], value: ast.expr) -> None:
        if isinstance(value, ast.Attribute):
            if value.attr not in _DYNAMIC:
                return
            source = None
        elif isinstance(value, ast.Name):
            source = value.id
        else:
            return
        for target in targets:
            if isinstance(target, ast.Name):
                if source is None:
                    learn(target.id)
                else:
                    pending.setdefault(source, []).append(target.id)

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "importlib":
            for alias in node.names:
                if alias.name == "import_module":
                    learn(alias.asname or alias.name)
        elif isinstance(node, ast.Assign):
            bind(node.targets, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            bind([node.target], node.value)
    fresh.extend(_DYNAMIC)
    while fresh:
        for target in pending.pop(fresh.popleft(), ()):
            learn(target)
    return frozenset(names)


def _dynamic_name(node: ast.Call, callees: frozenset[str]) -> str | None:
    func = node.func
    matched = func.attr in _DYNAMIC if isinstance(func, ast.Attribute) else getattr(func, "id", None) in callees
    if not matched:
        return None
    first = node.args[0] if node.args else next((kw.value for kw in node.keywords if kw.arg == "name"), None)
    if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
        return None
    return first.value.split(".", 1)[0] or None


def _parse(path: Path) -> ast.AST | None:
    try:
        return pysource.parse(_read_source(path), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def _read_source(path: Path) -> str:
    """Decode under the interpreter's own encoding rules (the cookie), as the publish path does."""
    data = read_member(path, path.name)
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
