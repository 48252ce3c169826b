"""Word outside the chat: the human's channels (`[notify]` in settings.toml) told when something needs them.

Events: a proposal waits for the human, a run finished or failed, an overrun was flagged, reward hacking is
suspected. Channels: webhooks (`format = "ntfy"`, `"slack"` or `"json"`) and, where the desktop has one, a desktop
notification (`notify-send`). Every event has a key; the outbox (notify.db in the state directory) delivers each
(key, channel) once, across restarts, with bounded retries and backoff. Payloads hold the event's title and
message only: no key, no config, nothing the human did not choose to send.

    [notify]
    desktop = true
    webhooks = [{ url = "https://ntfy.sh/my-topic", format = "ntfy" }]
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import settings_file
from flash_mcp.core.sqlite import Database

if TYPE_CHECKING:  # httpx (and the CLI helpers it pulls in) loads only when something is sent
    import httpx

log = logging.getLogger(__name__)
FORMATS = ("ntfy", "slack", "json")
MAX_ATTEMPTS, MAX_BACKOFF_S, TIMEOUT_S = 8, 300.0, 10.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT NOT NULL, channel TEXT NOT NULL, event TEXT NOT NULL, title TEXT NOT NULL, message TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, delivered_at REAL, failed TEXT,
    PRIMARY KEY (key, channel)
);
"""


@dataclass(frozen=True)
class Channel:
    name: str  # "desktop", or the webhook's URL
    format: str = "json"


def channels(home: Path) -> list[Channel]:
    """The human's channels, from `[notify]` in settings.toml (none when absent)."""
    path = settings_file(home)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("notify", {}) if path.is_file() else {}
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML ({exc}); ask the human to fix it") from None
    found = [Channel("desktop", "desktop")] if table.get("desktop") is True else []
    for hook in table.get("webhooks", []):
        url, kind = (hook.get("url"), hook.get("format", "json")) if isinstance(hook, dict) else (None, None)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or kind not in FORMATS:
            raise UserError(f"{path}: each [notify] webhook needs an http(s) url and a format in {FORMATS}")
        found.append(Channel(url, kind))
    return found


class Notifier(Database):
    """The outbox and its deliverer; `notify` returns at once, a background thread delivers."""

    def __init__(self, home: Path, clock: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None):  # fmt: skip
        import httpx

        super().__init__(home / "notify.db", _SCHEMA)
        self.home, self.clock = home, clock
        self._http = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, transport=transport)
        self._wake = threading.Event()
        self._delivering = threading.Lock()  # one delivery pass at a time: nothing is sent twice
        self._thread: threading.Thread | None = None

    def notify(self, key: str, event: str, title: str, message: str) -> None:
        """Queue the event for every channel; a key already queued (even before a restart) is ignored."""
        now = self.clock()
        with self.writing() as db:
            for channel in channels(self.home):
                db.execute("INSERT OR IGNORE INTO outbox (key, channel, event, title, message, next_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (key, _channel_id(channel), event, title[:200],
                                                         message[:2000], now))  # fmt: skip
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="flash-mcp-notify", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self.deliver_due()
            self._wake.wait(timeout=30.0)
            self._wake.clear()

    def deliver_due(self) -> int:
        """Try every due delivery once; how many were delivered."""
        with self._delivering:
            with self.connect() as db:
                due = db.execute("SELECT * FROM outbox WHERE delivered_at IS NULL AND failed IS NULL AND next_at <= ?",
                                 (self.clock(),)).fetchall()  # fmt: skip
            return sum(self._deliver(dict(row)) for row in due)

    def _deliver(self, row: dict[str, Any]) -> bool:
        import httpx

        channel = _channel_of(row["channel"])
        try:
            _send(self._http, channel, row)
        except (httpx.HTTPError, OSError, subprocess.SubprocessError) as exc:
            attempts = row["attempts"] + 1
            failed = f"gave up after {attempts} attempts: {type(exc).__name__}" if attempts >= MAX_ATTEMPTS else None
            backoff = min(2.0**attempts, MAX_BACKOFF_S)
            self.write("UPDATE outbox SET attempts = ?, next_at = ?, failed = ? WHERE key = ? AND channel = ?",
                       (attempts, self.clock() + backoff, failed, row["key"], row["channel"]))  # fmt: skip
            return False
        self.write("UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE key = ? AND channel = ?",
                   (self.clock(), row["key"], row["channel"]))  # fmt: skip
        return True

    def outbox(self) -> list[dict[str, Any]]:
        with self.connect() as db:
            return [dict(row) for row in db.execute("SELECT * FROM outbox ORDER BY next_at")]


def _channel_id(channel: Channel) -> str:
    return json.dumps([channel.name, channel.format])


def _channel_of(text: str) -> Channel:
    name, kind = json.loads(text)
    return Channel(name, kind)


def _send(http: httpx.Client, channel: Channel, row: dict[str, Any]) -> None:
    title, message = row["title"], row["message"]
    if channel.format == "desktop":
        if shutil.which("notify-send") is None:
            raise OSError("no desktop notifications here (notify-send is not installed)")
        subprocess.run(["notify-send", "--app-name=flash-mcp", title, message], check=True, timeout=TIMEOUT_S)
        return
    if channel.format == "ntfy":
        ascii_title = title.encode("ascii", "replace").decode()  # an HTTP header: ntfy reads the title there
        response = http.post(
            channel.name, content=message.encode(), headers={"Title": ascii_title, "Tags": row["event"]}
        )
    elif channel.format == "slack":
        response = http.post(channel.name, json={"text": f"*{title}*\n{message}"})
    else:
        response = http.post(channel.name, json={"event": row["event"], "title": title, "message": message})
    response.raise_for_status()


@functools.cache
def _notifier(home: Path) -> Notifier:
    notifier = Notifier(home)
    notifier.start()
    return notifier


def tell(home: Path, key: str, event: str, title: str, message: str) -> None:
    """Queue one event for the human's channels; a broken channel setting is logged, never fatal to the caller."""
    try:
        if channels(home):
            _notifier(home).notify(key, event, title, message)
    except UserError as exc:
        log.warning("not notified (%s): %s", event, exc)


def runs_ended(home: Path, before: dict[str, str], views: list[Any]) -> None:
    """Tell the human about each run that reached done, failed or cancelled since the last look (`before`: state
    by run id)."""
    for view in views:
        was = before.get(view.run_id)
        if was is not None and was != view.state and view.state in ("done", "failed", "cancelled"):
            detail = f": {view.error}" if getattr(view, "error", None) else ""
            tell(
                home,
                f"run:{view.run_id}:{view.state}",
                f"run-{view.state}",
                f"Run {view.run_id} {view.state}",
                f"{view.algorithm} on {view.model} ({view.plane}){detail}"[:1500],
            )
