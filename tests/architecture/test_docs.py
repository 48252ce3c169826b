"""The README cannot rot: its commands run in CI and it names everything the server offers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
pytestmark = pytest.mark.anyio


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README)


def test_readme_opens_with_exactly_the_two_setup_commands() -> None:
    head = README.split("## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", head)
    assert len(commands) == 2
    serve, test = commands
    assert "flash-mcp serve" in serve and "pytest" in test


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    test_command = _commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci and "bash .ci/conformance" in ci


def test_the_first_command_serves_a_named_workspace_that_exists() -> None:
    serve = _commands()[0]
    assert "--workspace ." not in serve and "mkdir -p ~/my-project" in serve
    assert "--workspace ~/my-project" in serve


def test_every_command_uses_the_venvs_programs() -> None:
    """Nothing activates the venv, so a bare `flash-mcp`, `flash`, `pytest` or `ruff` would be "command not found"."""
    bare = re.compile(r"(^|&&\s*|;\s*|\|\s*)(flash-mcp|flash|pytest|ruff|pip)\b")
    for block in re.findall(r"```bash\n(.+?)\n```", README, flags=re.S):
        for line in block.splitlines():
            command = line.split("#", 1)[0].replace("UPDATE_SNAPSHOTS=1 ", "")
            assert not bare.search(command.strip()), f"use .venv/bin/...: {line}"


def test_every_conformance_omission_is_explained() -> None:
    text = (ROOT / ".ci" / "conformance-expected-failures.yml").read_text(encoding="utf-8")
    entries = re.findall(r"^  - (\S+)$", text, flags=re.M)
    assert entries, "the expected-failures file lists scenarios"
    blocks = re.split(r"\n(?=  #)", text.split("server:", 1)[1])
    for block in blocks:
        listed = re.findall(r"^  - (\S+)$", block, flags=re.M)
        assert not listed or "  # " in block, f"explain why {listed} fail"


async def test_readme_names_every_tool_resource_and_prompt(client: Client) -> None:
    names = [tool.name for tool in (await client.list_tools()).tools]
    names += [resource.uri for resource in (await client.list_resources()).resources]
    names += [template.uri_template for template in (await client.list_resource_templates()).resource_templates]
    names += [prompt.name for prompt in (await client.list_prompts()).prompts]
    missing = [name for name in names if f"`{name}`" not in README]
    assert not missing, f"document these in README.md: {missing}"


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout


# What each `monkeypatch.setattr(<module>, "<name>", ...)` under tests/flashplane/ replaces: an outside boundary
# (named in the README) or None for the test's own wiring and scenarios. A new stub must be classified here.
FLASH_PLANE_STUBS = {
    "preparation._resolve_model_revision": "Hugging Face",
    "vram.fetch_hf_model_geometry": "Hugging Face",
    "provider_worker.publish_source_snapshot": "Hugging Face",
    "artifacts.stage_environment_package": "Hugging Face",
    "runtime._worker_artifacts": "Hugging Face",
    "checkpoint_service.list_checkpoints": "Hugging Face",
    "supervision._run_job_inner": "Modal",
    "ModalProvider.submit_attempt": "Modal",
    "modal_api.terminate": "Modal",
    "modal_api.get_instance": "Modal",
    "modal_api.list_instances": "Modal",
    "checkpoint_upload.run_volumes": "Modal",
    "checkpoint_upload.cleanup": "Modal",
    "envs._repo_url": "GitHub",
    "loader._resolve_ref_sha": "GitHub",
    "serving_deploy.deploy_adapter": "the served model",
    "serving_deploy.chat": "the served model",
    "serving_deploy.undeploy_adapter": "the served model",
    "serving_deploy.fetch_registered_checkpoint": "the served model",
    "serving_smoke._run_deployment_smoke": "the served model",
    "state.RUNS_DIR": None,  # the data directory, moved into tmp_path
    "state.RESULTS_DIR": None,
    "db.DB_PATH": None,
    "flash_mcp.planes.make_plane": None,  # the server under test talks to the in-process app
    "pricing.CPU_HOURLY": None,  # a scenario: a pricier CPU
}


def _flash_plane_boundaries() -> set[str]:
    found: set[str] = set()
    for path in sorted((ROOT / "tests" / "flashplane").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        for target, name in re.findall(r"monkeypatch\.setattr\(\s*([\w.]+),\s*\"(\w+)\"", source):
            key = f"{target}.{name}"
            assert key in FLASH_PLANE_STUBS, f"{path.name} stubs {key}: classify it in FLASH_PLANE_STUBS and the README"
            found.add(FLASH_PLANE_STUBS[key])
        if "FREESOLO_BASE_URL" in source:  # the hosted plane's backend is a local HTTP server, set by address
            found.add("the Freesolo backend")
    return found - {None}


def test_the_readme_names_exactly_what_the_flash_plane_tests_stub() -> None:
    paragraph = README.split("Stubbed, exactly", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"\*\*(.+?)\*\*", paragraph)) == _flash_plane_boundaries()


def _readme_number(pattern: str) -> int:
    found = re.search(pattern, " ".join(README.split()))
    assert found, f"README.md no longer states {pattern!r}"
    return int(found.group(1).replace(",", ""))


async def test_the_readmes_tools_list_figures_are_the_programs(client: Client) -> None:
    """The size an agent reads: the whole `tools/list` result as compact JSON, and that / 4 in tokens."""
    tools = (await client.list_tools()).tools
    sent = json.dumps(
        [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools], separators=(",", ":")
    )
    live = {"tools": len(tools), "characters": len(sent), "tokens": len(sent) // 4}
    stated = {
        "tools": _readme_number(r"tokens at 4 characters a token\) for the (\d+) tools"),
        "characters": _readme_number(r"about ([\d,]+) characters of compact JSON"),
        "tokens": _readme_number(r"\(about ([\d,]+) tokens at 4 characters a token\)"),
    }
    assert stated["tools"] == live["tools"], f"README.md: say {live}"
    for figure in ("characters", "tokens"):
        assert abs(stated[figure] - live[figure]) <= 0.05 * live[figure], f"README.md: say {live}"


def test_both_installs_take_the_one_constraints_file() -> None:
    """The README's user install and its test install (which CI runs verbatim) resolve against the same pins."""
    serve, test = _commands()[:2]
    for command in (serve, test):
        assert "pip install -c constraints.txt -e " in command, command
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert "pip install torch==" + pins["torch"] in serve and "pip install torch==" + pins["torch"] in test
    for package in ("transformers", "tokenizers", "trl", "peft", "mcp", "freesolo-flash"):
        assert package in pins, f"constraints.txt pins {package}"


