"""Environment packages, selected exactly as `flash env push` 1.3.28 selects them.

flash/cli/commands/env/ops/push.py and imports.py: the whole tree beside environment.py minus
ignored names, dot-names, virtualenvs, symlinks and secret-looking data files; the `sys.path`
shim after the module preamble; single-file mode (a .py entrypoint: docs, configs, its static
import closure, evaluations.py and datasets) with the alias module; a README stub when absent;
the 256 MiB and 5000-member limits; the direct-token scan. The content digest is taken over the
files as authored (before the shim), so "edited since push" compares like with like.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import io
import os
import re
import tarfile
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

from flash_mcp.core.errors import UserError

ENTRYPOINT = "environment.py"
SYSPATH_SHIM = (
    "import os as _flash_os, sys as _flash_sys\n_flash_sys.path.insert(0, _flash_os.path.dirname(__file__))\n"
)
IGNORED_NAMES = frozenset(
    {
        ".prime", ".git", ".github", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".idea",
        ".vscode", ".ds_store", ".git-worktrees", ".env", ".netrc", ".aws", ".ssh", "venv", "node_modules",
        "credentials", "secrets",
    }
)  # fmt: skip
ROOT_IGNORED_NAMES = frozenset({"pyproject.toml", "source"})
SECRET_PATTERNS = (
    ".env.*", "*.env", "*.pem", "*.key", "*.pfx", "*.p12", "credentials*", "id_rsa*", "id_dsa*", "id_ecdsa*",
    "id_ed25519*",
)  # fmt: skip
CODE_SUFFIXES = frozenset({".py", ".pyi"})
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 5000
_URLSAFE = rb"A-Za-z0-9_-"
_TOKEN_RULES = ((b"fslo_", _URLSAFE, 45), (b"hf_", rb"A-Za-z0-9", 34), (b"pit_", rb"A-Za-z0-9", 64))
_TOKEN_PATTERNS = tuple(
    re.compile(
        rb"(?<![" + _URLSAFE + rb"])" + re.escape(prefix) + rb"([" + body + rb"]{" + str(length).encode() + rb"})"
        rb"(?![" + _URLSAFE + rb"])"
    )
    for prefix, body, length in _TOKEN_RULES
)
_PLACEHOLDERS = frozenset(
    {b"exampletoken", b"notarealtoken", b"placeholdertoken", b"replacemewithtoken", b"testtoken",
     b"yourapitokenhere", b"yourtokenhere"}
)  # fmt: skip


@dataclass(frozen=True)
class Package:
    """The members of an environment package, in archive order, and the authored-content digest."""

    name: str
    members: list[tuple[str, bytes]]
    digest: str

    @property
    def total_bytes(self) -> int:
        return sum(len(data) for _, data in self.members)


def normalize_name(raw: str) -> str | None:
    """`--name` per segment: lowercase `[a-z0-9][a-z0-9._-]*`, invalid runs become `-`."""
    segment = re.sub(r"[^a-z0-9._-]+", "-", str(raw or "").lower()).lstrip("._-").rstrip("-")
    if segment in {"", ".", ".."} or not re.search(r"[a-z0-9]", segment):
        return None
    return segment


@dataclass(frozen=True)
class Source:
    """What a push packages: a folder with environment.py, or one .py entrypoint (single-file mode)."""

    root: Path
    entrypoint: Path
    full_tree: bool


def resolve_source(path: Path) -> Source:
    """Flash's `_resolve_local_env_entrypoint`."""
    if not path.exists():
        raise UserError(f"no such path: {path.name}; give the project folder or its .py entrypoint")
    if path.is_symlink():
        raise UserError("cannot push a symlinked environment; push the real folder")
    if path.is_dir():
        entry = path / ENTRYPOINT
        if not entry.is_file():
            raise UserError(
                f"{path.name or 'the project'} has no {ENTRYPOINT} entrypoint; add one (setup_project), "
                "or pass the exact .py file for a single-file push"
            )
        source = Source(path, entry, full_tree=True)
    elif path.is_file() and path.suffix == ".py":
        source = Source(path.parent, path, full_tree=False)
    else:
        raise UserError(f"cannot push {path.name}: expected a folder with {ENTRYPOINT} or a .py entrypoint")
    if source.entrypoint.is_symlink():
        raise UserError("cannot push a symlinked entrypoint; push the real file")
    return source


