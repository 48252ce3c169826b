"""More attacks on the sandbox, beyond issue 13's list: what the server itself does with the files a
sandboxed child could write (its scratch or run directory), and what the child inherits."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call
from tests.envs import projects as seeds
from tests.local.conftest import FAST_SFT, tiny_model, wait_for_end  # noqa: F401 (tiny_model: a fixture)
from tests.sandbox.conftest import Secrets, attack, run_environment

pytestmark = pytest.mark.anyio


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The first child plants symlinks in its own scratch directory, where the server writes the next
# child's job.json and progress map, then crashes on a row so the server starts another child.
PLANT_THEN_CRASH = """
    def score_response(self, example, response_text):
        home = os.environ["HOME"]
        for name, target in (("job.json", SETTINGS), ("progress", PLANTED)):
            if os.path.lexists(os.path.join(home, name)):
                os.unlink(os.path.join(home, name))
            try:
                os.symlink(target, os.path.join(home, name))
            except OSError as exc:
                print("PLANT", name, "blocked", type(exc).__name__, flush=True)
        os._exit(3)
"""


async def test_a_child_cannot_make_the_server_write_through_a_symlink_in_its_scratch(
    agent: Client, settings: ServerSettings
) -> None:
    home = settings.home
    before = _digest(home / "settings.toml")
    top = f"\nSETTINGS = {str(home / 'settings.toml')!r}\nPLANTED = {str(home / 'planted')!r}\n"
    source = seeds.environment(top=top, score=PLANT_THEN_CRASH)
    await run_environment(agent, source, timeout_s=120)
    assert _digest(home / "settings.toml") == before, (home / "settings.toml").read_text()[:200]
    assert not (home / "planted").exists()


async def test_the_child_inherits_only_its_standard_streams_and_the_results_pipe(agent: Client) -> None:
    code = """
import stat
fds = {}
for name in os.listdir("/proc/self/fd"):
    try:
        fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    except OSError:
        pass
print("FDS", json.dumps({"home": os.environ["HOME"], "fds": fds}))
"""
    report = await run_environment(agent, attack(code))
    line = next(line for line in report["output"].splitlines() if line.startswith("FDS "))
    seen = json.loads(line.removeprefix("FDS "))
    fds = {int(fd): target for fd, target in seen["fds"].items()}
    assert fds[0] == "/dev/null"
    pipes = [fd for fd, target in fds.items() if fd > 2 and target.startswith("pipe:")]
    assert len(pipes) == 1, fds  # the results pipe; the output pipe is 1 and 2
    # Besides, only what the harness opened itself: its progress map in its own scratch, and listdir's fd.
    others = {fd: target for fd, target in fds.items() if fd > 2 and fd not in pipes}
    assert all(target.startswith(seen["home"] + "/") or target.startswith("/proc/") for target in others.values()), fds


async def test_a_hardlink_cannot_turn_a_project_or_state_file_into_a_writable_one(
    agent: Client, settings: ServerSettings, workspace: Path
) -> None:
    code = """
out = []
for label, source in (("project", PROJECT + "/environment.py"), ("state", STATE + "/settings.toml")):
    try:
        os.link(source, os.environ["HOME"] + "/" + label)
        out.append(f"{label}: linked")
    except OSError as exc:
        out.append(f"{label}: blocked {type(exc).__name__}")
print("ATTACK RAN", *out)
"""
    project = workspace / "p"
    before = _digest(settings.home / "settings.toml")
    source = attack(code, PROJECT=str(project), STATE=str(settings.home))
    report = await run_environment(agent, source)
    assert "project: blocked" in report["output"] and "state: blocked" in report["output"], report["output"]
    assert _digest(settings.home / "settings.toml") == before
    assert (project / "environment.py").read_text(encoding="utf-8") == source


KEYCTL, ADD_KEY = {"x86_64": (250, 248), "aarch64": (219, 217)}[os.uname().machine]


@pytest.fixture
def session_key() -> Iterator[str]:
    """A secret in this server process's own (fresh, anonymous) session keyring, as a login might leave."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    assert libc.syscall(KEYCTL, 1, None) > 0  # KEYCTL_JOIN_SESSION_KEYRING: a new one, this process only
    value = f"sentinel-keyring-{secrets.token_hex(8)}".encode()
    key = libc.syscall(ADD_KEY, b"user", b"flash-secret", value, len(value), ctypes.c_long(-3))
    assert key > 0, ctypes.get_errno()
    yield value.decode()
    libc.syscall(KEYCTL, 3, ctypes.c_long(key))  # KEYCTL_REVOKE


