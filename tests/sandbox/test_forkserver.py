"""The fork server (flash_mcp/sandbox/forkserver.py): a job forked from the preloaded interpreter runs in the same
sandbox, with the same environment and descriptors, as a job started cold; it lives and ends like one; and the
fork server steps aside (the job starts cold) wherever it cannot serve it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.sandbox import Spawned, job_launch, launch_job, running, signal_job, warm_up_jobs
from flash_mcp.sandbox.forkserver import FORK_SERVER
from tests.sandbox.conftest import attack, run_environment
from tests.sandbox.test_attacks import GRAB
from tests.sandbox.test_lifetime import _until

PROBE = "tests.sandbox.probe_job"
TESTS = Path(__file__).resolve().parents[1]  # read-only to the probe, so `tests.sandbox.probe_job` imports
SECRET = {"PROBE_SECRET": "sentinel-probe-secret"}


@pytest.fixture
def ready() -> int:
    """A fork server that has preloaded; its pid."""
    assert warm_up_jobs(wait_s=180), "the fork server preloads"
    return FORK_SERVER.pid()


def start(
    home: Path, name: str, plan: dict, fds: tuple[int, ...] = (), secrets: dict[str, str] = SECRET
) -> tuple[Spawned, Path]:
    job_dir = home / "runs" / name
    job_dir.mkdir(parents=True)
    (job_dir / "probe.json").write_text(json.dumps(plan), encoding="utf-8")
    job = launch_job(home, PROBE, job_dir, [TESTS], dict(secrets), pass_fds=fds, args=[str(fd) for fd in fds])
    return job, job_dir


def facts(job: Spawned, job_dir: Path) -> dict:
    assert _until(lambda: (job_dir / "facts.json").exists() or not running(job), 60), "the probe ran"
    return json.loads((job_dir / "facts.json").read_text(encoding="utf-8"))


def ended(job: Spawned) -> bool:
    return _until(lambda: not running(job), 60)


def parent(job: Spawned) -> int:
    return int(Path(f"/proc/{job.pid}/stat").read_text().rpartition(")")[2].split()[1])


def cold(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.toml").write_text("[sandbox]\npreload_jobs = false\n", encoding="utf-8")


def test_a_warm_job_is_sandboxed_exactly_like_a_cold_one(isolated_home: Path, tmp_path: Path, ready: int) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    plan = {"forbidden": [str(isolated_home), str(outside), "/root"], "hold": True}
    seen = {}
    for kind in ("warm", "cold"):
        if kind == "cold":
            cold(isolated_home)
        said_r, said_w = os.pipe()
        hold_r, hold_w = os.pipe()
        job, job_dir = start(isolated_home, kind, plan, (said_w, hold_r))
        os.close(said_w)
        os.close(hold_r)
        seen[kind] = facts(job, job_dir)
        seen[kind]["parent"] = parent(job)
        assert os.read(said_r, 100) == b"through the descriptor it was passed\n"
        os.close(hold_w)
        assert ended(job) and (job_dir / "released").exists()
        assert (job_dir / ".cache" / "huggingface" / "probe").exists() and (job_dir / "probe-tmp").exists(), (
            "paths cached at import are the job's own directory"
        )
        assert seen[kind]["env"]["HOME"] == seen[kind]["env"]["TMPDIR"] == str(job_dir)
        os.close(said_r)
    warm, cold_ = seen["warm"], seen["cold"]
    assert (warm["parent"], warm["torch_loaded"]) == (ready, True)
    assert (cold_["parent"], cold_["torch_loaded"]) == (os.getpid(), False)
    for key in ("hub_cache", "tempdir"):
        assert warm[key] == cold_[key] == "allowed"
    assert warm["reads"] == cold_["reads"] and set(warm["reads"].values()) == {"refused: PermissionError"}
    assert warm["writes"] == cold_["writes"] and set(warm["writes"].values()) == {"refused: PermissionError"}
    assert not list(outside.iterdir())
    assert warm["descriptors"] == cold_["descriptors"]
    unlike = {"HOME", "TMPDIR"}
    assert {k: v for k, v in warm["env"].items() if k not in unlike} == {
        k: v for k, v in cold_["env"].items() if k not in unlike
    }
    assert warm["env"]["PROBE_SECRET"] == SECRET["PROBE_SECRET"]
    assert [arg for arg in warm["argv"][1:]] == [arg for arg in cold_["argv"][1:]]


def test_each_warm_job_draws_its_own_random_numbers(isolated_home: Path, ready: int) -> None:
    draws = []
    for name in ("one", "two"):
        job, job_dir = start(isolated_home, name, {})
        seen = facts(job, job_dir)  # the job may be gone already: its facts, not its /proc entry, say it was warm
        assert seen["torch_loaded"], "forked from the fork server"
        draws.append(seen["draw"])
    assert draws[0] != draws[1]


def test_a_warm_jobs_secrets_never_pass_through_the_fork_server(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, ready: int
) -> None:
    """Secrets reach a warm job by a pipe only the job reads: the fork server, whose memory every later job copies,
    is never handed one."""
    handed: list[str] = []
    spawn = FORK_SERVER.spawn

    def recording(config: dict, fds: list[int]) -> tuple[int, int]:
        handed.append(json.dumps(config))
        return spawn(config, fds)

    monkeypatch.setattr(FORK_SERVER, "spawn", recording)
    job, job_dir = start(isolated_home, "secret", {})
    seen = facts(job, job_dir)
    assert seen["torch_loaded"] and seen["env"]["PROBE_SECRET"] == SECRET["PROBE_SECRET"]
    assert len(handed) == 1 and SECRET["PROBE_SECRET"] not in handed[0] and "PROBE_SECRET" not in handed[0]


def test_a_warm_job_outlives_its_fork_server_and_is_cancelled_like_a_cold_one(isolated_home: Path, ready: int) -> None:
    jobs = []
    for name in ("outlives", "cancelled"):
        hold_r, hold_w = os.pipe()
        null = os.open(os.devnull, os.O_WRONLY)
        job, job_dir = start(isolated_home, name, {"hold": True}, (null, hold_r))
        os.close(hold_r)
        os.close(null)
        facts(job, job_dir)
        assert parent(job) == ready
        jobs.append((job, job_dir, hold_w))
    FORK_SERVER.stop()
    (outlives, outlives_dir, release), (cancelled, cancelled_dir, held) = jobs
    assert running(outlives) and running(cancelled), "the jobs run on without the fork server"
    os.close(release)
    assert ended(outlives) and (outlives_dir / "released").exists()
    assert signal_job(cancelled, signal.SIGTERM)
    assert ended(cancelled) and not (cancelled_dir / "released").exists()
    os.close(held)


def test_a_job_starts_cold_where_the_fork_server_cannot_serve_it(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ready: int
) -> None:
    with monkeypatch.context() as gpu:
        gpu.setattr(job_launch, "gpu_device_nodes", lambda: ["/dev/nvidia0"])  # CUDA is not fork-safe
        job, job_dir = start(isolated_home, "gpu", {})
        assert not facts(job, job_dir)["torch_loaded"]
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    home = Path(FORK_SERVER.home)
    home.rename(tmp_path / "moved")
    home.symlink_to(decoy)  # the agent's shell swaps the fork server's home for a link
    job, job_dir = start(isolated_home, "swapped", {})
    seen = facts(job, job_dir)
    assert not seen["torch_loaded"] and seen["hub_cache"] == "allowed" and not list(decoy.iterdir())
    assert (job_dir / ".cache" / "huggingface" / "probe").exists()
    FORK_SERVER.stop()
    job, job_dir = start(isolated_home, "not-ready", {})
    assert not facts(job, job_dir)["torch_loaded"], "a fork server still preloading: the job starts cold at once"


def test_a_job_environment_the_fork_server_lacks_starts_a_new_one(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, ready: int
) -> None:
    with monkeypatch.context() as threads:
        threads.setenv("OMP_NUM_THREADS", "3")  # read by the libraries at import: a job must not inherit a stale one
        job, job_dir = start(isolated_home, "threads", {})
        seen = facts(job, job_dir)
        assert seen["env"]["OMP_NUM_THREADS"] == "3" and not seen["torch_loaded"]
        assert FORK_SERVER.pid() not in (None, ready), "a fork server for the new environment is starting"
    assert not warm_up_jobs(), "and back again for this suite's environment"


def hunt(home: str) -> str:
    """environment.py code that looks for a fork server (FORK_SERVER its pid, HOME its home; `home` the lines that
    try its home) and prints what it found after ATTACK RAN."""
    return (
        GRAB
        + """
