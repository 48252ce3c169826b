"""`evaluate` on the flash plane: not available yet, and it says so before touching the control plane."""

from __future__ import annotations

import pytest
from mcp import Client

from tests.conftest import PROJECT, call, call_error
from tests.flashplane.conftest import GITHUB_ENV, MODEL, ControlPlane

pytestmark = pytest.mark.anyio


async def test_evaluate_on_flash_refuses_plainly_and_deploys_nothing(
    flash_client: Client, control_plane: ControlPlane
) -> None:
    await call(flash_client, "setup_project", directory="p", project=PROJECT)
    await call(
        flash_client, "edit_config", config="p/configs/sft.toml", set={"environment.id": GITHUB_ENV, "model": MODEL}
    )
    refused = await call_error(flash_client, "evaluate", config="p/configs/sft.toml", target="r-1/final")
    assert "flash plane is not available" in refused and "local plane" in refused
    assert not [path for _, path in control_plane.transport.requests if path.endswith(("/deploy", "/chat"))]
    assert (await call(flash_client, "list_evaluations"))["total"] == 0