async def test_the_servers_keyring_and_abstract_sockets_are_out_of_reach(agent: Client, session_key: str) -> None:
    code = """
import ctypes, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = []
key = libc.syscall(KEYCTL, 10, ctypes.c_long(-3), b"user", b"flash-secret", 0)  # KEYCTL_SEARCH, session
buffer = ctypes.create_string_buffer(200)
size = libc.syscall(KEYCTL, 11, ctypes.c_long(key), buffer, 200)  # KEYCTL_READ
out.append(f"keyring: {buffer.raw[:max(size, 0)]!r} errno {ctypes.get_errno()}")
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("\\0" + NAME)
    out.append("abstract: connected")
except OSError as exc:
    out.append(f"abstract: blocked {type(exc).__name__}")
print("ATTACK RAN", *out)
"""
    name = f"flash-mcp-attack-{secrets.token_hex(4)}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + name)
    listener.listen()
    listener.setblocking(False)
    with listener:
        report = await run_environment(agent, attack(code, NAME=name, KEYCTL=KEYCTL))
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert "ATTACK RAN" in report["output"] and "abstract: blocked" in report["output"], report["output"]
    assert session_key not in json.dumps(report) and "keyring: b'' errno 13" in report["output"], report["output"]


@pytest.fixture
def training_settings(workspace: Path, isolated_home: Path, tiny_model: Path, planted: Secrets) -> ServerSettings:  # noqa: F811
    with (isolated_home / "settings.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[local]\nstand_in_model = "{tiny_model}"\n')
    return ServerSettings.create(workspace, home=isolated_home)


# Loaded by the trainer (cwd: its run directory): the run's samples file becomes Flash's credentials.
SAMPLES_TO_CREDENTIALS = """

import os as _os
if _os.path.basename(_os.path.dirname(_os.getcwd())) == "runs":
    for _name in ("samples.jsonl",):
        try:
            _os.unlink(_name)
        except OSError:
            pass
        _os.symlink(CREDENTIALS, _name)
    _os._exit(1)
"""


async def test_a_trainer_cannot_make_run_tools_return_a_file_outside_its_run_dir(
    training_settings: ServerSettings, planted: Secrets, tmp_path: Path
) -> None:
    credentials = tmp_path / "flash-data" / "config.json"
    async with Client(build_server(training_settings)) as client:
        source = await _project(client, training_settings.workspace.root, train=16)
        planted_source = source + f"\nCREDENTIALS = {str(credentials)!r}\n" + SAMPLES_TO_CREDENTIALS
        await call(client, "write_project_file", path="q/environment.py", content=planted_source)
        await call(client, "push_environment", name="starter", directory="q")
        launched = await call(client, "launch_training", config="q/configs/sft.toml", overrides=FAST_SFT)
        run = await wait_for_end(client, launched["run_id"])
        outputs = [json.dumps(run)]
        for tool, arguments in (("get_run_samples", {}), ("get_run_metrics", {})):
            try:
                outputs.append(json.dumps(await call(client, tool, run_id=run["run_id"], **arguments)))
            except Exception as exc:  # a refusal is fine; the credentials in a result are not
                outputs.append(str(exc))
    assert planted.credentials not in "".join(outputs), outputs


# Trainer: at exit, its final checkpoint becomes a symlink to the human's state directory.
# Evaluator (cwd: its eval dir), given that "checkpoint" to read: report what it can read there.
CHECKPOINT_TO_STATE = """

import atexit as _atexit
import os as _os
_here = _os.getcwd()
if _os.path.basename(_os.path.dirname(_here)) == "runs":
    def _swap():
        final = _os.path.join(_here, "checkpoints", "final")
        if _os.path.isdir(final) and not _os.path.islink(final):
            _os.rename(final, final + "-real")
            _os.symlink(STATE, final)
    _atexit.register(_swap)
elif _os.path.basename(_os.path.dirname(_here)) == "evals":
    for _name in ("settings.toml", "approvals.db"):
        try:
            _text = open(_os.path.join(STATE, _name), "rb").read()[:300]
        except OSError as _exc:
            _text = type(_exc).__name__
        print("STOLEN", _name, _text, flush=True)
    raise RuntimeError("STOLEN " + open(_os.path.join(STATE, "settings.toml")).read()[:300])
"""


async def test_a_checkpoint_symlink_does_not_grant_the_evaluator_the_state_directory(
    training_settings: ServerSettings, planted: Secrets, workspace: Path
) -> None:
    from tests.local.conftest import wait_for_evaluation

    async with Client(build_server(training_settings)) as client:
        source = await _project(client, workspace, train=16, test=4)
        source += f"\nSTATE = {str(training_settings.home)!r}\n" + CHECKPOINT_TO_STATE
        await call(client, "write_project_file", path="q/environment.py", content=source)
        await call(client, "push_environment", name="starter", directory="q")
        launched = await call(client, "launch_training", config="q/configs/sft.toml", overrides=FAST_SFT)
        run = await wait_for_end(client, launched["run_id"])
        assert run["state"] == "done", run
        try:
            started = await call(
                client, "evaluate", config="q/configs/sft.toml", target=f"{run['run_id']}/final", split="test",
                max_tokens=4, temperature=0.0,
            )  # fmt: skip
            found = json.dumps(await wait_for_evaluation(client, started["eval_id"]))
        except AssertionError as exc:  # refused: fine
            found = str(exc)
    assert planted.settings not in found, found


def test_a_granted_path_that_is_a_symlink_is_checked_as_its_target(isolated_home: Path, tmp_path: Path) -> None:
    """The launcher's own rule, beside the plane's: a grant resolving into the state dir is refused."""
    from flash_mcp.core.errors import UserError
    from flash_mcp.sandbox import SandboxSpec, launch

    isolated_home.mkdir(parents=True, exist_ok=True)
    run_dir = isolated_home / "runs" / "r-1"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "final").symlink_to(isolated_home)
    spec = SandboxSpec(["/bin/true"], read_only=[run_dir / "checkpoints" / "final"], read_write=[tmp_path / "w"])
    (tmp_path / "w").mkdir()
    with pytest.raises(UserError, match="refusing to expose the human's state"):
        launch(spec)


