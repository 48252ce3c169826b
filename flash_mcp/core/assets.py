"""Files shipped beside the code: the TRAINING.md playbook and the prompt library.

A wheel carries them under `flash_mcp/assets/`; an editable install reads them from the
repository root, where they are maintained.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]
_CANDIDATES = (_PACKAGE / "assets", _PACKAGE.parent)


def asset_path(name: str) -> Path:
    """The first existing `name` among the wheel and the source checkout."""
    for base in _CANDIDATES:
        candidate = base / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"flash-mcp asset {name!r} is missing from this installation")


def training_guide() -> str:
    return asset_path("TRAINING.md").read_text(encoding="utf-8")