def test_the_tests_run_the_pinned_versions() -> None:
    from importlib.metadata import PackageNotFoundError, version

    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        package, pinned = line.split("==", 1)
        try:
            installed = version(package).split("+", 1)[0]  # torch's local label (+cpu, +cu128) is the same release
        except PackageNotFoundError:
            pytest.fail(f"{package} is pinned but not installed: reinstall with the README's test command")
        assert installed == pinned, f"{package} {installed} is installed, constraints.txt pins {pinned}"


def _readme_tool_table() -> dict[str, tuple[str, str, str]]:
    """The README's tool table: name -> (read-only, destructive, idempotent) as written."""
    section = README.split("### Tools", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|.*\| (yes|no) \| (yes|no) \| (yes|no) \|$", section, flags=re.M)
    assert rows, "the README has a tool table"
    names = [name for name, *_ in rows]
    assert len(names) == len(set(names)), "each tool has one row"
    return {name: tuple(hints) for name, *hints in rows}


async def test_the_readmes_tool_table_is_the_servers_tools_list(client: Client) -> None:
    """Every listed tool has a row, every row names a listed tool, and its three hints are the tool's annotations."""
    table = _readme_tool_table()
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert sorted(tools) == sorted(table), (
        f"add rows for {sorted(set(tools) - set(table))}; drop rows for {sorted(set(table) - set(tools))}"
    )
    word = {True: "yes", False: "no"}
    for name, tool in tools.items():
        hints = tool.annotations  # omitted hints take the spec's defaults; a read-only tool changes nothing
        read_only = hints.read_only_hint is True
        destructive = not read_only and hints.destructive_hint is not False
        idempotent = read_only or hints.idempotent_hint is True
        written = (word[read_only], word[destructive], word[idempotent])
        assert table[name] == written, f"{name}: the README says {table[name]}, tools/list says {written}"
