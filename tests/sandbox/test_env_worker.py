"""The environment worker: a real sandboxed worker on real environment.py files, driven by the trusted client.
Hostile workers (replies forged from import time, oversized, malformed) cost the trusted side an item, never a crash."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from flash_mcp.runtime.worker import WorkerClient, WorkerError, receive, send
from flash_mcp.sandbox import launch_worker, remove_scratch
from tests.envs.projects import EXACT, environment, make_project, rows
from tests.local.test_multi_turn import DIGIT_GUESS_ENV

IDS = [f"train:example_{i:06d}" for i in range(4)]


@pytest.fixture
def home(isolated_home: Path) -> Path:
    isolated_home.mkdir(parents=True, exist_ok=True)
    return isolated_home


def start(home: Path, project: Path, **load) -> tuple[WorkerClient, object]:
    worker = launch_worker(home, project, limits="env_test")
    client = WorkerClient(worker.to_worker, worker.from_worker, timeout_s=60)
    return client, worker


def test_a_worker_renders_and_scores_batches_and_keeps_no_file_of_the_caller(home: Path, tmp_path: Path) -> None:
    reader = environment(score="""
    def score_response(self, example, response_text):
        seen = sorted(os.listdir(os.getcwd())) + [str(os.path.exists(p)) for p in SPIED]
        return RewardResult(score=float(response_text.strip() == str(example.output)), reason=",".join(seen))
""", top=f"\nSPIED = [{str(tmp_path / 'state')!r}, {str(tmp_path)!r}]\n")  # fmt: skip
    project = make_project(tmp_path, "p", reader, rows(4))
    client, worker = start(home, project)
    loaded = client.load(entrypoint=str(project / "environment.py"), params={}, split="train")
    assert loaded["rows"] == IDS and loaded["multi_turn"] is False
    prompts = client.render([*IDS, "train:nope"])
    assert prompts[0] == [{"role": "user", "content": "What is 0 + 1?"}] and prompts[4] == "unknown row 'train:nope'"
    scored = client.score([(IDS[1], "2"), (IDS[0], "7"), ("train:nope", "1")])
    assert [(s.score, s.error) for s in scored[:2]] == [(1.0, None), (0.0, None)]
    assert scored[2].score is None and "unknown row" in scored[2].error
    assert worker.scratch.parent != tmp_path and not str(worker.scratch).startswith(str(home))
    client.close()
    assert worker.process.wait(timeout=30) == 0, "EOF ends the worker"
    remove_scratch(worker.scratch)
    assert not worker.scratch.exists()


def test_an_episode_is_played_by_the_caller_turn_by_turn(home: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path, "m", DIGIT_GUESS_ENV, [{"input": "Guess my number 7.", "output": "7"}] * 2)
    client, worker = start(home, project)
    loaded = client.load(entrypoint=str(project / "environment.py"), params={}, split="train")
    assert loaded["multi_turn"] and loaded["ceiling"] == 8
    first, second = client.episode_start(loaded["rows"])
    assert first.messages[-1]["content"].startswith("Guess my number 7.") and first.episode != second.episode
    asked = client.episode_turn([(first.episode, "three"), (second.episode, "7")])
    assert asked[0].messages[-1] == {"role": "user", "content": "higher or lower"}
    assert asked[1].scored["score"] == 1.0 and asked[1].scored["per_turn_rewards"] == [1.0]
    done = client.episode_turn([(first.episode, "7")])[0]
    assert done.scored["score"] == 0.5 and done.scored["turns"] == 2
    assert "no live episode" in client.episode_turn([(first.episode, "7")])[0].error
    client.close()
    worker.process.wait(timeout=30)


def test_sft_completions_are_the_environments_targets_or_the_rows_output(home: Path, tmp_path: Path) -> None:
    completing = environment(score=EXACT + """
    def sft_completion(self, example):
        if example.input.startswith("What is 1 "):
            raise ValueError("no target")
        if example.input.startswith("What is 2 "):
            return [{"role": "assistant", "content": "worked: " + str(example.output)}]
        return None
""")  # fmt: skip
    project = make_project(tmp_path, "s", completing, rows(3))
    client, worker = start(home, project)
    client.load(entrypoint=str(project / "environment.py"), params={}, split="train")
    first, second, third, unknown = client.completions([*IDS[:3], "train:nope"])
    assert first == [{"role": "assistant", "content": "1"}], "no sft_completion: the row's output"
    assert "sft_completion failed: ValueError: no target" in second
    assert third == [{"role": "assistant", "content": "worked: 3"}]
    assert unknown == "unknown row 'train:nope'"
    client.close()
    worker.process.wait(timeout=30)


FORGER = """
import os, struct, sys
out = int(sys.argv[2])
MODE = open(os.path.join(os.path.dirname(__file__), 'mode')).read().strip()
if MODE == 'huge':
    os.write(out, struct.pack('>I', 1 << 30))
