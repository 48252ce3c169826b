"""`sudo flash-mcp guard install`: a system user, a state directory only it reads, root-owned code, a service.

The guard must not run code the agent can edit, so install copies the package and the libraries the guard
imports into a root-owned folder, and refuses an interpreter that the human's user (and so the agent) could
replace. The copy has its own root-owned `bin/flash-mcp`: the human's later `sudo … guard approve`, `login`,
`passkey`, `set` and `uninstall` run it, never the clone (whose code the agent's shell can edit, so sudo on it
would hand the agent root). With systemd the guard is a service; without it, install starts it now.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from flash_mcp.core.advice import INSTALLED_GUARD
from flash_mcp.core.errors import UserError

GUARD_USER = "flash-mcp-guard"
UNIT = "flash-mcp-guard.service"
# What the guard imports, including what httpx imports only when a client is made (httpcore, h11, certifi).
_CLOSURE = "import json, sys, httpx, flash_mcp.cli, flash_mcp.guard.commands, flash_mcp.guard.daemon, flash_mcp.guard.web; httpx.Client().close(); print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None)})))"  # noqa: E501


@dataclass(frozen=True)
class Layout:
    """Where an installed guard lives; `root` moves all of it (tests install into a folder)."""

    root: Path = Path("/")

    @property
    def code(self) -> Path:
        return self.root / "opt/flash-mcp-guard"

    @property
    def command(self) -> Path:
        """The guard's own flash-mcp: root-owned, run by the root-owned interpreter, isolated (`-I`)."""
        return self.root / INSTALLED_GUARD.relative_to("/")

    @property
    def home(self) -> Path:
        return self.root / "var/lib/flash-mcp-guard"

    @property
    def run(self) -> Path:
        return self.root / "run/flash-mcp-guard"

    @property
    def socket(self) -> Path:
        return self.run / "guard.sock"

    @property
    def pidfile(self) -> Path:
        return self.run / "guard.pid"


def install(human_user: str, layout: Layout, python: Path, use_systemd: bool) -> str:
    """Install and start the guard for `human_user`; what was done, in one line."""
    human = _account(human_user)
    if human.pw_uid == 0:
        raise UserError("the guard serves a human's own user, not root: pass --human-user with your login name")
    python = python.absolute()  # the launcher's shebang: a relative one is looked up from the caller's folder
    if any(c.isspace() for c in str(python)):
        raise UserError(f"{python} has whitespace in it, which a script's #! line cannot hold: pass another --python")
    _require_root_owned(python)
    guard = _ensure_user()
    if not use_systemd:
        _stop(layout)  # an earlier install's guard: its code is about to be replaced (systemd restarts it below)
    _copy_code(layout, python)
    for folder, mode in ((layout.home, 0o700), (layout.run, 0o755)):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, guard.pw_uid, guard.pw_gid)
        folder.chmod(mode)
    argv = _argv(python, layout, human.pw_uid)
    if use_systemd:
        _systemd_unit(argv)
    else:
        _start(argv, guard, layout)
    return f"the guard runs as {GUARD_USER} for {human_user}; its socket is {layout.socket}"


def uninstall(layout: Layout, use_systemd: bool, purge: bool) -> str:
    if use_systemd:
        subprocess.run(["systemctl", "disable", "--now", UNIT], check=False)
        Path("/etc/systemd/system", UNIT).unlink(missing_ok=True)
    else:
        _stop(layout)
    shutil.rmtree(layout.code, ignore_errors=True)
    shutil.rmtree(layout.run, ignore_errors=True)
    if purge:
        shutil.rmtree(layout.home, ignore_errors=True)
    kept = "" if purge else f"; its records stay in {layout.home} (--purge removes them)"
    return "the guard is stopped and removed" + kept


def _account(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise UserError(f"no user {name!r} on this machine") from None


def _require_root_owned(python: Path) -> None:
    """The interpreter and every folder above it: owned by root, writable by no one else."""
    given = python.absolute()
    for path in {given, *given.parents, python.resolve(), *python.resolve().parents}:
        info = path.lstat()
        writable = not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o022  # a link's own mode means nothing
        if info.st_uid != 0 or writable:
            raise UserError(
                f"{path} could be changed by a user other than root, so the guard must not run {python}; "
                "pass --python with a root-owned interpreter (e.g. /usr/bin/python3 with httpx and pydantic)"
            )


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(GUARD_USER)
    except KeyError:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                               GUARD_USER], capture_output=True, text=True)  # fmt: skip
        if made.returncode not in (0, 9):  # 9: made meanwhile by another install
            raise UserError(f"could not create the user {GUARD_USER}: {made.stderr.strip()}") from None
        return pwd.getpwnam(GUARD_USER)


