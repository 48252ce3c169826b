"""Environment-test children forked from the environment-test fork server (flash_mcp/sandbox/forked.py): the
same sandbox, environment, descriptors, limits and endings as a child started cold, tied to the server the same
way, and nothing of the fork server within the agent's reach. Every test drives `test_environment` through MCP."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.sandbox import warm_up_env_tests
from flash_mcp.sandbox.forkserver import ENV_TEST_FORK_SERVER
from tests.envs import projects as seeds
from tests.sandbox.conftest import attack, processes_tagged, run_environment
from tests.sandbox.test_forkserver import hunt
from tests.sandbox.test_lifetime import _until

pytestmark = pytest.mark.anyio

FACTS = """
import json, resource, socket
def refusal(action):
    try:
        action()
    except OSError as exc:
        return type(exc).__name__
    return "allowed"
home = os.environ["HOME"]
def mine(text):
    return text.replace(home, "<home>")
cmdline = open("/proc/self/cmdline", "rb").read().rstrip(b"\\0").decode().split("\\0")
facts = {
    "warm": "flash_mcp.sandbox.forkserver" in sys.modules,
    "env": {name: mine(value) for name, value in os.environ.items()},
    "argv": [mine(arg) for arg in sys.argv], "cmdline": [mine(arg) for arg in cmdline],
    "pid 1": open("/proc/1/cmdline", "rb").read().decode().split("\\0")[:4],
    "descriptors": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "cwd": os.getcwd(), "ids": [os.getuid(), os.getgid(), os.getpid(), os.getppid()],
    "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "limits": [resource.getrlimit(getattr(resource, name)) for name in
               ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CORE")],
    "state dir": refusal(lambda: os.listdir(STATE)), "outside": refusal(lambda: open(OUTSIDE + "/x", "w")),
    "root": refusal(lambda: os.listdir("/root")),
    "network": refusal(lambda: socket.create_connection(("1.1.1.1", 53), 1)),
}
print("FACTS", json.dumps(facts))
"""


def cold(home: Path, on: bool) -> None:
    """`[sandbox] preload_jobs = false` (children start cold) in the human's settings, reread at every test."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.toml").write_text(f"[sandbox]\npreload_jobs = {'false' if on else 'true'}\n", encoding="utf-8")


def printed(report: dict, tag: str) -> dict:
    [line] = [line for line in report["output"].splitlines() if line.startswith(tag + " ")]
    return json.loads(line.removeprefix(tag + " "))


@pytest.fixture
def ready() -> int:
    assert warm_up_env_tests(wait_s=120), "the environment-test fork server preloads"
    return ENV_TEST_FORK_SERVER.pid()