elif MODE == 'garbage':
    os.write(out, struct.pack('>I', 9) + b'{not json')
elif MODE == 'early':  # a reply forged before the request: out of step, so refused
    data = b'{"ok": true, "seq": 1, "rows": [], "multi_turn": false}'
    os.write(out, struct.pack('>I', len(data)) + data)
"""


@pytest.mark.parametrize("mode", ["huge", "garbage", "early"])
def test_forged_replies_fail_the_call_and_then_every_item(home: Path, tmp_path: Path, mode: str) -> None:
    project = make_project(tmp_path, "p", environment(top=FORGER), rows(3))
    (project / "mode").write_text(mode)
    client, worker = start(home, project)
    if mode == "early":
        client.load(entrypoint=str(project / "environment.py"), params={}, split="train")
        scored = client.score([(IDS[0], "1"), (IDS[1], "2")])
        assert all(s.score is None and "out of step" in s.error for s in scored), scored
    else:
        with pytest.raises(WorkerError):
            client.load(entrypoint=str(project / "environment.py"), params={}, split="train")
        scored = client.score([(IDS[0], "1")])
        assert scored[0].score is None and scored[0].error.startswith("environment worker:")
    client.close()
    worker.process.wait(timeout=30)


def test_malformed_items_are_errors_for_those_items_only() -> None:
    """A fake worker on plain pipes: one well-formed reply whose items are partly garbage."""
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    client = WorkerClient(requests_w, replies_r, timeout_s=10)

    def answer(**reply) -> None:
        request = receive(requests_r, 1 << 20)
        send(replies_w, {"ok": True, "seq": request["seq"], **reply})

    forged = [{"score": float("inf")}, 5, {"score": 1.0, "success": "yes"}, {"score": True}, {"score": 0.5}]
    thread = threading.Thread(target=answer, kwargs={"items": [{"score": 0} for _ in forged]})
    thread.start()
    assert [s.score for s in client.score([(IDS[0], "x")] * 5)] == [0.0] * 5
    thread.join()
    send(replies_w, {"ok": True, "seq": 2, "items": [f if f is not forged[0] else {"score": "inf"} for f in forged]})
    scored = client.score([(IDS[0], "x")] * 5)
    assert [s.error for s in scored] == [
        "environment worker sent a malformed score", "environment worker sent a malformed item",
        "environment worker sent a malformed success flag", "environment worker sent a malformed score", None,
    ] and scored[4].score == 0.5  # fmt: skip
    send(replies_w, {"ok": True, "seq": 3, "items": [{"score": 1.0}]})  # the wrong number of items
    assert "wrong number of items" in client.score([(IDS[0], "x")] * 2)[0].error
    for fd in (requests_r, replies_w):
        os.close(fd)
    client.close()


def test_framing_caps_both_ways() -> None:
    read, write = os.pipe()
    with pytest.raises(WorkerError, match="exceeds"):
        send(write, {"x": "y" * 100}, cap=50)
    send(write, {"x": 1})
    assert receive(read, 100) == {"x": 1}
    send(write, {"x": "y" * 100})
    with pytest.raises(WorkerError, match="over the 50-byte cap"):
        receive(read, 50)
    os.close(write)
    os.close(read)
    read, write = os.pipe()
    os.write(write, b"\x00\x00")
    os.close(write)
    with pytest.raises(WorkerError, match="exited"):
        receive(read, 100)
    os.close(read)


def test_a_workers_limits_are_the_callers_explicit_choice(home: Path, tmp_path: Path) -> None:
    (home / "settings.toml").write_text(
        "[sandbox]\ncpu_seconds = 1234\nfile_mb = 3\ntraining_cpu_seconds = 86407\ntraining_file_mb = 5\n",
        encoding="utf-8",
    )
    reporter = environment(score="""
    def score_response(self, example, response_text):
        import resource
        cpu, size = (resource.getrlimit(getattr(resource, n))[0] for n in ("RLIMIT_CPU", "RLIMIT_FSIZE"))
        return RewardResult(score=0.0, reason=f"cpu={cpu} fsize={size}")
""")  # fmt: skip
    project = make_project(tmp_path, "l", reporter, rows(1))
    seen = {}
    for limits in ("training", "env_test"):
        worker = launch_worker(home, project, limits=limits)
        client = WorkerClient(worker.to_worker, worker.from_worker, timeout_s=60)
        client.load(entrypoint=str(project / "environment.py"), params={}, split="train")
        seen[limits] = client.score([(IDS[0], "1")])[0].reason
        client.close()
        worker.process.wait(timeout=30)
        remove_scratch(worker.scratch)
    assert seen == {"training": f"cpu=86407 fsize={5 << 20}", "env_test": f"cpu=1234 fsize={3 << 20}"}
    with pytest.raises(ValueError, match="must be 'training' or 'env_test'"):
        launch_worker(home, project, limits="train")  # type: ignore[arg-type]
