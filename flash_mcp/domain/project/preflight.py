"""check_project: a fast static preflight for the mistakes that surface only on a paid GPU.

Nothing here imports or runs the user's code: environment.py is parsed with `ast`, datasets are
read as data, configs go through the same validator as validate_config. Covers the
plane-independent pitfalls of flash-reference.md §9.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flash_mcp.core import pysource
from flash_mcp.core.errors import UserError
from flash_mcp.core.findings import Finding, Severity
from flash_mcp.domain.config.rules import INVALID
from flash_mcp.domain.config.validate import Validation, count_rows, validate_raw
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.dataset import first_rows, gold_text, iter_rows, row_id, row_problem
from flash_mcp.domain.project.files import list_files
from flash_mcp.domain.project.secrets import secret_available

FLASH_PARAMS = {"split", "dataset_path", "records", "contract_path", "contract_text"}
PLACEHOLDER_IDS = ("your-org", "OWNER/REPO", "@REF", "<", "example-org")
MAX_FINDINGS = 60
MAX_SOURCE_BYTES = 8 * 1024 * 1024
THINKING_ROWS_CHECKED = 10_000
# import name -> distribution name, where they differ
IMPORT_ALIASES = {
    "sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow", "cv2": "opencv-python", "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil", "attr": "attrs", "Crypto": "pycryptodome", "jwt": "pyjwt",
    "dotenv": "python-dotenv", "serial": "pyserial", "docx": "python-docx", "fitz": "pymupdf",
    "skimage": "scikit-image", "magic": "python-magic", "Levenshtein": "python-levenshtein",
}  # fmt: skip
ALWAYS_PRESENT = {"freesolo", "flash"}


@dataclass
class Preflight:
    findings: list[Finding] = field(default_factory=list)

    def add(self, code: str, severity: Severity, message: str, fix: str, where: str = "") -> None:
        self.findings.append(Finding(code=code, severity=severity, message=message, fix=fix, where=where))


def check_project(
    project: Path, configs: list[Path], relative, read: dict[Path, tuple[dict[str, Any], Validation]] | None = None
) -> list[Finding]:
    """Findings for a project folder and the configs that train on it (all of configs/ by default); `read`:
    configs the caller already parsed and validated (a launch), not read again."""
    found = Preflight()
    source, tree = _environment_source(project, found)
    if not configs:
        configs = list_files(project / "configs", ".toml", relative(project / "configs"))
        if not configs:
            found.add("no-configs", "warning", "no configs/*.toml in the project", "run setup_project to scaffold them")
    _check_layout(project, found)
    for config in configs:
        _check_config(project, config, relative(config), source, tree, found, (read or {}).get(config))
    errors = [f for f in found.findings if f.severity == "error"]
    warnings = [f for f in found.findings if f.severity == "warning"]
    return (errors + warnings)[:MAX_FINDINGS]


def _environment_source(project: Path, found: Preflight) -> tuple[str, ast.Module | None]:
    entry = project / "environment.py"
    if safe_fs.lstat(entry) is None:
        found.add(
            "no-environment",
            "error",
            "the project has no environment.py, which Flash loads as the entrypoint",
            "run setup_project, or move the entrypoint to environment.py",
        )
        return "", None
    source = safe_fs.read_text(entry, MAX_SOURCE_BYTES, "environment.py", errors="replace")
    try:
        tree = pysource.parse(source)
    except SyntaxError as exc:
        found.add(
            "environment-syntax",
            "error",
            f"environment.py has invalid Python syntax (line {exc.lineno}): {exc.msg}",
            "fix the syntax",
            "environment.py",
        )
        return source, None
    if _factory(tree) is None:
        found.add(
            "no-load-environment",
            "error",
            "environment.py defines no top-level load_environment(), the factory Flash calls",
            "add def load_environment(**kwargs) returning your environment instance",
            "environment.py",
        )
    return source, tree


def _check_layout(project: Path, found: Preflight) -> None:
    if (project / "datasets").is_dir():
        severity = "warning" if (project / "dataset").is_dir() else "error"
        found.add(
            "datasets-dir",
            severity,
            "a top-level datasets/ directory is never read by Flash (it reads dataset/<split>.jsonl)",
            "rename datasets/ to dataset/, or set [environment.params] dataset_path",
            "datasets/",
        )
    for path in list_files(project / "dataset", ".jsonl", "dataset"):
        first, bad = None, 0
        for row in iter_rows(path, f"dataset/{path.name}"):
            if problem := row.error or row_problem(row.value):
                first, bad = first or (row, problem), bad + 1
        if first:
            row, problem = first
            found.add(
                "dataset-rows-invalid",
                "error",
                f"{bad} row(s) of {path.name} break the row contract; first: {row_id(row.index)} "
                f"(line {row.line}): {problem}",
                "fix those lines: one JSON object per line with `input` (and `output`, `metadata`)",
                f"dataset/{path.name}",
            )


def _check_config(project: Path, config: Path, name: str, source: str, tree, found: Preflight,
                  read: tuple[dict[str, Any], Validation] | None = None) -> None:  # fmt: skip
    if read is None:
        try:
            raw = tomllib.loads(safe_fs.read_text(config, MAX_SOURCE_BYTES, name))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            found.add("config-unreadable", "error", f"{name} is not valid TOML: {exc}", "fix the syntax", name)
            return
        read = raw, validate_raw(raw, project_dir=project)
    raw, validation = read
    env = raw.get("environment") if isinstance(raw.get("environment"), dict) else {}
    params = env.get("params") if isinstance(env.get("params"), dict) else {}
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    _check_environment_id(env, name, found)
    for error in validation.errors:
        if error.where != "environment.id":
            found.add(INVALID, "error", f"{error.where}: {error.message}", error.fix, name)
    for waste in validation.waste:
        found.add(waste.code, "error", waste.message, waste.fix, name)
    if tree is not None:
        _check_params(tree, params, name, found)
        _check_pip(project, tree, env.get("pip"), name, found)
    _check_rows(project, params, train, name, found)
    _check_secrets(project, env.get("secrets"), name, found)
    _check_kind(source, raw, train, name, found)
    if raw.get("thinking") is True:
        _check_thinking_golds(project, params, name, found)


def _check_environment_id(env: dict[str, Any], name: str, found: Preflight) -> None:
    value = str(env.get("id") or "")
    if not value:
        found.add(
            "environment-id-missing",
            "error",
            "[environment] id is empty: Flash refuses the config until it names a pushed environment",
            "push the environment (push_environment fills the id) or paste the id from `flash env push`",
            name,
        )
    elif any(marker in value for marker in PLACEHOLDER_IDS):
        found.add(
            "environment-id-placeholder",
            "error",
            f"[environment] id {value!r} is still a placeholder",
            "replace it with the id your push returned",
            name,
        )


def _factory(tree: ast.Module) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "load_environment":
            return node
    return None


def _check_params(tree: ast.Module, params: dict[str, Any], name: str, found: Preflight) -> None:
    factory = _factory(tree)
    wanted = [key for key in params if key not in FLASH_PARAMS]
    if factory is None or not wanted:
        return
    declared = {a.arg for a in factory.args.args + factory.args.kwonlyargs + factory.args.posonlyargs}
    mentioned = {n.value for n in ast.walk(factory) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for key in wanted:
        if key in declared:
            continue
        if factory.args.kwarg is None:
            found.add(
                "param-dropped",
                "error",
                f"[environment.params] {key} is not a parameter of load_environment, so the SDK drops it silently",
                f"add {key} to load_environment's signature, or remove it from the config",
                name,
            )
        elif key not in mentioned:
            found.add(
                "param-swallowed",
                "warning",
                f"[environment.params] {key} lands in load_environment's **kwargs, which never reads it",
                f"name {key} in load_environment's signature and use it, or remove it from the config",
                name,
            )


def _check_rows(project: Path, params: dict[str, Any], train: dict[str, Any], name: str, found: Preflight) -> None:
    split = params.get("split")
    if isinstance(split, str) and split.strip() and "dataset_path" not in params:
        split = split.strip()
        if not any((project / "dataset" / f"{split}{ext}").is_file() for ext in (".jsonl", ".json")):
            found.add(
                "split-missing",
                "error",
                f"split {split!r} has no dataset/{split}.jsonl; Flash refuses rather than train on another split",
                f"add dataset/{split}.jsonl or remove the split param",
                name,
            )
            return
    rows = count_rows(project, params)
    cap = train.get("max_examples")
    if rows is None or not isinstance(cap, int) or isinstance(cap, bool) or cap <= 0:
        return
    if cap < rows:
        found.add(
            "max-examples-below-rows",
            "warning",
            f"max_examples = {cap} trains on {cap} of the {rows} rows in the split",
            f"set max_examples = {rows} (or 0 for all rows) unless a subset is intended",
            name,
        )
    elif cap > rows:
        found.add(
            "max-examples-above-rows",
            "warning",
            f"max_examples = {cap} but the split has {rows} rows: the run sees {rows}, and GRPO/OPD steps and "
            f"the quote are sized for {cap}",
            f"set max_examples = {rows}",
            name,
        )


def _check_secrets(project: Path, secrets: Any, name: str, found: Preflight) -> None:
    if not isinstance(secrets, list):
        return
    for secret in secrets:
        if isinstance(secret, str) and not secret_available(secret, project):
            found.add(
                "secret-missing",
                "error",
                f"declared secret {secret} is not set in the environment or a .env file; submit would fail",
                f"ask the human to export {secret} or add it to .env (never paste it into a tool)",
                name,
            )


def _check_pip(project: Path, tree: ast.Module, pip: Any, name: str, found: Preflight) -> None:
    covered = {_normalize(re.split(r"[\s\[<>=!~;@]", req, maxsplit=1)[0]) for req in pip or [] if isinstance(req, str)}
    for module in sorted(_third_party_imports(project, tree)):
        if _normalize(module) in covered or _normalize(IMPORT_ALIASES.get(module, module)) in covered:
            continue
        found.add(
            "pip-missing",
            "warning",
            f"environment.py imports {module}, which [environment] pip does not list: on the worker the import "
            "fails and every reward is 0",
            f'add pip = ["{IMPORT_ALIASES.get(module, module)}"] under [environment]',
            name,
        )


def _third_party_imports(project: Path, tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    local = {p.stem for p in project.glob("*.py")} | {p.name for p in project.iterdir() if p.is_dir()}
    return {n for n in names if n not in sys.stdlib_module_names and n not in local and n not in ALWAYS_PRESENT}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_kind(source: str, raw: dict[str, Any], train: dict[str, Any], name: str, found: Preflight) -> None:
    multi = "EnvironmentMultiTurn" in source
    algorithm = str(raw.get("algorithm") or "sft").lower()
    if multi and algorithm == "opd" and train.get("structured_outputs"):
        found.add(
            "opd-multi-turn-structured",
            "error",
            "multi-turn OPD with structured_outputs fails at worker startup",
            "remove structured_outputs, or train this environment with grpo",
            name,
        )
    if str(train.get("credit_assignment", "")).strip().lower() == "per_turn":
        if not multi:
            found.add(
                "per-turn-single-turn",
                "warning",
                'credit_assignment = "per_turn" on a single-turn environment has no turns to assign',
                "remove credit_assignment",
                name,
            )
        elif "per_turn_rewards" not in source:
            found.add(
                "per-turn-inert",
                "warning",
                'credit_assignment = "per_turn" is inert: environment.py never emits per_turn_rewards',
                "return metadata={'per_turn_rewards': [...]} from score_episode, one per assistant turn",
                name,
            )


def _check_thinking_golds(project: Path, params: dict[str, Any], name: str, found: Preflight) -> None:
    split = params.get("split") if isinstance(params.get("split"), str) else "train"
    path = project / "dataset" / f"{split}.jsonl"
    if not safe_fs.is_regular(path):
        return
    try:
        rows = first_rows(path, THINKING_ROWS_CHECKED, f"dataset/{path.name}")
    except UserError:
        return
    missing = [row for row in rows if gold_text(row.value) and "<think>" not in gold_text(row.value)]
    if missing:
        found.add(
            "think-tags-missing",
            "warning",
            f"thinking = true but {len(missing)} gold answer(s) have no <think>...</think> block "
            f"(first: {row_id(missing[0].index)})",
            "add a <think>...</think> block before each gold answer, or set thinking = false",
            name,
        )
