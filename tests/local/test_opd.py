"""OPD on the local plane: the human names a teacher in settings.toml, the tiny student distils from it through TRL,
and what a local run cannot rehearse (no teacher, another vocabulary, a multi-turn environment) is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call, call_error
from tests.local.conftest import pushed_project, wait_for_end

pytestmark = pytest.mark.anyio
OPD = {
    "train.max_examples": 8, "train.prompts_per_step": 4, "train.group_size": 1, "train.max_completion_tokens": 8,
    "train.max_steps": 8, "train.learning_rate": 0.01, "train.save_every": 4,
}  # fmt: skip


@pytest.fixture(scope="module")
def teacher(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model fully fine-tuned on the task's answers: its vocabulary, other next-token distributions."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    chats = [[{"role": "user", "content": f"What is {i} + 1?"}, {"role": "assistant", "content": str(i + 1)}]
             for i in range(40)]  # fmt: skip
    batch = tokenizer([tokenizer.apply_chat_template(c, tokenize=False) for c in chats], return_tensors="pt",
                      padding=True)  # fmt: skip
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for _ in range(150):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    target = tmp_path_factory.mktemp("teacher")
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def _reverse_kl(student: Path, adapter: Path | None, teacher: Path) -> float:
    """The distillation loss on fixed sequences: the mean per-token KL(student || teacher) over completions the
    untrained student sampled (seeded), the same for every model measured. On-policy step losses are too noisy on
    a tiny model to show a trend in a few steps; this is the objective itself, without the sampling noise."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(student, padding_side="left")
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": f"What is {i} + 1?"}], tokenize=False,
                                             add_generation_prompt=True) for i in range(8)]  # fmt: skip
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    base = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32)
    torch.manual_seed(0)
    sequences = base.generate(**batch, do_sample=True, max_new_tokens=8, pad_token_id=tokenizer.pad_token_id)
    start = batch["input_ids"].shape[1]
    mask = torch.cat([batch["attention_mask"], torch.ones_like(sequences[:, start:])], dim=1)
    model = PeftModel.from_pretrained(base, adapter) if adapter else base
    reference = AutoModelForCausalLM.from_pretrained(teacher, dtype=torch.float32)
    with torch.no_grad():
        mine, theirs = (torch.log_softmax(m(input_ids=sequences, attention_mask=mask).logits[:, start - 1 : -1], -1)
                        for m in (model, reference))  # fmt: skip
        return float((mine.exp() * (mine - theirs)).sum(-1).mean())


def _name_teacher(home: Path, name: str, folder: Path) -> None:
    settings = home / "settings.toml"
    settings.write_text(settings.read_text() + f'\n[local.teachers]\n"{name}" = "{folder}"\n', encoding="utf-8")


async def test_opd_distils_from_the_humans_teacher_with_the_loss_falling(
    settings: ServerSettings, isolated_home: Path, workspace: Path, teacher: Path, tiny_model: Path
) -> None:
    async with Client(build_server(settings)) as client:
        await pushed_project(client, rows=8)
        refused = await call_error(client, "dry_run", config="p/configs/opd.toml", overrides=OPD)
        assert str(isolated_home / "settings.toml") in refused, refused
        assert '[local.teachers] "glm-5.3" = "/path/to/teacher"' in refused and "plane='flash'" in refused
        assert "glm-5.3" in await call_error(client, "launch_training", config="p/configs/opd.toml", overrides=OPD)
        assert (await call(client, "list_runs"))["total"] == 0

        _name_teacher(isolated_home, "GLM_5.3", teacher)  # Flash's spelling rules: case and _ / - are one
        planned = await call(client, "dry_run", config="p/configs/opd.toml", overrides=OPD)
        assert planned["valid"] and planned["dry_run"]["steps"] == 8, planned
        assert any(f"teacher {teacher}" in note for note in planned["dry_run"]["notes"]), planned["dry_run"]
        launched = await call(client, "launch_training", config="p/configs/opd.toml", overrides=OPD)
        run = await wait_for_end(client, launched["run_id"])
        assert run["state"] == "done" and run["step"] == 8, run
        run_dir = isolated_home / "runs" / run["run_id"]
        job = json.loads((run_dir / "job.json").read_text())
        assert job["teacher_path"] == str(teacher) and job["spec"]["algorithm"] == "opd"
        losses = [row["loss"] for row in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
                  if "loss" in row]  # fmt: skip
        assert len(losses) == 8 and all(loss > 0 for loss in losses), losses
        before, after = (
            _reverse_kl(tiny_model, None, teacher),
            _reverse_kl(tiny_model, run_dir / "checkpoints" / "final", teacher),
        )
        assert after < before * 0.98, f"the distillation loss did not fall: {before:.4f} -> {after:.4f}"
        checkpoints = {c.name for c in (run_dir / "checkpoints").iterdir()}
        assert {"step-4", "final"} <= checkpoints, checkpoints
        samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
        assert {s["step"] for s in samples} >= {0, 8} and all(s["kind"] == "probe" for s in samples)
        log = await call(client, "read_run_logs", run_id=run["run_id"])
        assert f"distilling from {teacher}" in log["text"], log["text"][-2000:]


async def test_a_teacher_with_another_vocabulary_is_refused(
    settings: ServerSettings, isolated_home: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other-vocab"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "qwen2", "vocab_size": 151936}), encoding="utf-8")
    _name_teacher(isolated_home, "glm-5.3", other)
    async with Client(build_server(settings)) as client:
        await pushed_project(client, rows=8)
        refused = await call_error(client, "launch_training", config="p/configs/opd.toml", overrides=OPD)
        assert re.search(r"vocabulary of 151936 tokens and the student .* \d+", refused), refused
        assert "[local.teachers]" in refused and (await call(client, "list_runs"))["total"] == 0


async def test_multi_turn_opd_is_refused_before_it_starts(
    settings: ServerSettings, isolated_home: Path, teacher: Path
) -> None:
    _name_teacher(isolated_home, "glm-5.3", teacher)
    async with Client(build_server(settings)) as client:
        await call(client, "setup_project", directory="m", project=PROJECT, multi_turn=True)
        await call(client, "push_environment", name="guess", directory="m")
        for tool in ("dry_run", "launch_training"):
            refused = await call_error(client, tool, config="m/configs/opd.toml", overrides=OPD)
            assert "multi-turn OPD cannot be rehearsed locally" in refused and "plane='flash'" in refused, refused
        assert (await call(client, "list_runs"))["total"] == 0