async def test_a_file_bigger_than_the_humans_file_limit_cannot_be_written(agent: Client) -> None:
    """RLIMIT_FSIZE ([sandbox] file_mb, 1 GiB by default): probed with a sparse file, so no disk is used."""
    code = """
try:
    with open(os.environ["HOME"] + "/big", "wb") as handle:
        handle.seek(4 << 30)
        handle.write(b"x")
    print("BIG written", os.path.getsize(os.environ["HOME"] + "/big"))
except OSError as exc:
    print("BIG blocked", type(exc).__name__, exc.errno)
"""
    report = await run_environment(agent, attack(code))
    assert "BIG blocked OSError 27" in report["output"], report["output"]  # EFBIG


# Evaluator (cwd: its eval dir): the base model's evaluation claims to be a trained checkpoint's.
RELABEL_SPEC = """

import json as _json
import os as _os
if _os.path.basename(_os.path.dirname(_os.getcwd())) == "evals":
    _spec = _json.load(open("spec.json"))
    _spec["target"] = "local-1-forged/final"
    _spec["adapter"] = "/forged"
    _os.unlink("spec.json")
    open("spec.json", "w").write(_json.dumps(_spec))
"""


async def test_the_evaluator_cannot_relabel_what_its_evaluation_measured(
    training_settings: ServerSettings, workspace: Path
) -> None:
    """spec.json (target, adapter, environment digest, rows) is the server's record, not the job's to edit."""
    from tests.local.conftest import wait_for_evaluation

    async with Client(build_server(training_settings)) as client:
        source = await _project(client, workspace, train=8, test=3) + RELABEL_SPEC
        await call(client, "write_project_file", path="q/environment.py", content=source)
        await call(client, "push_environment", name="starter", directory="q")
        started = await call(
            client, "evaluate", config="q/configs/sft.toml", target="base", split="test", max_tokens=4, temperature=0.0
        )
        found = await wait_for_evaluation(client, started["eval_id"])
    assert found["spec"]["target"] == "base" and found["spec"]["adapter"] is None, found["spec"]


async def _project(client: Client, workspace: Path, train: int, test: int = 0) -> str:
    """Scaffold project `q` with `train` rows (and the first `test` of them held out); return its environment.py."""
    await call(client, "setup_project", directory="q", project=PROJECT)
    rows = [{"input": f"What is {i} + 1?", "output": str(i + 1)} for i in range(train)]
    await call(client, "append_dataset_rows", path="q/dataset/train.jsonl", rows=rows)
    if test:
        await call(client, "append_dataset_rows", path="q/dataset/test.jsonl", rows=rows[:test])
    return (workspace / "q" / "environment.py").read_text(encoding="utf-8")
