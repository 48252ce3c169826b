"""An agent finishing the local loop reads less than half the tokens it read when results were pretty JSON."""

from __future__ import annotations

import pytest
from mcp import Client

from bench.agent_loop_tokens import scripted_loop
from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server

pytestmark = pytest.mark.anyio


async def test_the_scripted_local_loop_reads_less_than_half_the_tokens(settings: ServerSettings) -> None:
    async with Client(build_server(settings)) as client:
        reading = await scripted_loop(client, train=True)
    print(reading.report())
    assert reading.after * 2 < reading.before, reading.report()
