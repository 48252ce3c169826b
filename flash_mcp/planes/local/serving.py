"""The local plane serves nothing: `evaluate` loads a checkpoint's adapter itself; deploying is a Flash step."""

from __future__ import annotations

from flash_mcp.core.errors import UserError
from flash_mcp.planes.base import ChatAnswer, Deployment

NO_SERVING = (
    "the local plane does not serve checkpoints; evaluate(config, target='RUN/final') loads the adapter "
    "locally, and deploying is a Flash-plane step"
)


class NoServing:
    def deploy(self, checkpoint_id: str, *, dry_run: bool = False) -> Deployment:
        raise UserError(NO_SERVING)

    def deployment(self, checkpoint_id: str) -> Deployment:
        raise UserError(NO_SERVING)

    def undeploy(self, checkpoint_id: str) -> Deployment:
        raise UserError(NO_SERVING)

    def chat(self, checkpoint_id: str, messages: list[dict], *, temperature: float, max_tokens: int) -> ChatAnswer:
        raise UserError(NO_SERVING)
