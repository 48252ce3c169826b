"""Notifications delivered to a real local HTTP receiver: once each, across restarts, retried, then given up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flash_mcp.core.errors import UserError
from flash_mcp.loop.notify import MAX_ATTEMPTS, Notifier
from tests.conftest import serving


class Receiver(ThreadingHTTPServer):
    """Answers 500 to the first `failures[path]` requests on a path, then 200; keeps what it was sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failures: dict[str, int] = {}
        self.received: list[tuple[str, dict[str, str], bytes, int]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def on(self, path: str) -> list[tuple[dict[str, str], bytes, int]]:
        return [(headers, body, status) for seen, headers, body, status in self.received if seen == path]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        left = self.server.failures.get(self.path, 0)
        status = 500 if left else 200
        self.server.failures[self.path] = max(left - 1, 0)
        self.server.received.append((self.path, dict(self.headers), body, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    with serving(server):
        yield server


def configure(home: Path, receiver: Receiver) -> None:
    home.mkdir(parents=True, exist_ok=True)
    hooks = ", ".join(
        f'{{ url = "{receiver.url("/" + kind)}", format = "{kind}" }}' for kind in ("ntfy", "slack", "json")
    )
    (home / "settings.toml").write_text(f"[notify]\nwebhooks = [{hooks}]\n", encoding="utf-8")


def test_each_event_reaches_each_channel_once_a_failing_receiver_is_retried(tmp_path: Path, receiver: Receiver) -> None:
    configure(tmp_path, receiver)
    now = [1000.0]
    notifier = Notifier(tmp_path, clock=lambda: now[0])
    receiver.failures["/ntfy"] = 1
    notifier.notify("proposal:p-1", "proposal-waiting", "A run waits for you", "grpo on Qwen3.5-0.8B, $3.20")
    assert notifier.deliver_due() == 2  # slack and json; ntfy answered 500
    assert notifier.deliver_due() == 0  # ntfy is backing off, not hammered
    now[0] += 3
    assert notifier.deliver_due() == 1
    (_, _, first), (headers, body, second) = receiver.on("/ntfy")
    assert (first, second) == (500, 200) and headers["Title"] == "A run waits for you"
    assert body == b"grpo on Qwen3.5-0.8B, $3.20"
    assert json.loads(receiver.on("/slack")[0][1]) == {"text": "*A run waits for you*\ngrpo on Qwen3.5-0.8B, $3.20"}
    assert json.loads(receiver.on("/json")[0][1]) == {
        "event": "proposal-waiting", "title": "A run waits for you", "message": "grpo on Qwen3.5-0.8B, $3.20"
    }  # fmt: skip

    notifier.notify("proposal:p-1", "proposal-waiting", "A run waits for you", "again")  # the same event
    restarted = Notifier(tmp_path, clock=lambda: now[0] + 1000)
    restarted.notify("proposal:p-1", "proposal-waiting", "A run waits for you", "after a restart")
    assert restarted.deliver_due() == 0 and len(receiver.received) == 4


def test_a_receiver_that_never_recovers_is_given_up_after_bounded_attempts(tmp_path: Path, receiver: Receiver) -> None:
    configure(tmp_path, receiver)
    now = [0.0]
    notifier = Notifier(tmp_path, clock=lambda: now[0])
    receiver.failures["/json"] = 10**6
    notifier.notify("run:r-1:failed", "run-failed", "Run r-1 failed", "the trainer exited")
    for _ in range(MAX_ATTEMPTS + 3):
        notifier.deliver_due()
        now[0] += 1000
    assert len(receiver.on("/json")) == MAX_ATTEMPTS
    (row,) = [row for row in notifier.outbox() if "/json" in row["channel"]]
    assert row["delivered_at"] is None and row["failed"].startswith(f"gave up after {MAX_ATTEMPTS} attempts")


def test_a_malformed_channel_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text('[notify]\nwebhooks = [{ url = "ftp://x", format = "ntfy" }]\n')
    with pytest.raises(UserError, match="needs an http"):
        Notifier(tmp_path).notify("k", "run-done", "t", "m")


def test_each_run_that_ends_is_told_once(tmp_path: Path, receiver: Receiver) -> None:
    from types import SimpleNamespace

    from flash_mcp.loop import notify

    configure(tmp_path, receiver)
    run = dict(algorithm="grpo", model="tiny", plane="local", error=None)
    views = [SimpleNamespace(run_id="r-1", state="done", **run), SimpleNamespace(run_id="r-2", state="running", **run)]
    notify.runs_ended(tmp_path, {"r-1": "running", "r-2": "running"}, views)
    notify.runs_ended(tmp_path, {"r-1": "running"}, views)  # seen again after a restart: not told twice
    notify._notifier(tmp_path).deliver_due()
    told = [json.loads(body) for _, body, status in receiver.on("/json") if status == 200]
    assert [t["event"] for t in told] == ["run-done"] and "grpo on tiny" in told[0]["message"]
