"""Which model a local run trains: the catalog id from the local Hugging Face cache, or the
human's stand-in. Also `flash-mcp tiny-model`, a tiny random chat model built offline."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from flash_mcp.core.advice import human_command
from flash_mcp.core.errors import UserError
from flash_mcp.domain.config.catalog import DEFAULT_TEACHER, TEACHERS, teacher_alias
from flash_mcp.domain.runs.device import device_note
from flash_mcp.sandbox import gpu_device_nodes

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class LocalModel:
    path: Path
    label: str
    notes: list[str] = field(default_factory=list)


def resolve_model(model_id: str, stand_in: Path | None) -> LocalModel:
    cached = _hf_cache_snapshot(model_id)
    if cached is not None:
        return LocalModel(cached, model_id)
    if stand_in is not None:
        if not (stand_in / "config.json").is_file():
            raise UserError(
                f"settings.toml [local] stand_in_model = {str(stand_in)!r} is not a Hugging Face model directory "
                "(no config.json); ask the human to fix it"
            )
        note = f"stand-in {stand_in} trains in place of {model_id}, which is not in the local Hugging Face cache"
        return LocalModel(stand_in, str(stand_in), [note])
    raise UserError(
        f"{model_id} is not in the local Hugging Face cache and no stand-in is set. Ask the human to add "
        '[local] stand_in_model = "/path/to/model" to settings.toml in the flash-mcp home '
        f"(`{human_command('tiny-model', 'DIR')}` builds a tiny one for rehearsals)"
    )


def resolve_teacher(
    name: str | None, teachers: dict[str, Path], settings_file: Path, student: Path | None
) -> LocalModel:
    """The model a local OPD run distils from: the human's `[local.teachers]` entry for the config's teacher,
    else that catalog teacher's weights in the local Hugging Face cache. It must share the student's vocabulary."""
    alias = teacher_alias(name or DEFAULT_TEACHER)
    named = {teacher_alias(key): folder for key, folder in teachers.items()}
    if alias in named:
        folder = named[alias]
        if not (folder / "config.json").is_file():
            raise UserError(
                f"{settings_file} [local.teachers] {alias} = {str(folder)!r} is not a Hugging Face model directory "
                "(no config.json); ask the human to fix it"
            )
        teacher = LocalModel(folder, str(folder), [f"teacher {folder} stands in for {alias} ([local.teachers])"])
    else:
        repo = TEACHERS[alias].hf_repo if alias in TEACHERS else alias
        cached = _hf_cache_snapshot(repo)
        if cached is None:
            raise UserError(
                f"OPD distils from {alias}, which has no local teacher: {repo} is not in the local Hugging Face cache "
                f'and {settings_file} has no entry for it. Ask the human to add [local.teachers] "{alias}" = '
                "\"/path/to/teacher\" there (a model sharing the student's vocabulary), or launch with plane='flash'"
            )
        teacher = LocalModel(cached, repo, [f"teacher {repo} from the local Hugging Face cache"])
    if student is not None:
        _same_vocabulary(teacher.path, student)
    return teacher


def _same_vocabulary(teacher: Path, student: Path) -> None:
    sizes = {path: _vocab_size(path) for path in (teacher, student)}
    if sizes[teacher] != sizes[student]:
        raise UserError(
            f"the teacher {teacher} has a vocabulary of {sizes[teacher]} tokens and the student {student} "
            f"{sizes[student]}: local distillation compares their next-token distributions, so both need one "
            "tokenizer; name a teacher of the student's family in [local.teachers], or launch with plane='flash'"
        )


def _vocab_size(model: Path) -> int | None:
    try:
        config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    size = text.get("vocab_size", config.get("vocab_size"))
    return size if isinstance(size, int) else None


def _hf_cache_snapshot(model_id: str) -> Path | None:
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub"
    )
    snapshots = Path(hub) / f"models--{model_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    for snapshot in sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if (snapshot / "config.json").is_file():
            return snapshot
    return None


def build_tiny_model(directory: Path, seed: int = 0) -> Path:
    """A ~30k-parameter Qwen2-style chat model and a byte-level BPE tokenizer, trained offline."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [f"What is {a} + {b}? {a + b}" for a in range(60) for b in range(20)]
    corpus.append("user assistant system Reply with a single integer per turn. higher lower correct guesses secret")
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=2048, tie_word_embeddings=True,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(directory)
    return directory


def local_device() -> str:
    """Which device a local run will use, said without importing torch (whoami, dry_run)."""
    return device_note(gpu_device_nodes(), importlib.util.find_spec("torch") is not None)