def _copy_code(layout: Layout, python: Path) -> None:
    """flash_mcp and the third-party packages the guard's commands import, copied root-owned into the layout's
    `code`, and its `command`, the human's way in to them."""
    code, command = layout.code, layout.command
    files = json.loads(subprocess.run([sys.executable, "-c", _CLOSURE], capture_output=True, text=True,
                                      check=True).stdout)  # fmt: skip
    roots = {_top_level(Path(f)) for f in files if "site-packages" in f or "/flash_mcp/" in f}
    shutil.rmtree(code, ignore_errors=True)
    (code / "lib").mkdir(parents=True)
    for root in sorted(r for r in roots if r is not None):
        target = code / "lib" / root.name
        if root.is_dir():
            shutil.copytree(root, target, ignore=shutil.ignore_patterns("__pycache__", "templates"), dirs_exist_ok=True)
        else:
            shutil.copy2(root, target)
    command.parent.mkdir(parents=True)
    command.write_text(f"#!{python} -I\n{_boot(code)}\n", encoding="utf-8")
    for path in [code, *code.rglob("*")]:
        os.chown(path, 0, 0, follow_symlinks=False)
        path.chmod(0o755 if path.is_dir() or path == command else 0o644)


def _top_level(path: Path) -> Path | None:
    """The folder or module right under site-packages (or the flash_mcp package) that holds `path`."""
    parts = path.parts
    for anchor in ("site-packages", "flash_mcp"):
        if anchor in parts:
            index = parts.index(anchor)
            return Path(*parts[: index + 1]) if anchor == "flash_mcp" else Path(*parts[: index + 2])
    return None


def _boot(code: Path) -> str:
    lib = str(code / "lib")
    return f"import sys; sys.path.insert(0, {lib!r}); from flash_mcp.cli import main; sys.exit(main())"


def _argv(python: Path, layout: Layout, human_uid: int) -> list[str]:
    return [str(python), "-I", "-c", _boot(layout.code), "guard", "run", "--human-uid", str(human_uid),
            "--home", str(layout.home), "--socket", str(layout.socket),
            "--human-command", str(layout.command)]  # fmt: skip


def _systemd_unit(argv: list[str]) -> None:
    command = " ".join(_quoted(a) for a in argv)
    Path("/etc/systemd/system", UNIT).write_text(
        f"[Unit]\nDescription=flash-mcp spend guard\n\n[Service]\nUser={GUARD_USER}\nExecStart={command}\n"
        "Restart=on-failure\nNoNewPrivileges=yes\nProtectSystem=strict\nReadWritePaths=/var/lib/flash-mcp-guard "
        "/run/flash-mcp-guard\nPrivateTmp=yes\n\n[Install]\nWantedBy=multi-user.target\n",
        encoding="utf-8",
    )
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    subprocess.run(["systemctl", "enable", UNIT], check=True)
    subprocess.run(["systemctl", "restart", UNIT], check=True)  # an earlier install's guard runs the new code


def _quoted(arg: str) -> str:
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"' if any(c in arg for c in " ;\"'\\") else arg


def _start(argv: list[str], guard: pwd.struct_passwd, layout: Layout, wait_s: float = 30.0) -> None:
    """No systemd: start the guard now, detached, as its user, and wait until its socket answers."""
    layout.socket.unlink(missing_ok=True)
    try:
        process = _spawn(argv, guard, layout)
    except OSError as exc:
        raise UserError(f"the guard's user cannot start {argv[0]} ({exc.strerror}); pass --python") from None
    layout.pidfile.write_text(str(process.pid))
    deadline = time.monotonic() + wait_s
    while not layout.socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise UserError(f"the guard did not start; {layout.home / 'guard.log'} says why")
        time.sleep(0.05)


def _spawn(argv: list[str], guard: pwd.struct_passwd, layout: Layout) -> subprocess.Popen:
    return subprocess.Popen(
        argv, user=guard.pw_uid, group=guard.pw_gid, extra_groups=[], start_new_session=True, cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": str(layout.home)}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=(layout.home / "guard.log").open("ab"),
    )  # fmt: skip


def _stop(layout: Layout) -> None:
    """The guard started without systemd, stopped (the pid its run folder names, only if it is the guard's)."""
    try:
        pid = int(layout.pidfile.read_text().strip() or 0)
    except (OSError, ValueError):
        return
    if pid > 1 and _is_guard(pid):
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid)


def _wait_gone(pid: int, wait_s: float = 10.0) -> None:
    deadline = time.monotonic() + wait_s
    while _is_guard(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _is_guard(pid):
        os.kill(pid, signal.SIGKILL)


def _is_guard(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    try:
        uid = pwd.getpwnam(GUARD_USER).pw_uid
    except KeyError:
        return False
    return f"Uid:\t{uid}\t" in status and "State:\tZ" not in status
