"""Where the Flash plane is and which key it uses, with the `flash` CLI's precedence (flash/client/config.py).

URL: `FLASH_API_URL` > `config.json` `api_url` > the hosted default. Key: `FREESOLO_API_KEY` >
`config.json` `api_key`. `config.json` lives in `FLASH_DATA_DIR`, else `~/.flash`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from flash_mcp.core.advice import flash_command
from flash_mcp.core.workspace import flash_data_dir
from flash_mcp.planes.base import PlaneUnavailable

HOSTED_API_URL = "https://flash.freesolo.co"
KEY_ENV = "FREESOLO_API_KEY"
GUARD_SOURCE = "the spend guard"  # guarded mode: the guard adds the key; this process holds none


@dataclass(frozen=True)
class Credentials:
    api_url: str
    api_key: str = field(repr=False)
    key_source: str = ""
    shadowed: bool = False

    @property
    def from_env(self) -> bool:
        return self.key_source == KEY_ENV


def load_credentials() -> Credentials:
    """Resolve the plane URL and key now (never cached: a `flash login` applies at once)."""
    saved = _saved_config()
    api_url = (os.environ.get("FLASH_API_URL") or saved.get("api_url") or HOSTED_API_URL).rstrip("/")
    env_key = os.environ.get(KEY_ENV)
    if env_key:
        shadowed = bool(saved.get("api_key")) and saved.get("api_key") != env_key
        return Credentials(api_url, env_key, KEY_ENV, shadowed)
    if saved.get("api_key"):
        return Credentials(api_url, str(saved["api_key"]), str(flash_data_dir() / "config.json"))
    raise PlaneUnavailable(
        f"not logged in to Flash: ask the human to run `{flash_command('login')}` (or set {KEY_ENV}) where this "
        "server runs, then retry; launch_training can still propose a run for the human to approve once logged in"
    )


def _saved_config() -> dict:
    path = flash_data_dir() / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
