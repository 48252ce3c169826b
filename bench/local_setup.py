"""Shared by the local-plane benchmarks: a tiny model, and a state directory that trains it in place of any model."""

from __future__ import annotations

from pathlib import Path

from flash_mcp.planes.local.models import build_tiny_model


def tiny_local_setup(root: Path) -> tuple[Path, Path, Path]:
    """Build the tiny model under `root` and return (model, home, workspace), the home set to stand it in."""
    model = build_tiny_model(root / "tiny")
    home, workspace = root / "home", root / "ws"
    home.mkdir()
    workspace.mkdir()
    (home / "settings.toml").write_text(f'[local]\nstand_in_model = "{model}"\n', encoding="utf-8")
    return model, home, workspace
