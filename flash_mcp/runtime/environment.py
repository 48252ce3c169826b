"""Load an environment the way Flash loads it, and render its prompts and completions.

`load` follows flash/envs/loading/loader.py (dataset selection, contract text, then
`freesolo.environments.load_environment(path, **params)`); `prompt` and `fallback_completion`
build the messages Flash trains on. Used by the environment test, the trainer and evaluation,
always in a child process beside the agent's code. freesolo is imported lazily.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

ALLOWED_ROLES = {"system", "user", "assistant", "tool"}
FLASH_PARAMS = {"split", "dataset_path", "records", "contract_path", "contract_text"}


class ContractError(Exception):
    """A row broke the environment contract."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


def load(job: dict[str, Any], lane: tuple[int, int] | None = None) -> tuple[Any, Sequence[Any], dict[str, Any]]:
    """Load `job['entrypoint']` with `job['params']` as Flash does: (environment, examples, facts about them).

    `lane` = (offset, stride): a caller that checks only rows offset, offset + stride, … gets examples converted
    up front for those rows (so a malformed one is a load error there) and on first use for the rest."""
    from freesolo.datasets.records import load_task_examples
    from freesolo.environments import EnvironmentMultiTurn, load_environment

    if lane is not None:  # the environment test's lanes (one lane: every row converted up front, each once)
        load_task_examples = partial(LaneExamples, lane=lane)

    entry = Path(job["entrypoint"]).resolve()
    base = entry.parent
    params = dict(job.get("params") or {})
    source = params.pop("records", None)
    source, prefer_env = _select_dataset(params, base, source)
    contract_path = params.get("contract_path")
    if isinstance(contract_path, str) and contract_path:
        params["contract_path"] = str((base / contract_path).resolve())
    else:
        params.setdefault("contract_path", str(base / "TRAINING_CONTRACT.md"))
    contract = str(params.pop("contract_text", "") or _read_text(params["contract_path"]))
    dropped = _dropped_params(entry, params)
    env = load_environment(str(entry), **params)
    examples = _examples(env, source, prefer_env, load_task_examples)
    env._flash_mcp_contract = contract
    info = {
        "rows": len(examples),
        "multi_turn": isinstance(env, EnvironmentMultiTurn),
        "environment": type(env).__name__,
        "dropped_params": dropped,
        "dataset": str(source) if isinstance(source, str) else ("inline records" if source else "in-code dataset"),
    }
    return env, examples, info


class LaneExamples(Sequence[Any]):
    """`load_task_examples(source)` for one lane: the lane's rows converted now, the others when first read
    (another row's gold as a wrong answer, a candidate's row). The same examples, ids included."""

    def __init__(self, source: Any, lane: tuple[int, int]):
        from freesolo.datasets.records import load_records

        self.items = load_records(source) if isinstance(source, (str, Path)) else list(source)
        self.done: list[Any] = [None] * len(self.items)
        self.build = example_builder()
        offset, stride = lane
        with _collector_paused():  # converting rows leaves no garbage cycles: a collection would only walk the heap
            for index in range(offset % stride, len(self.items), stride):
                self[index]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]  # rows are read one at a time
        example = self.done[index]
        if example is None:
            position = index % len(self.items)
            example = self.done[index] = self.build(self.items[position], position)
        return example


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def example_builder() -> Callable[[Any, int], Any]:
    """`load_task_examples`' example for one item and its position, built once: `task_example_from_record` with the
    positional id (replacing the id afterwards, as the SDK does, builds each example twice). The SDK is imported
    here, once, not per row."""
    from freesolo.datasets.records import (
        TaskExample,
        infer_output,
        normalize_record,
        stable_example_id,
        task_example_from_source_item,
    )

    def build(item: Any, position: int) -> Any:
        if isinstance(item, TaskExample):
            return replace(task_example_from_source_item(item), id=stable_example_id(position))
        view = normalize_record(item)
        return TaskExample(
            record=item, input=view["input"], id=stable_example_id(position), metadata=view["metadata"],
            output=infer_output(item),
        )  # fmt: skip

    return build


