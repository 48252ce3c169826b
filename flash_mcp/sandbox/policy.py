"""What a sandboxed program may see: the Python installation, system libraries, a clean environment."""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding flash_mcp/
# System files a Python program reads; nothing under /etc beyond these (no shadow, no keys).
SYSTEM_READ_ONLY = (
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
    "/etc/localtime", "/etc/timezone", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts",
    "/etc/host.conf", "/etc/resolv.conf", "/etc/gai.conf", "/etc/ssl", "/etc/ca-certificates", "/etc/pki",
    "/etc/mime.types", "/etc/os-release", "/etc/alternatives", "/dev/urandom", "/dev/random",
    "/sys/devices/system/cpu", "/sys/devices/system/node", "/proc",
)  # fmt: skip
SYSTEM_READ_WRITE = ("/dev/null", "/dev/zero", "/dev/full", "/dev/shm")
ENV_ALLOWED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
MASK_SCAN_LIMIT = 200_000
GPU_NODE_PATTERNS = ("nvidia[0-9]*", "nvidiactl", "nvidia-uvm*", "nvidia-modeset", "dri/*")


def python_argv(module: str, *args: str) -> list[str]:
    """argv running `python -m module args…` with this interpreter; -P keeps the cwd off sys.path."""
    return [sys.executable, "-P", "-m", module, *args]


def base_env(home: Path | str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The clean environment every sandboxed program starts from: an allow-list, never the server's.

    HOME and TMPDIR point at the program's own writable directory; PYTHONPATH at the flash_mcp
    package root, so `python -m flash_mcp.jobs…` imports this very source tree.
    """
    env = {name: os.environ[name] for name in ENV_ALLOWED if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        HOME=str(home), TMPDIR=str(home), PYTHONPATH=str(PACKAGE_ROOT), PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false", FLASH_MCP_SANDBOXED="1",
    )  # fmt: skip
    env.update(extra or {})
    return env


def python_read_only() -> tuple[list[str], list[str], list[str]]:
    """(prefixes, packages, list-only) for this interpreter: installation, source packages, source roots.

    A sys.path entry outside the installation (an editable checkout, PYTHONPATH) is list-only; only
    its package directories are readable, so a `.env` beside a checkout stays out of reach.
    """
    full = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    full.update(p for p in (sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")) if p)
    full.add(str(Path(sys.executable).resolve().parent.parent))
    listed: set[str] = set()
    packages: set[str] = set()
    for entry in [*_pth_entries(full), str(PACKAGE_ROOT)]:
        if not os.path.isdir(entry) or any(_within(entry, root) for root in full):
            continue
        listed.add(entry)
        packages.update(str(child) for child in Path(entry).iterdir() if _is_package(child))
    return sorted(full), sorted(packages), sorted(listed)


def _pth_entries(prefixes: set[str]) -> list[str]:
    """Source roots that `.pth` files put on sys.path (editable installs), as the child's Python will."""
    entries = []
    for site in {p for p in sys.path if p.endswith("-packages") and any(_within(p, r) for r in prefixes)}:
        for pth in Path(site).glob("*.pth"):
            with contextlib.suppress(OSError):
                lines = pth.read_text(encoding="utf-8", errors="replace").splitlines()
                entries += [line.strip() for line in lines if line.strip().startswith("/")]
    return entries


def _is_package(path: Path) -> bool:
    return path.is_dir() and (path / "__init__.py").is_file() and not path.name.startswith(".")


def _within(path: str, root: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) == os.path.abspath(root)


def overlaps(granted: Iterable[str], home: Path, credentials: Path) -> list[str]:
    """Granted paths exposing the human's state: containing the state dir or Flash's credentials dir,
    inside the credentials dir, or inside the state dir other than one run/package (home/runs/<id>)."""
    bad = []
    for path in granted:
        contains = _within(str(home), path) or _within(str(credentials), path)
        in_home = _within(path, str(home))
        if contains or _within(path, str(credentials)) or (in_home and len(Path(path).relative_to(home).parts) < 2):
            bad.append(path)
    return bad


def env_files(roots: Iterable[str]) -> list[str]:
    """`.env*` files under the agent-visible trees: masked with /dev/null inside the sandbox."""
    found, seen = [], 0
    for root in roots:
        if not os.path.isdir(root):
            continue
        for folder, dirs, files in os.walk(root):
            seen += len(dirs) + len(files)
            if seen > MASK_SCAN_LIMIT:
                raise OSError(f"{root} has more than {MASK_SCAN_LIMIT} entries; too many to check for .env files")
            found += [os.path.join(folder, name) for name in files if name.startswith(".env")]
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
    return found


def model_tree(model: Path | str) -> Path:
    """What to grant for a model: a Hugging Face cache snapshot links into its repo's blobs/, so the repo."""
    parts = Path(model).parts
    return Path(*parts[: parts.index("snapshots")]) if "snapshots" in parts else Path(model)


def gpu_device_nodes(dev_root: Path | str = "/dev") -> list[str]:
    """The GPU device nodes present under `dev_root`: granted read-write only to jobs that ask for them."""
    root = Path(dev_root)
    return sorted(str(node) for pattern in GPU_NODE_PATTERNS for node in root.glob(pattern) if not node.is_dir())
