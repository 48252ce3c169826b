"""validate_config and edit_config through an MCP client, and the config resources."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import anyio
import pytest
from flash.schema import _apply_override
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.config.resolve import apply_overrides
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call, call_error

pytestmark = pytest.mark.anyio


@pytest.fixture
async def project(client: Client, workspace: Path) -> Path:
    await call(client, "setup_project", directory="demo", project=PROJECT)
    return workspace / "demo"


async def test_done_when_group_size_3_is_rejected_with_flashs_words_and_the_file_unchanged(
    client: Client, project: Path
) -> None:
    config = project / "configs" / "rl.toml"
    before = config.read_bytes()
    text = await call_error(client, "edit_config", config="demo/configs/rl.toml", set={"train.group_size": 3})
    assert "train.group_size must be one of {2, 4, 8, 16} for GRPO" in text
    assert "unchanged" in text
    assert config.read_bytes() == before


async def test_done_when_a_valid_edit_keeps_every_comment_of_the_scaffold(client: Client, project: Path) -> None:
    config = project / "configs" / "rl.toml"
    before = config.read_text(encoding="utf-8")
    result = await call(client, "edit_config", config="demo/configs/rl.toml", set={"train.epochs": 3, "seed": 7})
    after = config.read_text(encoding="utf-8")
    assert result["written"] is True
    assert [line for line in before.splitlines() if line.lstrip().startswith("#")] == [
        line for line in after.splitlines() if line.lstrip().startswith("#")
    ]
    changed = {line for line in after.splitlines()} - {line for line in before.splitlines()}
    assert changed == {"epochs = 3", "seed = 7"}
    assert list(tomllib.loads(after)) == ["model", "project", "algorithm", "seed", "wandb", "environment", "train"]
    assert "+epochs = 3" in result["diff"] and "-epochs = 1" in result["diff"]


async def test_unset_and_nested_set_keep_untouched_lines(client: Client, project: Path) -> None:
    config = project / "configs" / "rl.toml"
    before = config.read_text(encoding="utf-8").splitlines()
    await call(
        client,
        "edit_config",
        config="demo/configs/rl.toml",
        set={"environment.params.split": "train", "train.max_steps": 5},
        unset=["wandb.run_name"],
    )
    after = config.read_text(encoding="utf-8")
    raw = tomllib.loads(after)
    assert raw["environment"]["params"] == {"split": "train"} and raw["train"]["max_steps"] == 5
    assert "run_name" not in raw["wandb"]
    kept = [line for line in before if "run_name" not in line]
    assert all(line in after.splitlines() for line in kept)


async def test_preview_writes_nothing(client: Client, project: Path) -> None:
    config = project / "configs" / "sft.toml"
    before = config.read_bytes()
    result = await call(client, "edit_config", config="demo/configs/sft.toml", set={"train.epochs": 4}, preview=True)
    assert result["written"] is False and "+epochs = 4" in result["diff"]
    assert result["validation"]["resolved"]["train"]["epochs"] == 4
    assert config.read_bytes() == before


async def test_preview_of_a_bad_edit_shows_the_errors(client: Client, project: Path) -> None:
    result = await call(
        client, "edit_config", config="demo/configs/sft.toml", set={"train.group_size": 8}, preview=True
    )
    keys = [error["key"] for error in result["validation"]["errors"]]
    assert "train.group_size" in keys


@pytest.mark.parametrize(
    "edit",
    [
        {"set": {"grpo.group_size": 8}},
        {"set": {"train.batch_size": 1}},
        {"set": {"wandb.name": "x"}},
        {"set": {"train.epochs": None}},
        {"unset": ["train.not_there"]},
        {"set": {"model.name": "x"}},
        {},
    ],
)
async def test_bad_edits_are_refused_and_leave_the_file_byte_identical(
    client: Client, project: Path, edit: dict
) -> None:
    config = project / "configs" / "rl.toml"
    before = config.read_bytes()
    await call_error(client, "edit_config", config="demo/configs/rl.toml", **edit)
    assert config.read_bytes() == before


async def test_concurrent_edits_never_interleave_or_lose_an_update(client: Client, project: Path) -> None:
    async def edit(i: int) -> None:
        await call(client, "edit_config", config="demo/configs/sft.toml", set={f"environment.params.k{i}": i})

    async with anyio.create_task_group() as group:
        for i in range(16):
            group.start_soon(edit, i)
    raw = tomllib.loads((project / "configs" / "sft.toml").read_text(encoding="utf-8"))
    assert raw["environment"]["params"] == {f"k{i}": i for i in range(16)}


async def test_validate_config_on_the_scaffold(client: Client, project: Path) -> None:
    report = await call(client, "validate_config", config="demo/configs/rl.toml")
    assert [e["key"] for e in report["errors"]] == ["environment.id"]
    assert "push" in report["errors"][0]["fix"]
    resolved = report["resolved"]
    assert resolved["algorithm"] == "grpo" and resolved["project"] == PROJECT
    assert resolved["train"]["group_size"] == 8 and resolved["train"]["prompts_per_step"] == 64
    assert resolved["train"]["learning_rate"] == 1e-5 and "group_size" in resolved["defaulted_keys"]
    assert "train.epochs" in resolved["authored_keys"] and "batch_size" not in resolved["train"]
    warning_keys = {w["key"] for w in report["warnings"]}
    assert "train.max_context_tokens" in warning_keys


async def test_warnings_catch_run_wasting_configs(client: Client, project: Path) -> None:
    rows = "".join(json.dumps({"input": f"q{i}", "output": str(i)}) + "\n" for i in range(500))
    (project / "dataset" / "train.jsonl").write_text(rows, encoding="utf-8")
    report = await call(client, "validate_config", config="demo/configs/rl.toml")
    capped = [w for w in report["warnings"] if w["key"] == "train.max_examples"]
    assert capped and "2 of the 500 rows" in capped[0]["message"] and "500" in capped[0]["fix"]
    report = await call(client, "validate_config", config="demo/configs/rl.toml", overrides={"train.max_examples": 0})
    assert any("cannot price grpo" in w["message"] for w in report["warnings"])
    report = await call(
        client,
        "validate_config",
        config="demo/configs/rl.toml",
        overrides={"train.kl_penalty_coef": 0.0, "train.learning_rate": 1e-4},
    )
    assert any(w["key"] == "train.kl_penalty_coef" for w in report["warnings"])


async def test_overrides_use_flash_train_set_coercion(client: Client, project: Path) -> None:
    report = await call(
        client,
        "validate_config",
        config="demo/configs/rl.toml",
        overrides={"train.epochs": "3", "thinking": "true", "train.stop_sequences": '["</a>", "</b>"]'},
    )
    resolved = report["resolved"]
    assert resolved["train"]["epochs"] == 3 and resolved["thinking"] is True
    assert resolved["train"]["stop_sequences"] == ["</a>", "</b>"]


@pytest.mark.parametrize(
    "item",
    ["train.epochs=3", "train.learning_rate=1e-5", "thinking=true", "wandb.project=123", "train.stop_sequences=[a,b]",
     'train.stop_sequences=["x, y", "z"]', "environment.params.split=test", "gpu.type=H100", "train.temperature=0.5"],
)  # fmt: skip
def test_override_coercion_matches_flash(item: str) -> None:
    key, value = item.split("=", 1)
    theirs: dict = {"train": {}}
    _apply_override(theirs, item)
    assert apply_overrides({"train": {}}, {key: value}) == theirs


async def test_missing_and_unparseable_configs_are_clear_errors(client: Client, project: Path) -> None:
    assert "setup_project" in await call_error(client, "validate_config", config="demo/configs/nope.toml")
    (project / "configs" / "broken.toml").write_text("model = \n", encoding="utf-8")
    assert "not valid TOML" in await call_error(client, "validate_config", config="demo/configs/broken.toml")


async def test_flash_plane_requires_a_project(workspace: Path, isolated_home: Path) -> None:
    settings = ServerSettings.create(workspace, home=isolated_home, plane="flash")
    async with Client(build_server(settings)) as client:
        await call(client, "setup_project", directory="demo")
        report = await call(client, "validate_config", config="demo/configs/sft.toml")
        assert "project" in [e["key"] for e in report["errors"]]


async def test_schema_resource_describes_every_key(client: Client) -> None:
    schema = json.loads((await client.read_resource("flash://schema/config")).contents[0].text)
    tables = [schema, *schema["$defs"].values()]
    described = 0
    for table in tables:
        for name, prop in table.get("properties", {}).items():
            assert prop.get("description") or "$ref" in prop or "allOf" in prop, name
            described += 1
    assert described >= 21 + 9 + 4 + 4 + 2
    train = schema["$defs"]["TrainTable"]["properties"]
    assert train["batch_size"]["algorithms"] == ["sft"] and train["group_size"]["algorithms"] == ["grpo", "opd"]


async def test_models_and_gpus_resources(client: Client) -> None:
    models = json.loads((await client.read_resource("flash://models")).contents[0].text)
    assert {m["id"]: m["max_lora_rank"] for m in models}["Qwen/Qwen3.5-9B"] == 128
    gpus = json.loads((await client.read_resource("flash://gpus")).contents[0].text)
    assert {g["name"]: round(g["usd_per_hour"], 2) for g in gpus}["H100"] == 4.43


def test_sft_has_no_offline_hosted_estimate_and_says_why() -> None:
    from flash_mcp.domain.config.fit import hosted_estimate

    estimate = hosted_estimate({"model": "Qwen/Qwen3.5-9B", "algorithm": "sft", "environment": {"id": "a/b/c"}})
    assert estimate["usd"] is None and "SFT" in estimate["reason"] and "plane='flash'" in estimate["reason"]


def test_the_default_context_warning_names_the_value_that_applies() -> None:
    from flash_mcp.domain.config.validate import validate_raw

    raw = {"model": "Qwen/Qwen3.5-9B", "algorithm": "grpo", "environment": {"id": "a/b/c"}, "train": {"max_steps": 2}}
    validation = validate_raw(raw)
    default = validation.resolved.train["max_context_tokens"]
    (warning,) = [w for w in validation.warnings if w.where == "train.max_context_tokens"]
    assert "is unset" not in warning.message and f"default of {default} tokens applies" in warning.message
