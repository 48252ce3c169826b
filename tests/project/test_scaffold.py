"""setup_project: the files `flash env setup` 1.3.28 writes, accepted by Flash itself, never overwritten."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from flash.schema import spec_from_dict
from mcp import Client

from tests.conftest import PROJECT, call, call_error

pytestmark = pytest.mark.anyio

SCAFFOLD = [
    "environment.py",
    "evaluations.py",
    "dataset/train.jsonl",
    "configs/sft.toml",
    "configs/rl.toml",
    "configs/opd.toml",
    "TRAINING.md",
]


def _flash_env_test(project: Path, algorithm: str) -> subprocess.CompletedProcess[str]:
    """Run the real `flash env test` (freesolo-flash 1.3.28) on a project."""
    return subprocess.run(
        [sys.executable, "-m", "flash.cli", "env", "test", str(project), "--algorithm", algorithm],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "FLASH_STYLE": "0", "CI": "1", "HOME": str(project)},
    )


def _parsed_by_flash(config: Path) -> object:
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    raw["environment"]["id"] = "acme/demo/starter"
    return spec_from_dict(raw, project_required="project" in raw)


async def test_scaffold_creates_every_file_flash_env_setup_creates(client: Client, workspace: Path) -> None:
    result = await call(client, "setup_project", directory="demo", project=PROJECT)
    assert result["created"] == [f"demo/{name}" for name in SCAFFOLD]
    assert result["kept"] == [] and result["project"] == PROJECT
    for name in ("sft", "rl", "opd"):
        raw = tomllib.loads((workspace / "demo" / "configs" / f"{name}.toml").read_text(encoding="utf-8"))
        assert raw["project"] == PROJECT


@pytest.mark.parametrize("multi_turn", [False, True])
@pytest.mark.parametrize("reasoning", [False, True])
async def test_scaffolded_configs_parse_with_the_real_flash_parser(
    client: Client, workspace: Path, multi_turn: bool, reasoning: bool
) -> None:
    await call(client, "setup_project", directory="demo", project=PROJECT, multi_turn=multi_turn, reasoning=reasoning)
    algorithms = {}
    for name in ("sft", "rl", "opd"):
        spec = _parsed_by_flash(workspace / "demo" / "configs" / f"{name}.toml")
        algorithms[name] = spec.algorithm
        assert spec.thinking is reasoning
        assert spec.project == PROJECT
    assert algorithms == {"sft": "sft", "rl": "grpo", "opd": "opd"}


@pytest.mark.parametrize("multi_turn", [False, True])
async def test_flash_env_test_passes_on_the_scaffold(client: Client, workspace: Path, multi_turn: bool) -> None:
    await call(client, "setup_project", directory="demo", project=PROJECT, multi_turn=multi_turn)
    for algorithm in ("grpo", "sft"):
        verdict = _flash_env_test(workspace / "demo", algorithm)
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
        assert "overall: PASS" in verdict.stdout


async def test_rerun_keeps_edited_files_byte_identical(client: Client, workspace: Path) -> None:
    await call(client, "setup_project", directory="demo", project=PROJECT)
    env_py = workspace / "demo" / "environment.py"
    env_py.write_bytes(env_py.read_bytes() + b"\n# my edit\n")
    (workspace / "demo" / "configs" / "rl.toml").unlink()
    before = {name: (workspace / "demo" / name).read_bytes() for name in SCAFFOLD if name != "configs/rl.toml"}
    result = await call(client, "setup_project", directory="demo", project=PROJECT)
    assert result["created"] == ["demo/configs/rl.toml"]
    assert sorted(result["kept"]) == sorted(f"demo/{name}" for name in before)
    assert {name: (workspace / "demo" / name).read_bytes() for name in before} == before


async def test_rerun_keeps_the_existing_turn_mode_and_says_so(client: Client, workspace: Path) -> None:
    await call(client, "setup_project", directory="demo", multi_turn=True)
    result = await call(client, "setup_project", directory="demo", multi_turn=False)
    assert result["multi_turn"] is True
    assert any("multi-turn" in warning for warning in result["warnings"])


async def test_rerun_with_another_project_is_refused(client: Client, workspace: Path) -> None:
    await call(client, "setup_project", directory="demo", project=PROJECT)
    other = "11111111-2222-3333-4444-555555555555"
    text = await call_error(client, "setup_project", directory="demo", project=other)
    assert PROJECT in text and other in text


async def test_project_must_be_a_uuid(client: Client, workspace: Path) -> None:
    text = await call_error(client, "setup_project", directory="demo", project="my-project")
    assert "UUID" in text
    assert not (workspace / "demo" / "environment.py").exists()


async def test_without_a_project_the_configs_say_how_to_set_it(client: Client, workspace: Path) -> None:
    result = await call(client, "setup_project", directory="demo")
    assert result["project"] is None
    assert any("project" in step for step in result["next_steps"])
    sft = (workspace / "demo" / "configs" / "sft.toml").read_text(encoding="utf-8")
    assert "project" not in tomllib.loads(sft)
    assert "# project = " in sft


async def test_stale_flash_scaffold_bits_are_fixed(client: Client, workspace: Path) -> None:
    await call(client, "setup_project", directory="demo", project=PROJECT, reasoning=True)
    configs = {
        n: (workspace / "demo" / "configs" / f"{n}.toml").read_text(encoding="utf-8") for n in ("sft", "rl", "opd")
    }
    assert not any("--doc" in text for text in configs.values())
    assert "glm 5.2" not in configs["opd"] and "default glm-5.3" in configs["opd"]
    assert "max_examples" not in tomllib.loads(configs["sft"])["train"]
    assert "set it to your row count" in configs["rl"]


async def test_scaffold_refuses_a_file_as_directory(client: Client, workspace: Path) -> None:
    (workspace / "afile").write_text("x", encoding="utf-8")
    text = await call_error(client, "setup_project", directory="afile")
    assert "afile" in text and "directory" in text, text
    assert (workspace / "afile").read_text(encoding="utf-8") == "x"