async def test_a_forked_child_is_sandboxed_exactly_like_a_cold_one(
    agent: Client, isolated_home: Path, tmp_path: Path, ready: int
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    source = attack(FACTS, STATE=str(isolated_home), OUTSIDE=str(outside))
    seen = {}
    for kind in ("warm", "cold"):
        cold(isolated_home, kind == "cold")
        report = await run_environment(agent, source)
        assert report["verdict"] == "pass", report["summary"]
        seen[kind] = printed(report, "FACTS")
    warm, started_cold = seen["warm"], seen["cold"]
    assert warm.pop("warm") and not started_cold.pop("warm"), "one child was forked, the other started cold"
    assert warm["pid 1"][:4] == started_cold["pid 1"][:4] and "forkserver" not in str(warm["cmdline"])
    assert warm == started_cold
    assert warm["cmdline"][4:] == warm["argv"][1:] and warm["cmdline"][3] == "flash_mcp.jobs.envtest_child"
    assert {warm[name] for name in ("state dir", "outside", "root")} == {"PermissionError"}
    assert warm["network"] != "allowed" and not list(outside.iterdir())


ENDS = """
    def score_response(self, example, response_text):
        if example.input == "What is 1 + 1?":
            os._exit(7)
        if example.input == "What is 3 + 1?":
            os.kill(os.getpid(), 9)
        return RewardResult(score=1.0 if response_text.strip() == str(example.output) else 0.0)
"""


async def test_a_forked_child_ends_as_a_cold_one_does(agent: Client, isolated_home: Path, ready: int) -> None:
    failures = {}
    for kind in ("warm", "cold"):
        cold(isolated_home, kind == "cold")
        report = await run_environment(agent, seeds.environment(score=ENDS))
        failures[kind] = [(f["row"], f["stage"], f["message"]) for f in report["failures"]]
    assert failures["warm"] == failures["cold"]
    assert [message for _row, _stage, message in failures["warm"]] == [
        "the environment process exited with code 7 while running this row",
        "the environment process exited with code -9 while running this row",
    ]


async def test_agent_code_cannot_reach_the_fork_server_it_was_forked_from(agent: Client, ready: int) -> None:
    """environment.py hunts for the fork server its own process was forked from: the process, its socket, a
    signal to it, its home (which, in the child's namespace, is the child's own directory)."""
    code = hunt("""
grab("its home is mine", lambda: os.path.samefile(HOME, os.environ["HOME"]))
grab("a file in its home", lambda: open(HOME + "/planted", "w").write("x"))
""")
    home = ENV_TEST_FORK_SERVER.home
    report = await run_environment(agent, attack(code, FORK_SERVER=ready, HOME=home))
    output = report["output"]
    for line in ("its process: blocked FileNotFoundError", "processes named forkserver: []", "its home is mine: True",
                 "sockets held: []", "a signal to it: blocked ProcessLookupError"):  # fmt: skip
        assert line in output, output
    assert ENV_TEST_FORK_SERVER.pid() == ready and not os.path.exists(os.path.join(home, "planted"))


TELLS_AND_HANGS = """
import subprocess
kind = "warm" if "flash_mcp.sandbox.forkserver" in sys.modules else "cold"
if os.path.basename(os.path.dirname(__file__)) == "hang":
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {tag!r}, kind], start_new_session=True)
    time.sleep(600)
print("STARTED", json.dumps(kind))
"""


def test_killing_the_server_kills_a_forked_child(workspace: Path, isolated_home: Path) -> None:
    """A server started as a user starts it: its first tests start cold while its fork server preloads; once a
    child is forked, killing the server ends that child's whole tree (the lifeline reaches it through the fork
    server)."""
    tag = f"flash-mcp-tag-{secrets.token_hex(6)}"
    source = seeds.environment(top=TELLS_AND_HANGS.format(tag=tag))
    for name in ("probe", "hang"):
        seeds.make_project(workspace, name, source, seeds.rows(2))
    server = subprocess.Popen(
        [sys.executable, "-m", "flash_mcp", "serve", "--workspace", str(workspace)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "FLASH_MCP_HOME": str(isolated_home)},
    )  # fmt: skip
    try:
        _send(server, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                     "clientInfo": {"name": "t", "version": "0"}})  # fmt: skip
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        kinds: list[str] = []
        while "warm" not in kinds and len(kinds) < 40:  # each a real test: cold until the fork server is ready
            kinds.append(_started(server, "probe"))
        assert kinds[0] == "cold" and kinds[-1] == "warm", f"the fork server never served a child: {kinds}"
        _send(server, "tools/call", {"name": "test_environment", "arguments": {"directory": "hang"}}, reply=False)
        assert _until(lambda: bool(processes_tagged(tag)), 60), "the environment's grandchild never started"
        assert all(b"warm" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in processes_tagged(tag))
    finally:
        server.kill()
        server.wait()
    assert _until(lambda: not processes_tagged(tag), 10), "the forked tree outlived the server"


IDS = itertools.count(1)


def _send(server: subprocess.Popen, method: str, params: dict, reply: bool = True) -> dict | None:
    server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": next(IDS), "method": method, "params": params}) + "\n")
    server.stdin.flush()
    return json.loads(server.stdout.readline()) if reply else None


def _started(server: subprocess.Popen, directory: str) -> str:
    """How a test's child started ("warm": forked, or "cold"), as its environment.py saw it."""
    reply = _send(server, "tools/call", {"name": "test_environment", "arguments": {"directory": directory}})
    return printed(reply["result"]["structuredContent"], "STARTED")
