"""Static resources: the playbook, the config schema and the catalog."""

from __future__ import annotations

import json
from dataclasses import asdict

from mcp.server import MCPServer

from flash_mcp.core.assets import training_guide
from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.schema import config_json_schema


def register(server: MCPServer) -> None:
    for uri, name, title, mime_type, render, description in _RESOURCES:
        server.resource(uri, name=name, title=title, description=description, mime_type=mime_type)(render)


def _json(value: object) -> str:
    return json.dumps(value, indent=1)


def _models() -> str:
    return _json([asdict(model) for model in catalog.MODELS.values()])


def _gpus() -> str:
    rows = [
        {"name": g.name, "vram_gb": g.vram_gb, "usd_per_hour": round(g.hourly_usd, 4), "max_count": g.max_count}
        for g in catalog.GPUS.values()
    ]
    return _json(rows)


_RESOURCES = (
    ("flash://guide", "guide", "Training playbook", "text/markdown", training_guide,
     "The flash-mcp loop: rewards, testing, reading runs, when to ask the human."),
    ("flash://schema/config", "config-schema", "Training config schema", "application/schema+json",
     lambda: _json(config_json_schema()), "JSON Schema of a Flash 1.3.28 training config; every key described."),
    ("flash://models", "models", "Model catalog", "application/json", _models,
     "Trainable models: algorithms, thinking support, serving caps."),
    ("flash://gpus", "gpus", "GPU classes", "application/json", _gpus,
     "GPU classes Flash rents, with VRAM and list price per card-hour."),
)  # fmt: skip
