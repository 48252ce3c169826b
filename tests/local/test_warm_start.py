"""Warm starts on the local plane: a run named by `train.init_from_adapter` starts from that checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import call, call_error
from tests.local.conftest import TINY_GRPO, pushed_project, wait_for_end

pytestmark = pytest.mark.anyio
FIRST = {"train.learning_rate": 0.01, "train.max_steps": 3, "train.batch_size": 8, "train.save_every": 2}
STILL = 1e-12  # a learning rate so small that the continued run's adapter stays the checkpoint's


def _adapter(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


def _assert_same(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


async def test_sft_and_grpo_continue_from_a_local_checkpoint(
    settings: ServerSettings, isolated_home: Path, workspace: Path
) -> None:
    async with Client(build_server(settings)) as client:
        await pushed_project(client, rows=8)
        for name in ("sft", "rl"):  # a warm start inherits the source adapter's rank
            config = workspace / "p" / "configs" / f"{name}.toml"
            lines = config.read_text().splitlines(keepends=True)
            config.write_text("".join(line for line in lines if not line.startswith(("lora_rank", "lora_alpha"))))
        first = await wait_for_end(client, (await call(client, "launch_training", config="p/configs/sft.toml",
                                                       overrides=FIRST))["run_id"])  # fmt: skip
        assert first["state"] == "done", first
        run_dir = isolated_home / "runs" / first["run_id"] / "checkpoints"
        source = _adapter(run_dir / "final")
        assert any("lora_B" in k and v.abs().sum() > 0 for k, v in source.items()), "a fresh LoRA has lora_B = 0"
        missing = await call_error(client, "dry_run", config="p/configs/sft.toml",
                             overrides={"train.init_from_adapter": f"{first['run_id']}/step-9"})  # fmt: skip
        assert "step-2" in str(missing) and "final" in str(missing), missing
        warm_sft = {"train.init_from_adapter": f"{first['run_id']}/final", "train.learning_rate": STILL,
                    "train.max_steps": 1, "train.batch_size": 8}  # fmt: skip
        sft = await wait_for_end(client, (await call(client, "launch_training", config="p/configs/sft.toml",
                                                     overrides=warm_sft))["run_id"])  # fmt: skip
        assert sft["state"] == "done", sft
        _assert_same(source, _adapter(isolated_home / "runs" / sft["run_id"] / "checkpoints" / "final"))
        warm_grpo = {**TINY_GRPO, "train.max_steps": 1, "train.learning_rate": STILL,
                     "train.init_from_adapter": f"{first['run_id']}/step-2"}  # fmt: skip
        grpo = await wait_for_end(client, (await call(client, "launch_training", config="p/configs/rl.toml",
                                                      overrides=warm_grpo))["run_id"])  # fmt: skip
        assert grpo["state"] == "done", grpo
        step2 = _adapter(run_dir / "step-2")
        _assert_same(step2, _adapter(isolated_home / "runs" / grpo["run_id"] / "checkpoints" / "final"))