def build_package(path: Path, name: str) -> Package:
    """Select, shim and check the package for `path` (a folder with environment.py, or a .py file)."""
    source = resolve_source(path)
    authored_entry = source.entrypoint.read_bytes()
    members = [(ENTRYPOINT, with_syspath_shim(authored_entry))]
    alias = alias_module(source)
    if alias is not None:
        members.append(alias)
    sidecars = list(select_sidecars(source))
    _check_limits([(ENTRYPOINT, authored_entry + SYSPATH_SHIM.encode()), *members[1:]], sidecars, name)
    authored = [(ENTRYPOINT, authored_entry)]
    for file, relative in sidecars:
        data = file.read_bytes()
        members.append((relative, data))
        authored.append((relative, data))
    if not any(relative == "README.md" for relative, _ in members):
        members.append(("README.md", readme_stub(name).encode()))
    if any(contains_direct_token(data) for _, data in members):
        raise UserError("environment package contains a direct access token; remove it before pushing")
    return Package(name=name, members=members, digest=content_digest(authored))


def alias_module(source: Source) -> tuple[str, bytes] | None:
    """A renamed entrypoint ships as environment.py plus `<stem>.py` rebinding the old module name."""
    if source.entrypoint.name == ENTRYPOINT:
        return None
    stem = source.entrypoint.stem
    text = (
        "# generated by `flash env push`: this environment's entrypoint was published as\n"
        f"# {ENTRYPOINT}, so `import {stem}` keeps resolving to the same module.\n"
        "import sys\n\nimport environment as _environment\n\nsys.modules[__name__] = _environment\n"
    )
    return source.entrypoint.name, text.encode()


def select_sidecars(source: Source):
    """The files that ship beside the entrypoint: the whole tree, or the single-file selection."""
    if source.full_tree:
        return iter_sidecars(source.root)
    from flash_mcp.domain.packaging.imports import single_file_sidecars

    return single_file_sidecars(source)


def tar_gz(members: list[tuple[str, bytes]]) -> bytes:
    """The gzip tar `flash env push` uploads: regular files only, in its sorted walk order."""
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for relative, data in sorted(members, key=lambda member: _walk_key(member[0])):
            info = tarfile.TarInfo(relative)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _walk_key(relative: str) -> tuple[tuple[int, str], ...]:
    """os.walk top-down with sorted names: a folder's files before its subfolders."""
    *folders, name = relative.split("/")
    return (*((1, folder) for folder in folders), (0, name))


def content_digest(files: list[tuple[str, bytes]]) -> str:
    """sha256 over sorted (path, sha256(bytes)) pairs: order-free and shim-free.

    Training configs are left out: they ship in the package but do not change what the
    environment does, and pushing writes the new id into them.
    """
    outer = hashlib.sha256()
    for relative, data in sorted(files):
        if _is_config(relative):
            continue
        outer.update(relative.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode() + b"\n")
    return outer.hexdigest()


def current_digest(path: Path) -> str:
    """The digest a push of `path` would record now."""
    source = resolve_source(path)
    sidecars = [(relative, file.read_bytes()) for file, relative in select_sidecars(source)]
    return content_digest([(ENTRYPOINT, source.entrypoint.read_bytes()), *sidecars])


def _is_config(relative: str) -> bool:
    return relative.endswith(".toml") and (relative.startswith("configs/") or "/" not in relative)


def readme_stub(name: str) -> str:
    return f"# {name}\n\nFlash Freesolo environment.\n"


def ignored(path: Path, *, root: Path, entrypoint: Path | None = None) -> bool:
    """Flash's `_ignore_env_push_path`."""
    lowered = path.name.lower()
    if path.is_symlink():
        return True
    if path.is_dir() and (path / "pyvenv.cfg").is_file():
        return True
    if path == entrypoint or (path.parent == root and lowered == ENTRYPOINT):
        return True
    if lowered.startswith(".") or lowered in IGNORED_NAMES:
        return True
    if path.parent == root and lowered in ROOT_IGNORED_NAMES:
        return True
    if (
        path.is_file()
        and path.suffix.lower() not in CODE_SUFFIXES
        and any(fnmatch.fnmatchcase(lowered, pattern) for pattern in SECRET_PATTERNS)
    ):
        return True
    return not (path.is_dir() or path.is_file())