def _select_dataset(params: dict[str, Any], base: Path, source: Any) -> tuple[Any, bool]:
    split = params.get("split")
    split = split.strip() if isinstance(split, str) else None
    if isinstance(params.get("split"), str):
        params["split"] = split or ""
    side_split = bool(split) and split != "train"
    if source is None and params.get("dataset_path"):
        resolved = str((base / str(params["dataset_path"])).resolve())
        params["dataset_path"] = resolved
        train = _packaged(base, "train")
        return resolved, not side_split and train is not None and Path(resolved) == train.resolve()
    if source is not None:
        return source, False
    wanted = split if side_split else "train"
    found = _packaged(base, wanted)
    if found is None and side_split and _packaged(base, "train"):
        raise ValueError(
            f"[environment.params] split={split!r} was requested but no dataset/{split}.jsonl or {split}.json "
            "exists in the environment; refusing to fall back to the default train split"
        )
    if found is None:
        if (base / "datasets").is_dir() and not (base / "dataset").is_dir():
            raise ValueError(
                "environment has a top-level 'datasets/' directory, which Flash never reads; rename it to 'dataset/'"
            )
        return None, True
    params.setdefault("dataset_path", str(found))
    return str(found), wanted == "train"


def _packaged(base: Path, name: str) -> Path | None:
    for rel in (f"dataset/{name}.jsonl", f"dataset/{name}.json", f"{name}.jsonl", f"{name}.json"):
        if (base / rel).is_file():
            return base / rel
    return None


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def _dropped_params(entry: Path, params: dict[str, Any]) -> list[str]:
    """Params `load_environment` will not receive: the SDK passes only declared names."""
    names = [name for name in params if name not in FLASH_PARAMS]
    if not names:
        return []
    spec = importlib.util.spec_from_file_location("_flash_mcp_signature_probe", entry)
    if spec is None or spec.loader is None:
        return []
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        parameters = inspect.signature(module.load_environment).parameters.values()
    except BaseException:
        return []  # the real load below reports the failure
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return []
    declared = {p.name for p in parameters}
    return [name for name in names if name not in declared]


def _examples(env: Any, source: Any, prefer_env: bool, load_task_examples: Any) -> list[Any]:
    rows = getattr(env, "dataset", None)
    if rows is None:
        rows = getattr(env, "examples", None)
    env_first = source is None or prefer_env
    if rows is not None and len(rows) == 0 and env_first:
        raise ValueError("environment produced 0 rows: its in-code dataset is empty")
    if rows and env_first:
        return load_task_examples(rows)
    if source is not None:
        return load_task_examples(source)
    raise ValueError("environment has no dataset: add dataset/train.jsonl or set [environment.params] dataset_path")


def prompt(env: Any, example: Any) -> list[dict]:
    """The prompt messages Flash sends for `example`: start_episode, the contract as system text, checked."""
    return checked_messages(
        with_system(env.start_episode(example, env._flash_mcp_contract), env._flash_mcp_contract), "prompt"
    )


def with_system(messages: Any, contract: str) -> Any:
    text = str(contract or "").strip()
    if not text or not isinstance(messages, list):
        return messages
    out = [dict(m) if isinstance(m, dict) else m for m in messages]
    for m in out:
        if isinstance(m, dict) and str(m.get("role") or "").strip().lower() == "system" and m.get("content"):
            return out
    return [{"role": "system", "content": text}, *out]


def checked_messages(messages: Any, label: str) -> list[dict]:
    """`messages` if they are a well-formed chat message list, else a ContractError naming `label`."""
    if not isinstance(messages, list) or not messages:
        raise ContractError(label, f"{label} is not well-formed: {label} must be a non-empty list")
    for index, message in enumerate(messages):
        if type(message) is dict and _plain_message(message):
            continue
        if not isinstance(message, dict):
            raise ContractError(label, f"{label} is not well-formed: {label} message {index} must be a dict")
        role = message.get("role")
        name = role.strip() if isinstance(role, str) else ""
        if not name:
            raise ContractError(label, f"{label} message {index} must have a non-empty string role")
        if name.lower() not in ALLOWED_ROLES:
            raise ContractError(label, f"{label} message {index} has unsupported role {role!r}")
        if "content" not in message:
            raise ContractError(label, f"{label} message {index} must have a content key")
        content = message["content"]
        if content is not None and not isinstance(content, (str, list)):
            raise ContractError(label, f"{label} message {index} content must be a string, a block list, or null")
    return messages


def _plain_message(message: dict) -> bool:
    """The common message, well-formed as it is: a bare role and text content (every check would pass)."""
    role = message.get("role")
    return type(role) is str and role in ALLOWED_ROLES and type(message.get("content")) is str


def fallback_completion(example: Any) -> list[dict]:
    """The reference completion when `sft_completion` returns nothing: the row's output as one assistant turn."""
    value = example.output
    return [{"role": "assistant", "content": "" if value is None else str(value)}]
