"""Build the MCP server: one `MCPServer` with every tool, resource and prompt registered."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from mcp.server import MCPServer

from flash_mcp import __version__
from flash_mcp.core.settings import ServerSettings
from flash_mcp.surface.apps import apps
from flash_mcp.surface.server import capabilities, run_watch
from flash_mcp.surface.server.planes import Planes
from flash_mcp.surface.server.protocol import FlashServer
from flash_mcp.surface.server.tools_cache import PACKAGED, ToolsCache

if TYPE_CHECKING:
    from flash_mcp.loop.spend import Spend
    from flash_mcp.planes.base import Plane


INSTRUCTIONS = """\
flash-mcp drives Flash LoRA post-training (SFT, GRPO, OPD) from a project folder in the workspace.
Loop: setup_project -> edit environment.py and dataset/train.jsonl -> test_environment on every row ->
push_environment -> validate_config / dry_run -> launch_training (a human approves paid runs) -> read the
run (get_run, get_run_metrics, get_run_samples, or the flash://runs/{run_id} resources).
Did it improve? evaluate base and RUN/final on held-out rows with the same sampling, then
compare_evaluations: a paired verdict with an interval, never training reward alone.
Read flash://guide before the first run. Paths are relative to the workspace; .env files are off-limits.
A tool's `plane` argument (local or flash) picks the plane for that call; omitted, the server's --plane (whoami).
"""


def build_server(
    settings: ServerSettings,
    plane_factory: Callable[[], Plane] | None = None,
    *,
    tools_cache: bool = True,
    shipped_list: bool = True,
    plane_factories: Mapping[str, Callable[[], Plane]] | None = None,
    watch_seconds: float = run_watch.WATCH_SECONDS,
) -> MCPServer:
    """The server for `settings`; `plane_factory` replaces the default plane and `plane_factories` any plane by
    name (tests embed a control plane). A tool's `plane` argument picks one; each is built on first use.

    Only what decides the server's capabilities is registered here; the tools, resources and prompts are
    registered on the first request that needs them, and `tools/list` is answered from the saved list when it
    was built from the same sources, or from the list the package ships when that matches (`tools_cache=False`
    always builds it; `shipped_list=False` ignores the shipped one). Subscribed clients are told of run changes
    every `watch_seconds` at most."""
    factories = dict(plane_factories or {})
    if plane_factory is not None:
        factories[settings.plane] = plane_factory
    plane = Planes(settings, factories)
    spend = functools.cache(lambda: _spend(settings, plane()))
    watcher: list[run_watch.RunWatcher] = []

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict]:
        async with anyio.create_task_group() as group:
            group.start_soon(watcher[0].run)
            yield {}
            group.cancel_scope.cancel()

    server = FlashServer(
        "flash-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        surface=functools.partial(_register_surface, settings, plane, spend),
        tools_cache=ToolsCache(settings.home, settings.plane, packaged=PACKAGED if shipped_list else None)
        if tools_cache
        else None,
        extensions=[apps()],
    )
    watcher.append(run_watch.register(server, plane, spend, watch_seconds))
    capabilities.same_in_both_eras(server)
    return server


def _register_surface(settings: ServerSettings, plane: Planes, spend: Callable[[], Spend], server: FlashServer) -> None:
    """Every tool, resource and prompt, with the use cases behind them."""
    from flash_mcp.surface import (
        compare_tools,
        config_tools,
        env_tools,
        eval_tools,
        launch_tools,
        project_tools,
        prompts,
        resources,
        run_resources,
        run_tools,
        spend_resources,
    )

    project_tools.register(server, settings, plane)
    config_tools.register(server, settings, plane)
    env_tools.register(server, settings)
    launch_tools.register(server, settings, plane)
    run_tools.register(server, settings, plane)
    eval_tools.register(server, settings, plane)
    compare_tools.register(server, settings, plane)
    resources.register(server)
    run_resources.register(server, plane, spend, settings.home)
    spend_resources.register(server, spend)
    prompts.register(server)


def _spend(settings: ServerSettings, plane: Plane) -> Spend:
    from flash_mcp.loop.spend import Spend

    return Spend(settings.home, plane)
