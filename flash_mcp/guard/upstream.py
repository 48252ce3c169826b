"""The guard's side of Flash: the key it keeps (flash.json in its state directory) and the forwarding client."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

KEY_FILE = "flash.json"
HOSTED_API_URL = "https://flash.freesolo.co"
_DROPPED = {"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}


@dataclass(frozen=True)
class Upstream:
    api_url: str
    api_key: str = field(repr=False)


def load_upstream(home: Path) -> Upstream | None:
    try:
        saved = json.loads((home / KEY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("api_key"), str) or not saved["api_key"]:
        return None
    return Upstream(str(saved.get("api_url") or HOSTED_API_URL).rstrip("/"), saved["api_key"])


def save_upstream(home: Path, upstream: Upstream) -> None:
    """Write the key 0600, atomically, in the guard's state directory."""
    path, temporary = home / KEY_FILE, home / (KEY_FILE + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"api_url": upstream.api_url, "api_key": upstream.api_key}, out)
    os.replace(temporary, path)


class Forwarder:
    """Sends one request to Flash with the key added; returns (status, headers, body)."""

    def __init__(self, upstream: Upstream, transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(base_url=upstream.api_url, transport=transport, follow_redirects=False,
                                  timeout=1800.0, headers={"Authorization": f"Bearer {upstream.api_key}"})  # fmt: skip

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        response = self._http.request(method, path, content=body, headers=headers)
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED}
        return response.status_code, kept, response.content

    def json(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        response = self._http.request(method, path, json=body)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"detail": response.text[:500]}

    def close(self) -> None:
        self._http.close()
