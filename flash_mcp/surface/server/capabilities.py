"""One capabilities answer in both protocol eras: no list ever changes, so `listChanged` is false everywhere.

The SDK derives the 2026-07-28 flags from whether `subscriptions/listen` is served and the legacy ones from
notification options; this server's tools, resources and prompts are fixed for its life (registered on first
use, the same every time), so both eras say the same thing: `listChanged: false`. `subscribe` is left as derived
(run resources do change and are pushed in both eras)."""

from __future__ import annotations

import functools
from typing import Any

from mcp.server import MCPServer


def same_in_both_eras(server: MCPServer) -> None:
    lowlevel = server._lowlevel_server  # where both eras' answers (initialize, server/discover) are derived
    derive = lowlevel.get_capabilities

    @functools.wraps(derive)
    def capabilities(*args: Any, **kwargs: Any) -> Any:
        found = derive(*args, **kwargs)
        for part in (found.tools, found.prompts, found.resources):
            if part is not None:
                part.list_changed = False
        return found

    lowlevel.get_capabilities = capabilities
