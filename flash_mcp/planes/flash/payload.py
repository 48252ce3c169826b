"""The `POST /v1/runs` body, built by Flash's own parser so the wire matches `flash train` exactly.

flash/client/specs.py `spec_payload`: the public spec with a canonical project, `gpu.count` dropped
unless authored, only authored `[train]` keys; plus `client_train_schema` and runtime secrets.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.domain.project.secrets import read_secrets

DEFAULT_SECRETS = frozenset({"WANDB_API_KEY"})


def run_body(raw: dict[str, Any], *, dry_run: bool, secret_folders: list[Path]) -> dict[str, Any]:
    """The create-run body for a merged config (overrides already applied)."""
    import flash
    from flash.client.specs import spec_payload
    from flash.schema import spec_from_dict, train_schema_metadata
    from flash.schema.fields import ConfigError

    train = raw.get("train")
    authored = frozenset(train) if isinstance(train, dict) else frozenset()
    try:
        spec = spec_from_dict(copy.deepcopy(raw), project_required=True)
    except (ConfigError, ValueError) as exc:
        raise UserError(f"Flash's parser rejects this config: {exc}") from None
    body: dict[str, Any] = {
        "spec": spec_payload(spec, authored),
        "client_train_schema": {
            "version": flash.__version__,
            "fields": train_schema_metadata(),
            "authored_keys": sorted(authored),
        },
    }
    if dry_run:
        body["dry_run"] = True
    secrets = runtime_secrets(list(spec.environment.secrets), secret_folders)
    if secrets:
        body["runtime_secrets"] = secrets
    return body


def runtime_secrets(declared: list[str], folders: list[Path]) -> dict[str, str]:
    """WANDB_API_KEY plus the declared secrets; a declared one that is missing stops the launch."""
    found = read_secrets(DEFAULT_SECRETS | set(declared), folders)
    missing = sorted(set(declared) - set(found))
    if missing:
        raise UserError(
            f"missing declared environment secret(s): {', '.join(missing)}. Ask the human to set them in the "
            "server's environment or the project's .env; never put secret values in TOML"
        )
    return found