def iter_sidecars(root: Path):
    """Every publishable file beside environment.py, sorted walk order, as (path, relative posix)."""

    def fail(error: OSError) -> None:
        raise error

    for current, dirs, files in os.walk(root, topdown=True, followlinks=False, onerror=fail):
        here = Path(current)
        dirs[:] = sorted(name for name in dirs if not ignored(here / name, root=root))
        for name in sorted(files):
            child = here / name
            if not ignored(child, root=root):
                yield child, child.relative_to(root).as_posix()


def _check_limits(generated: list[tuple[str, bytes]], sidecars: list[tuple[Path, str]], name: str) -> None:
    files = len(generated)
    total = sum(len(data) for _, data in generated)
    directories: set[str] = set()
    has_readme = False
    for path, relative in sidecars:
        files += 1
        total += path.stat().st_size
        has_readme = has_readme or relative == "README.md"
        parts = relative.split("/")[:-1]
        directories.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    if not has_readme:
        files += 1
        total += len(readme_stub(name).encode())
    members = files + len(directories)
    if total > MAX_TOTAL_BYTES:
        raise UserError(
            f"environment package totals {_human(total)} (limit {_human(MAX_TOTAL_BYTES)}); "
            "remove large artifacts or use a smaller dataset"
        )
    if members > MAX_MEMBERS:
        raise UserError(
            f"selected environment contains {members:,} files and directories (limit {MAX_MEMBERS:,}); "
            "remove large artifacts or use a smaller dataset"
        )


def with_syspath_shim(source: bytes) -> bytes:
    """Flash's `_prepare_env_entrypoint_source`: validate, insert the shim after the preamble."""
    try:
        compile(source, ENTRYPOINT, "exec")
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        text = source.decode(encoding)
    except (SyntaxError, UnicodeError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        where = f"line {line}" if line is not None else "unknown line"
        raise UserError(f"environment entrypoint has invalid Python syntax ({where}); fix it before pushing") from None
    tree = ast.parse(text, filename=ENTRYPOINT)
    lines = text.splitlines(keepends=True)
    insert_after = _preamble_lines(lines)
    body, i = tree.body, 0
    docstring = body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
    if docstring and isinstance(body[0].value.value, str):
        insert_after, i = max(insert_after, body[0].end_lineno or 0), 1
    while i < len(body) and isinstance(body[i], ast.ImportFrom) and body[i].module == "__future__":
        insert_after = max(insert_after, body[i].end_lineno or 0)
        i += 1
    prefix = "".join(lines[:insert_after])
    if prefix and not prefix.endswith(("\n", "\r")):
        prefix += "\n"
    published = prefix + SYSPATH_SHIM + "".join(lines[insert_after:])
    if not text.endswith(("\n", "\r")):
        published = published.removesuffix("\n")
    return published.encode(encoding)


def _preamble_lines(lines: list[str]) -> int:
    if not lines:
        return 0
    cookie = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+", re.ASCII)
    blank_or_comment = re.compile(r"^[ \t\f]*(?:#|[\r\n]|$)", re.ASCII)
    if cookie.match(lines[0]):
        return 1
    if len(lines) > 1 and blank_or_comment.match(lines[0]) and cookie.match(lines[1]):
        return 2
    return 1 if lines[0].startswith("#!") else 0


def contains_direct_token(data: bytes) -> bool:
    return any(not _placeholder(match.group(1)) for pattern in _TOKEN_PATTERNS for match in pattern.finditer(data))


def _placeholder(body: bytes) -> bool:
    """Flash's obvious placeholders: known phrases, or a body of only 0s or only xs."""
    normalized = body.lower().translate(None, b"_-")
    if normalized in _PLACEHOLDERS:
        return True
    return bool(normalized) and normalized[:1] in {b"0", b"x"} and len(set(normalized)) == 1


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
