"""`flash-mcp guard install` for real, as root: a system user, root-owned code, a socket, the key out of reach.

Installs into a folder (`--root`) with `--no-systemd`, so the guard starts at once under its own user; the
human is a user made for the test. Runs the real CLI in child processes.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flash_mcp.guard.install import GUARD_USER, Layout
from tests.flashplane.guarding import ensure_user

HUMAN = "fmcp-guard-human"
PYTHON = Path("/usr/bin/python3")  # root-owned, and reachable by the guard's user (unlike a venv under /root)


def flash_mcp(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flash_mcp", "guard", *args], input=stdin, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def as_user(user: str, argv: list[str]) -> subprocess.CompletedProcess:
    """`argv` run by `user` (a shell as the human's user: what the agent has)."""
    account = pwd.getpwnam(user)
    return subprocess.run(argv, user=account.pw_uid, group=account.pw_gid, extra_groups=[], capture_output=True,
                          text=True, timeout=60, cwd="/")  # fmt: skip


@pytest.fixture
def installed() -> Iterator[Layout]:
    if os.geteuid() != 0:
        pytest.skip("guard install needs root: these run as root (CI does)")
    ensure_user(HUMAN, shell="/bin/sh")
    ensure_user(GUARD_USER)  # made once here, so parallel installs do not race on useradd
    root = Path(tempfile.mkdtemp(prefix="fmcp-install-"))
    root.chmod(0o755)
    layout = Layout(root)
    done = flash_mcp("install", "--human-user", HUMAN, "--python", str(PYTHON), "--root", str(root), "--no-systemd")
    assert done.returncode == 0, done.stderr
    try:
        yield layout
    finally:
        flash_mcp("uninstall", "--purge", "--root", str(root), "--no-systemd")
        shutil.rmtree(root, ignore_errors=True)


def test_install_starts_a_guard_under_its_own_user_with_root_owned_code(installed: Layout) -> None:
    guard = pwd.getpwnam(GUARD_USER)
    assert installed.socket.exists()
    assert installed.home.stat().st_uid == guard.pw_uid and installed.home.stat().st_mode & 0o777 == 0o700
    daemon = installed.code / "lib/flash_mcp/guard/daemon.py"
    assert daemon.stat().st_uid == 0 and daemon.stat().st_mode & 0o777 == 0o644
    pid = int(installed.pidfile.read_text())
    assert f"Uid:\t{guard.pw_uid}\t" in Path(f"/proc/{pid}/status").read_text()

    command = installed.command  # the human's sudo runs this, never the clone the agent's shell can edit
    assert command.stat().st_uid == 0 and command.stat().st_mode & 0o777 == 0o755
    assert command.read_text().startswith(f"#!{PYTHON} -I\n")
    own = subprocess.run([str(command), "guard", "status", "--socket", str(installed.socket)], capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert own.returncode == 0 and json.loads(own.stdout)["human_uid"] == pwd.getpwnam(HUMAN).pw_uid, own.stderr
    status = flash_mcp("status", "--socket", str(installed.socket))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["human_uid"] == pwd.getpwnam(HUMAN).pw_uid
    assert json.loads(status.stdout)["logged_in"] is False

    login = flash_mcp("login", "--home", str(installed.home), "--api-url", "http://flash.invalid",
                      stdin="fslo_secret_key_for_install_test\n")  # fmt: skip
    assert login.returncode == 0 and "fslo_secret" not in login.stdout + login.stderr
    assert json.loads(flash_mcp("status", "--socket", str(installed.socket)).stdout)["logged_in"] is True


def test_the_humans_shell_cannot_read_the_key_edit_the_guard_or_decide(installed: Layout) -> None:
    flash_mcp("login", "--home", str(installed.home), stdin="fslo_secret_key_for_install_test\n")
    shell = ["/bin/sh", "-c"]
    assert as_user(HUMAN, [*shell, f"cat {installed.home}/flash.json"]).returncode != 0
    assert as_user(HUMAN, [*shell, f"ls {installed.home}"]).returncode != 0
    assert as_user(HUMAN, [*shell, f"echo x >> {installed.code}/lib/flash_mcp/guard/daemon.py"]).returncode != 0
    before = installed.command.read_bytes()  # what the human's sudo runs: neither edited nor replaced
    assert as_user(HUMAN, [*shell, f"echo 'import os' >> {installed.command}"]).returncode != 0
    assert as_user(HUMAN, [*shell, f"mv {installed.command} /tmp/x; ln -s /bin/sh {installed.command}"]).returncode
    assert as_user(HUMAN, [*shell, f"echo x > {installed.command.parent}/python3"]).returncode != 0
    assert installed.command.read_bytes() == before and not installed.command.is_symlink()
    assert as_user(HUMAN, [*shell, f"cat /proc/{installed.pidfile.read_text()}/environ"]).returncode != 0
    pid = installed.pidfile.read_text().strip()
    attach = as_user(HUMAN, [str(PYTHON), "-c", (
        "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
        "print(libc.ptrace(16, int(sys.argv[1]), 0, 0), ctypes.get_errno())"
    ), pid])  # fmt: skip
    assert attach.stdout.split() == ["-1", "1"], attach  # PTRACE_ATTACH: EPERM
    decide = as_user(HUMAN, [str(PYTHON), "-c", (
        "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
        "s.sendall(b'POST /guard/v1/proposals/gp-000000000000/approve HTTP/1.1\\r\\nHost: g\\r\\n"
        "Content-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}'); "
        "print(b''.join(iter(lambda: s.recv(4096), b'')).decode())"
    ), str(installed.socket)])  # fmt: skip
    assert decide.stdout.split()[1] == "403", decide
    # and it says how the human decides: sudo and the guard's own root-owned copy, never the clone's flash-mcp
    assert f"`sudo {installed.command} guard approve gp-000000000000`" in decide.stdout, decide.stdout


def test_install_refuses_an_interpreter_the_human_could_replace(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("guard install needs root: these run as root (CI does)")
    ensure_user(HUMAN, shell="/bin/sh")
    writable = tmp_path / "bin"
    writable.mkdir()
    writable.chmod(0o777)
    (writable / "python3").symlink_to(PYTHON)
    refused = flash_mcp("install", "--human-user", HUMAN, "--python", str(writable / "python3"),
                        "--root", str(tmp_path), "--no-systemd")  # fmt: skip
    assert refused.returncode == 1 and "root-owned interpreter" in refused.stderr


def test_the_installed_guard_forwards_a_read_to_flash_with_its_key(installed: Layout) -> None:
    """The root-owned copy holds everything a forward needs (httpx makes its transport only then)."""
    import http.server
    import threading

    seen: list[str] = []

    class Flash(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(f"{self.path} {self.headers.get('Authorization')}")
            body = b'{"runs": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    flash = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flash)
    threading.Thread(target=flash.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{flash.server_address[1]}"
        argv = [str(installed.command), "guard", "login", "--home", str(installed.home), "--api-url", url]
        login = subprocess.run(argv, input="fslo_forwarded_key\n", capture_output=True, text=True, timeout=120)
        assert login.returncode == 0, login.stderr
        read = as_user(HUMAN, [str(PYTHON), "-c", (
            "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
            "s.sendall(b'GET /v1/runs HTTP/1.1\\r\\nHost: g\\r\\nConnection: close\\r\\n\\r\\n'); "
            "print(b''.join(iter(lambda: s.recv(4096), b'')).decode())"
        ), str(installed.socket)])  # fmt: skip
    finally:
        flash.shutdown()
        flash.server_close()
    assert read.stdout.split()[1] == "200" and '{"runs": []}' in read.stdout, read
    assert seen == ["/v1/runs Bearer fslo_forwarded_key"], seen


def test_installing_again_replaces_the_running_guard_and_a_relative_python_is_written_absolute() -> None:
    if os.geteuid() != 0:
        pytest.skip("guard install needs root: these run as root (CI does)")
    ensure_user(HUMAN, shell="/bin/sh")
    ensure_user(GUARD_USER)
    root = Path(tempfile.mkdtemp(prefix="fmcp-reinstall-"))
    root.chmod(0o755)
    layout = Layout(root)
    install = [sys.executable, "-m", "flash_mcp", "guard", "install", "--human-user", HUMAN, "--python",
               PYTHON.name, "--root", str(root), "--no-systemd"]  # fmt: skip
    try:
        first = subprocess.run(install, capture_output=True, text=True, timeout=120, cwd=PYTHON.parent)
        assert first.returncode == 0, first.stderr
        # run from another folder, a relative #! would find an interpreter planted there
        assert layout.command.read_text().startswith(f"#!{PYTHON} -I\n")
        old = int(layout.pidfile.read_text())
        again = subprocess.run(install, capture_output=True, text=True, timeout=120, cwd=PYTHON.parent)
        assert again.returncode == 0, again.stderr
        new = int(layout.pidfile.read_text())
        assert new != old and not _running(old), "the earlier guard was stopped, not left running"
        status = flash_mcp("status", "--socket", str(layout.socket))
        assert status.returncode == 0 and json.loads(status.stdout)["human_uid"] == pwd.getpwnam(HUMAN).pw_uid
    finally:
        flash_mcp("uninstall", "--purge", "--root", str(root), "--no-systemd")
        shutil.rmtree(root, ignore_errors=True)
    assert not _running(new)


def _running(pid: int) -> bool:
    """Alive, not a zombie waiting for its parent (here the machine's init) to reap it."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
