"""The MCP server as its own unprivileged user (the agent's, which is the human's), behind the spend guard.

The server runs as a real stdio process under that user, driven by the SDK's client; its shell (commands run as
the same user) then tries every way around the guard. The interpreter and the virtualenv may sit where other users
cannot reach (a venv under /root): each command runs in a private mount namespace that binds them, the repository
and the venv's site-packages into a folder it can read, then drops to the user before the interpreter starts.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from flash_mcp.guard.daemon import Guard
from flash_mcp.guard.upstream import Upstream
from flash_mcp.planes.flash.guarded import SOCKET_ENV
from tests.conftest import call_error
from tests.flashplane.conftest import API_URL, AUTO_APPROVE, INTERNAL_KEY, ControlPlane
from tests.flashplane.guarding import ensure_user, request_as, serving_guard
from tests.flashplane.test_flash_plane import rl_project, runs_on_the_plane

pytestmark = pytest.mark.anyio
AGENT = "fmcp-guard-agent"
REPO = Path(__file__).resolve().parents[2]


class AgentUser:
    """Commands run as AGENT with this checkout's Python, in its own folders (workspace, state, home)."""

    def __init__(self, root: Path):
        self.account = pwd.getpwnam(AGENT)
        self.view, self.root = root / "view", root / "agent"
        for name in ("py", "site", "repo"):
            (self.view / name).mkdir(parents=True)
        for name in ("workspace", "state", "home"):
            (self.root / name).mkdir(parents=True)
        (self.root / "state" / "settings.toml").write_text(AUTO_APPROVE, encoding="utf-8")  # its own: approves $1000
        for path in (self.root, *self.root.rglob("*")):
            os.chown(path, self.account.pw_uid, self.account.pw_gid)
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(self.root / "home"), "LANG": "C.UTF-8",
                    "FLASH_MCP_HOME": str(self.root / "state")}  # fmt: skip

    def argv(self, *flash_mcp_args: str) -> list[str]:
        """`flash-mcp ARGS` as AGENT: bind what the interpreter needs, drop to the user, start Python."""
        binds = {"py": sys.base_prefix, "site": sysconfig.get_paths()["purelib"], "repo": str(REPO)}
        mounts = " && ".join(f"mount --bind {shlex.quote(src)} {shlex.quote(str(self.view / dst))}"
                             for dst, src in binds.items())  # fmt: skip
        python = self.view / "py" / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        repo, site = str(self.view / "repo"), str(self.view / "site")
        # The venv's packages before the interpreter's own (as the venv orders them), its .pth files processed.
        boot = (f"import sys, site; site.addsitedir({site!r}); sys.path.remove({site!r}); "
                f"sys.path[0:0] = [{repo!r}, {site!r}]; from flash_mcp.cli import main; sys.exit(main())")  # fmt: skip
        drop = f"setpriv --reuid {self.account.pw_uid} --regid {self.account.pw_gid} --clear-groups"
        libs = shlex.quote(str(self.view / "py" / "lib"))  # its own libpython, not the system's
        command = (f"{mounts} && cd / && LD_LIBRARY_PATH={libs} exec {drop} {python} -I -c {shlex.quote(boot)} "
                   + shlex.join(flash_mcp_args))  # fmt: skip
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", command]

    def run(self, *args: str, shell: bool = False) -> subprocess.CompletedProcess:
        """A command in the agent's shell: `flash-mcp ARGS`, or with `shell` a plain sh command line."""
        if shell:
            argv = ["setpriv", "--reuid", str(self.account.pw_uid), "--regid", str(self.account.pw_gid),
                    "--clear-groups", "sh", "-c", args[0]]  # fmt: skip
        else:
            argv = self.argv(*args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=self.env, input="y\n")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentUser]:
    if os.geteuid() != 0:
        pytest.skip("runs the server as another user: needs root (CI runs as root)")
    ensure_user(AGENT, shell="/bin/sh")
    root = Path(tempfile.mkdtemp(prefix="fmcp-agent-"))
    root.chmod(0o755)
    try:
        yield AgentUser(root)
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.fixture
def agents_guard(tmp_path: Path, control_plane: ControlPlane, agent: AgentUser,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:  # fmt: skip
    """The guard in front of the control plane, for AGENT as the human's user (its socket's caller role)."""
    upstream = Upstream(API_URL, INTERNAL_KEY)
    with serving_guard(tmp_path, upstream, control_plane.transport, monkeypatch, agent.account.pw_uid) as served:
        agent.env[SOCKET_ENV] = str(served.socket_path)  # type: ignore[attr-defined]
        yield served


async def test_a_server_running_as_the_agents_user_cannot_spend_and_its_shell_cannot_approve(
    agent: AgentUser, agents_guard: Guard, control_plane: ControlPlane
) -> None:
    command, *args = agent.argv("serve", "--plane", "flash", "--workspace", str(agent.root / "workspace"))
    params = StdioServerParameters(command=command, args=args, env=agent.env)
    async with Client(params) as client:
        assert (
            (await client.call_tool("whoami", {}))
            .structured_content["detail"]["spend_authority"]
            .startswith("guarded:")
        )
        config = await rl_project(client)
        refused = await call_error(client, "launch_training", config=config)
        assert "the spend guard holds this as proposal gp-" in refused and INTERNAL_KEY not in refused
        (proposal,) = agents_guard.store.list("pending")
        sock = agents_guard.socket_path  # type: ignore[attr-defined]

        # The agent's shell, as the same user: the CLI's approvals, the guard's commands, its files, its memory.
        approve = agent.run("approve", proposal.id, "--yes")
        guard_approve = agent.run("guard", "approve", proposal.id, "--socket", str(sock))
        loosen = agent.run("guard", "set", "max_run_usd=100000", "--socket", str(sock))
        home = agents_guard.home
        reads = agent.run(f"cat {home}/flash.json {home}/guard.db; ls {home}; cat /proc/{os.getpid()}/environ",
                          shell=True)  # fmt: skip
        forged = request_as(AGENT, sock, "POST", f"/guard/v1/proposals/{proposal.id}/approve",
                            {"digest": proposal.digest})  # fmt: skip
        around = request_as(AGENT, sock, "POST", "/v1/runs", proposal.body)

        assert runs_on_the_plane(control_plane) == []
        assert [p.id for p in agents_guard.store.list("pending")] == [proposal.id]
        assert approve.returncode != 0 or "passkey" in approve.stdout + approve.stderr, approve
        assert guard_approve.returncode != 0, guard_approve
        assert "applied" not in loosen.stdout, loosen
        assert reads.returncode != 0 and INTERNAL_KEY not in reads.stdout + reads.stderr
        assert reads.stderr.count("Permission denied") >= 3, reads.stderr
        assert forged[0] == 403 and around[0] == 403, (forged, around)
        for result in (approve, guard_approve, loosen):
            assert INTERNAL_KEY not in result.stdout + result.stderr
        assert json.dumps(agents_guard.store.list("pending")[0].body) == json.dumps(proposal.body)
