"""The spend guard served in a thread of the test process, over a real Unix socket, in front of the real control
plane; and requests made by a forked child that drops to another user's uid first, so the guard sees that uid
through SO_PEERCRED as the kernel reports it. Creating those users needs root (CI runs as root).
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from flash_mcp.core.advice import INSTALLED_GUARD
from flash_mcp.guard.daemon import Guard, GuardServer
from flash_mcp.guard.upstream import Upstream, save_upstream
from flash_mcp.planes.flash.guarded import SOCKET_ENV

DECIDER, STRANGER = "fmcp-guard-decider", "fmcp-guard-stranger"


def ensure_user(name: str, shell: str = "/usr/sbin/nologin") -> int:
    """The uid of user `name`, made if missing; one useradd at a time across test workers (a file lock)."""
    with open("/tmp/flash-mcp-tests-useradd.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", shell, name], check=True)
            return pwd.getpwnam(name).pw_uid


_uid = ensure_user


@contextmanager
def serving_guard(tmp_path: Path, upstream: Upstream, transport: httpx.BaseTransport,
                  monkeypatch: pytest.MonkeyPatch, human_uid: int | None = None) -> Iterator[Guard]:  # fmt: skip
    """A guard for `human_uid` (default: this process's user), deciding by DECIDER's uid, forwarding to `upstream`
    over `transport`."""
    if os.geteuid() != 0:
        pytest.skip("the guard tests create users: they run as root (CI does)")
    home = tmp_path / "guard-home"
    home.mkdir(mode=0o700)
    save_upstream(home, upstream)
    _uid(STRANGER)
    public = Path(tempfile.mkdtemp(prefix="fmcp-guard-"))  # other users must reach the socket, as in /run
    public.chmod(0o755)
    socket_path = public / "guard.sock"
    human = os.geteuid() if human_uid is None else human_uid
    deciders = frozenset({_uid(DECIDER)})
    served = Guard(home, human_uid=human, transport=transport, deciders=deciders, human_command=str(INSTALLED_GUARD))
    server = GuardServer(socket_path, served)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(SOCKET_ENV, str(socket_path))
    monkeypatch.delenv("FREESOLO_API_KEY")  # the human's shell holds no key: the guard does
    served.socket_path = socket_path  # type: ignore[attr-defined]
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(public)


def request_as(user: str | None, socket_path: Path, method: str, path: str, body: object = None) -> tuple[int, dict]:
    """One HTTP request over the guard's socket, from a child that first becomes `user` (None: this process)."""
    payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    wire = (f"{method} {path} HTTP/1.1\r\nHost: guard\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload  # fmt: skip
    if user is None:
        return _parse(_exchange(socket_path, wire))
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            account = pwd.getpwnam(user)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            os.write(write, _exchange(socket_path, wire))
        except BaseException as exc:
            os.write(write, f"HTTP/1.1 599 child\r\n\r\n{json.dumps({'child': repr(exc)})}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(child, 0)
    return _parse(answer)


def _exchange(socket_path: Path, wire: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(socket_path))
        connection.sendall(wire)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body or b"{}")
