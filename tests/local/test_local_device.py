"""The accelerator a local job picks, the GPU nodes only jobs get, and the vLLM decision: plain functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.domain.runs.device import (
    Accelerator,
    choose_accelerator,
    device_note,
    precision_args,
    vllm_args,
)
from flash_mcp.sandbox import SandboxSpec, api, gpu_device_nodes, job_launch, policy
from tests.conftest import call
from tests.envs import projects as seeds


def test_cuda_with_bf16_trains_in_bf16() -> None:
    chosen = choose_accelerator(cuda=True, bf16=True)
    assert chosen == Accelerator("cuda", "bfloat16")
    assert precision_args(chosen) == {"use_cpu": False, "bf16": True, "fp16": False}


def test_cuda_without_bf16_trains_in_fp16() -> None:
    chosen = choose_accelerator(cuda=True, bf16=False)
    assert chosen == Accelerator("cuda", "float16")
    assert precision_args(chosen) == {"use_cpu": False, "bf16": False, "fp16": True}


def test_no_cuda_trains_on_the_cpu_in_fp32_whatever_bf16_says() -> None:
    for bf16 in (True, False):
        chosen = choose_accelerator(cuda=False, bf16=bf16)
        assert chosen == Accelerator("cpu", "float32")
        assert precision_args(chosen) == {"use_cpu": True, "bf16": False, "fp16": False}


def test_vllm_colocates_only_for_grpo_on_cuda_when_installed() -> None:
    cuda, cpu = Accelerator("cuda", "bfloat16"), Accelerator("cpu", "float32")
    assert vllm_args("grpo", True, cuda) == {"use_vllm": True, "vllm_mode": "colocate"}
    assert vllm_args("grpo", False, cuda) == {}
    assert vllm_args("grpo", True, cpu) == {}
    assert vllm_args("sft", True, cuda) == {}


def _fake_dev(root: Path) -> list[str]:
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "null", "sda"):
        (root / name).write_text("")
    (root / "dri").mkdir()
    (root / "dri" / "card0").write_text("")
    (root / "dri" / "renderD128").write_text("")
    return sorted(
        str(root / n)
        for n in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "dri/card0", "dri/renderD128")
    )


def test_gpu_nodes_are_exactly_the_present_ones(tmp_path: Path) -> None:
    expected = _fake_dev(tmp_path)
    assert gpu_device_nodes(tmp_path) == expected
    assert gpu_device_nodes(tmp_path / "empty") == []


def test_only_a_spec_that_asks_for_the_gpu_gets_its_nodes(tmp_path: Path) -> None:
    expected = _fake_dev(tmp_path)
    plain = api.read_write_grants(SandboxSpec(["x"]), ["/work/scratch"], tmp_path)
    assert not [path for path in plain if path.startswith(str(tmp_path))]
    job = api.read_write_grants(SandboxSpec(["x"], gpu=True), ["/work/scratch"], tmp_path)
    assert [path for path in job if path.startswith(str(tmp_path))] == expected


def test_a_trainer_job_asks_for_the_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs: list[SandboxSpec] = []

    def capture(spec: SandboxSpec):
        specs.append(spec)
        raise RuntimeError("captured")

    monkeypatch.setattr(api, "launch", capture)
    monkeypatch.setattr(job_launch, "_launch_preloaded", lambda spec, log: capture(spec))  # the fork server's too
    (tmp_path / "job").mkdir()
    with pytest.raises(RuntimeError, match="captured"):
        job_launch.launch_job(tmp_path / "home", "flash_mcp.jobs.trainer", tmp_path / "job", [])
    assert specs[-1].gpu is True


@pytest.mark.anyio
async def test_an_env_test_child_gets_no_gpu_nodes(
    client: Client, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flash_mcp.harness import runner

    fake_dev = tmp_path / "fake-dev"
    fake_dev.mkdir()
    present = _fake_dev(fake_dev)
    monkeypatch.setattr(policy, "gpu_device_nodes", lambda dev_root="/dev": gpu_device_nodes(fake_dev))
    grants: list[list[str]] = []
    real_grants = api.read_write_grants

    def recording(spec, read_write, dev_root="/dev"):
        grants.append(real_grants(spec, read_write, dev_root))
        return grants[-1]

    monkeypatch.setattr(api, "read_write_grants", recording)
    specs: list[SandboxSpec] = []
    real_launch = runner.launch
    monkeypatch.setattr(runner, "launch", lambda spec: specs.append(spec) or real_launch(spec))
    seeds.make_project(workspace, "p", seeds.environment(), seeds.rows(4))
    report = await call(client, "test_environment", directory="p")
    assert report["verdict"] == "pass", report["summary"]
    assert specs and all(spec.gpu is False for spec in specs)
    assert grants and not any(node in grant for grant in grants for node in present)


def test_the_device_note_says_cpu_without_a_cuda_node() -> None:
    assert device_note([], True) == "local runs train on: cpu (no CUDA device)"
    assert device_note(["/dev/dri/card0"], True) == "local runs train on: cpu (no CUDA device)"
    assert device_note(["/dev/nvidia0", "/dev/nvidiactl"], True).startswith("local runs train on: cuda")
    assert "torch is not installed" in device_note(["/dev/nvidia0"], False)
