"""compare_evaluations (tool) and flash://evals/{a}/vs/{b} (text and chart): declarations over loop.compare."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import Field

from flash_mcp.core.settings import ServerSettings
from flash_mcp.loop import compare
from flash_mcp.surface.server.planes import Planes
from flash_mcp.surface.server.registry import READ, add_tool, translate_errors
from flash_mcp.surface.server.render import renders

EvalId = Annotated[str, Field(description="An eval id from evaluate or list_evaluations")]


@renders("compare_evaluations")
def comparison_text(content: dict[str, Any], said: set[str]) -> str:
    """The comparison as compare.render writes it for people: the verdict first, then the numbers and flips."""
    return compare.render(compare.Comparison.model_validate(content))


def register(server: MCPServer, settings: ServerSettings, planes: Planes) -> None:
    home = settings.home
    rescore = compare.through(planes)

    async def compare_evaluations(
        a: Annotated[str, Field(description="Baseline eval id (e.g. of target 'base')")],
        b: Annotated[str, Field(description="Candidate eval id (e.g. of 'RUN/final')")],
        flips_offset: Annotated[int, Field(ge=0, description="Skip this many flipped rows per direction")] = 0,
        flips_limit: Annotated[
            int, Field(ge=1, le=compare.FLIPS_MAX, description="Flipped rows shown per direction")
        ] = compare.FLIPS_DEFAULT,
    ) -> compare.Comparison:
        """Did B improve on A? Two finished evaluations paired row by row: mean difference with a bootstrap 95%
        interval, exact McNemar test on success, smallest detectable difference, flipped rows and a verdict
        (improved, regressed or no detectable difference; mean reward and success named apart when they
        disagree). Refuses, naming the difference, unless both share rows, environment digest, temperature,
        max_tokens and samples per row; no verdict when the same completion scores differently."""
        return await anyio.to_thread.run_sync(lambda: compare.compare(home, a, b, flips_offset, flips_limit, rescore))

    def comparison(a: str, b: str) -> str:
        """B against A, paired: the difference with its interval, McNemar p, MDE, flips and the verdict."""
        return compare.render(compare.compare(home, a, b, rescore=rescore))

    def comparison_chart(a: str, b: str) -> bytes:
        """Both means and the paired difference with 95% intervals, and every row's move from A to B, as a PNG."""
        return compare.chart(home, a, b, rescore)

    for uri, read, name, mime in (
        ("flash://evals/{a}/vs/{b}", comparison, "eval-comparison", "text/markdown"),
        ("flash://evals/{a}/vs/{b}/chart.png", comparison_chart, "eval-comparison-chart", "image/png"),
    ):
        server.resource(uri, name=name, description=read.__doc__, mime_type=mime)(translate_errors(read, ResourceError))

    add_tool(server, compare_evaluations, title="Compare two evaluations", **READ, open_world=False)