import signal
grab("its process", lambda: open(f"/proc/{FORK_SERVER}/cmdline", "rb").read())
grab("processes named forkserver", lambda: [p for p in glob.glob("/proc/[0-9]*/cmdline")
                                            if b"forkserver" in open(p, "rb").read()])
def sockets():
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            held += [fd] if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:") else []
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return held
grab("sockets held", sockets)
grab("a signal to it", lambda: os.kill(FORK_SERVER, signal.SIGKILL))
"""
        + home
        + """
print("ATTACK RAN", *out, sep="\\n")
"""
    )


@pytest.mark.anyio
async def test_agent_code_cannot_reach_the_fork_server(agent: Client, ready: int) -> None:
    """environment.py, run by test_environment through MCP, hunts for the fork server: its process, its home, a
    socket to it, a signal to it. It finds none: its own PID namespace, Landlock, and no descriptor of it."""
    code = hunt("""
grab("its home", lambda: os.listdir(HOME))
grab("a file in its home", lambda: open(HOME + "/planted", "w").write("x"))
""")
    home = FORK_SERVER.home
    report = await run_environment(agent, attack(code, FORK_SERVER=ready, HOME=home))
    output = report["output"]
    assert "ATTACK RAN" in output, report["summary"]
    for line in ("its process: blocked FileNotFoundError", "processes named forkserver: []",
                 "its home: blocked PermissionError", "a file in its home: blocked PermissionError",
                 "sockets held: []", "a signal to it: blocked ProcessLookupError"):  # fmt: skip
        assert line in output, output
    assert FORK_SERVER.pid() == ready and not os.path.exists(os.path.join(home, "planted"))
