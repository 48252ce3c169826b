"""Settings the human owns: FLASH_MCP_HOME/settings.toml. The server reads them; no tool writes them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from flash_mcp.domain.errors import UserError


@dataclass(frozen=True)
class LocalSettings:
    stand_in_model: Path | None = None


@dataclass(frozen=True)
class HumanSettings:
    local: LocalSettings = LocalSettings()


def load_human_settings(home: Path) -> HumanSettings:
    """Read settings.toml (absent means defaults); reread on every use, so edits apply at once."""
    path = home / "settings.toml"
    if not path.is_file():
        return HumanSettings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML ({exc}); ask the human to fix it") from None
    local = raw.get("local") if isinstance(raw.get("local"), dict) else {}
    stand_in = local.get("stand_in_model")
    return HumanSettings(local=LocalSettings(stand_in_model=Path(stand_in).expanduser() if stand_in else None))
