"""Run outputs as resources, read through MCP clients during and after real local runs."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import PromptReference, ResourceTemplateReference, ResourceUpdatedNotification
from PIL import Image

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.runs import health as run_health
from flash_mcp.planes.local.plane import LocalPlane
from flash_mcp.server import build_server
from tests.conftest import call
from tests.evaluation.records import store
from tests.local.conftest import TINY_GRPO, pushed_project, wait_for_end

pytestmark = pytest.mark.anyio
# The watcher ticks this often here (a server's default: a second), so a run of about a second on a fast machine
# (24 steps) spans many ticks: the client is told of it while it runs, not only once it is done.
WATCHED_EVERY = 0.02
CONSTANT_REWARD = "        return RewardResult(score=0.5, threshold=1.0)\n"


async def text(client: Client, uri: str) -> str:
    return (await client.read_resource(uri)).contents[0].text


async def png(client: Client, uri: str) -> bytes:
    import base64

    content = (await client.read_resource(uri)).contents[0]
    assert content.mime_type == "image/png"
    return base64.b64decode(content.blob)


async def flat_reward_project(client: Client, workspace: Path) -> None:
    """The starter with a reward that pays 0.5 for anything: it never moves."""
    await pushed_project(client, rows=6)
    env_py = workspace / "p" / "environment.py"
    source = env_py.read_text().replace("        return exact_match_reward(example, response_text)\n", CONSTANT_REWARD)
    env_py.write_text(source, encoding="utf-8")
    await call(client, "push_environment", name="starter", directory="p")


async def updates(client_mode: str, settings: ServerSettings, workspace: Path) -> tuple[list[str], bytes, bytes]:
    """Launch a GRPO run while subscribed to its summary; read the summary at each update until done."""
    received: list[str] = []
    channel_in, channel_out = anyio.create_memory_object_stream[str](100)

    async def on_message(message) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            await channel_in.send(str(message.params.uri))

    server = build_server(settings, watch_seconds=WATCHED_EVERY)
    async with Client(server, mode=client_mode, message_handler=on_message) as client:
        await flat_reward_project(client, workspace)
        watched = {**TINY_GRPO, "train.max_steps": 24, "train.save_every": 8}
        launched = await call(client, "launch_training", config="p/configs/rl.toml", overrides=watched)
        uri = f"flash://runs/{launched['run_id']}"
        first_chart = await png(client, f"{uri}/chart.png")
        if client_mode == "legacy":
            with warnings.catch_warnings():  # the legacy era is exactly what this case tests
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await client.subscribe_resource(uri)
            events = channel_out
        else:
            listening = client.listen(resource_subscriptions=[uri])
            subscription = await listening.__aenter__()
            events = subscription
        with anyio.fail_after(300):
            async for event in events:
                received.append(str(getattr(event, "uri", event)))
                if (await text(client, uri)).startswith(f"# {launched['run_id']}: done"):
                    break
        if client_mode != "legacy":
            await listening.__aexit__(None, None, None)
        last_chart = await png(client, f"{uri}/chart.png")
    return received, first_chart, last_chart


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_subscribed_client_is_told_as_the_run_progresses(
    settings: ServerSettings, workspace: Path, mode: str
) -> None:
    received, first_chart, last_chart = await updates(mode, settings, workspace)
    assert len(received) >= 2, received
    assert all(uri.startswith("flash://runs/local-") for uri in received)
    assert first_chart != last_chart and len(last_chart) > len(first_chart)
    image = Image.open(io.BytesIO(last_chart))
    assert image.format == "PNG" and image.size[0] == 640 and image.size[1] > 200


async def test_resources_describe_a_finished_run_and_flag_a_reward_that_never_moves(
    settings: ServerSettings, workspace: Path, isolated_home: Path
) -> None:
    async with Client(build_server(settings)) as client:
        await flat_reward_project(client, workspace)
        launched = await call(client, "launch_training", config="p/configs/rl.toml", overrides=TINY_GRPO)
        run = await wait_for_end(client, launched["run_id"])
        assert run["state"] == "done"
        uri = f"flash://runs/{run['run_id']}"
        summary = await text(client, uri)
        assert summary.startswith(f"# {run['run_id']}: done")
        assert "reward never moved from 0.5 over 3 steps" in summary
        warned = summary.split("## Warnings\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert run["warnings"] == [line.removeprefix("- ") for line in warned], "get_run says what the summary says"
        assert "## Held-out evaluations" not in summary and "evaluate(target=" in summary
        store(isolated_home, "eval-step1", f"{run['run_id']}/step-1", [0.0] * 12)
        store(isolated_home, "eval-final", f"{run['run_id']}/final", [0.0] * 6 + [1.0] * 6)
        summary = await text(client, uri)
        assert f"- {run['run_id']}/step-1 (step 1, eval-step1): mean 0 [0, 0], success 0%, 12 rows" in summary
        assert f"- {run['run_id']}/final (step 3, eval-final): mean 0.5" in summary
        chart = Image.open(io.BytesIO(await png(client, f"{uri}/chart.png")))
        assert chart.format == "PNG" and chart.size[0] == 640
        assert "## Read next" in summary and f"{uri}/metrics" in summary
        assert len(summary) < 3000
        csv = (await text(client, f"{uri}/metrics")).splitlines()
        assert csv[0].startswith("step,") and "reward" in csv[0] and len(csv) == 4
        samples = await text(client, f"{uri}/samples")
        assert "reward 0.5" in samples and "completion:" in samples
        assert "at step 2" in await text(client, f"{uri}/samples?step=2")
        spec = json.loads(await text(client, f"{uri}/spec"))
        assert spec["algorithm"] == "grpo" and spec["train"]["group_size"] == 2
        listing = await text(client, "flash://runs")
        assert run["run_id"] in listing and " done " in listing


async def test_log_pages_chain_to_the_end_with_nothing_lost_or_repeated(
    settings: ServerSettings, workspace: Path, isolated_home: Path
) -> None:
    async with Client(build_server(settings)) as client:
        await flat_reward_project(client, workspace)
        launched = await call(client, "launch_training", config="p/configs/rl.toml", overrides=TINY_GRPO)
        run = await wait_for_end(client, launched["run_id"])
        log = Path(LocalPlane(isolated_home).store.get_run(run["run_id"])["run_dir"]) / "log"
        with log.open("a", encoding="utf-8") as handle:
            for i in range(4000):
                handle.write(f"line {i}: naïve ünïcödé ✓ {'x' * (i % 37)}\n")
        expected = log.read_bytes().decode("utf-8")
        pieces, uri = [], f"flash://runs/{run['run_id']}/logs?offset=0"
        while True:
            page = await text(client, uri)
            header, _, body = page.partition("\n")
            pieces.append(body)
            if "read the next part at " not in header:
                break
            uri = header.split("read the next part at ")[1]
        assert "".join(pieces) == expected and len(pieces) > 10
        header, _, body = (await text(client, f"flash://runs/{run['run_id']}/logs")).partition("\n")
        raw = log.read_bytes()
        assert header == f"# bytes {len(raw) - 16_384}-{len(raw)} of {len(raw)}; end of log so far"
        assert body == raw[-16_384:].decode("utf-8", "replace")


async def test_run_ids_complete_for_templates_and_prompts(settings: ServerSettings, workspace: Path) -> None:
    async with Client(build_server(settings), mode="legacy") as client:
        await flat_reward_project(client, workspace)
        launched = await call(client, "launch_training", config="p/configs/rl.toml", overrides=TINY_GRPO)
        run_id = launched["run_id"]
        ref = ResourceTemplateReference(type="ref/resource", uri="flash://runs/{run_id}")
        done = await client.complete(ref, {"name": "run_id", "value": "local-"})
        assert done.completion.values == [run_id]
        prompt_ref = PromptReference(type="ref/prompt", name="review_run")
        prompt = await client.complete(prompt_ref, {"name": "run_id", "value": ""})
        assert prompt.completion.values == [run_id]
        none = await client.complete(ref, {"name": "run_id", "value": "flash-"})
        assert none.completion.values == []
        await wait_for_end(client, run_id)


@pytest.mark.parametrize("name", ["review_run", "diagnose_run"])
async def test_run_prompts_point_at_the_run_resources(settings: ServerSettings, name: str) -> None:
    async with Client(build_server(settings)) as client:
        rendered = await client.get_prompt(name, {"run_id": "local-123-abc"})
    body = rendered.messages[0].content.text
    assert "flash://runs/local-123-abc" in body and "$" not in body


async def test_improve_reward_prompt_fills_its_defaults(settings: ServerSettings) -> None:
    async with Client(build_server(settings)) as client:
        rendered = await client.get_prompt("improve_reward", {"directory": "p"})
    body = rendered.messages[0].content.text
    assert 'config "p/configs/rl.toml"' in body and "responses" in body


def test_warning_signs_in_metric_series() -> None:
    flat = run_health.series([{"step": s, "reward": 0.0, "frac_reward_zero_std": 1.0} for s in range(1, 5)])
    found = run_health.warnings(flat)
    assert any("stuck at 0" in w for w in found) and any("never moved" in w for w in found)
    assert any("frac_reward_zero_std" in w for w in found)
    rising = run_health.series([{"step": s, "reward": s / 10, "truncation_rate": 0.2 * s} for s in range(1, 6)])
    assert [w for w in run_health.warnings(rising) if "reward" in w] == []
    assert any("truncation_rate is rising" in w for w in run_health.warnings(rising))
    nan = run_health.series([{"step": 1, "loss": float("nan")}])
    assert any("NaN" in w for w in run_health.warnings(nan))


def test_the_chart_changes_as_metrics_arrive() -> None:
    rows = [{"step": s, "reward": s % 3 / 2, "loss": 1 / s, "kl": s / 100} for s in range(1, 30)]
    early, late = run_health.chart_png(rows[:2], "run"), run_health.chart_png(rows, "run")
    assert early.startswith(b"\x89PNG") and late.startswith(b"\x89PNG") and early != late
    assert Image.open(io.BytesIO(late)).size == (640, 740), "three panels drawn by matplotlib"
