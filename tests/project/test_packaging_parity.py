"""Environment packages: the same members, bytes and refusals as `flash env push` 1.3.28 (folder and single-file)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from flash.cli.commands.env.ops import push as flash_push
from flash.envs.package.direct_tokens import package_contains_direct_token

from flash_mcp.core.errors import UserError
from flash_mcp.domain.packaging.package import build_package, current_digest, tar_gz

ENV = "from freesolo.environments import EnvironmentSingleTurn\n\ndef load_environment(**kwargs):\n    return None\n"


def flash_members(root: Path, name: str) -> dict[str, bytes]:
    """What the real packager would upload, staged exactly as cmd_env_push stages it."""
    _, env_root, entry, full_tree = flash_push._resolve_local_env_entrypoint(root)
    published = flash_push._prepare_env_entrypoint_source(entry.read_bytes())
    flash_push._check_env_push_limits(env_root, entrypoint=entry, include_full_tree=full_tree, env_name=name)
    with tempfile.TemporaryDirectory() as scratch:
        package = Path(scratch)
        (package / "environment.py").write_bytes(published)
        flash_push._write_entrypoint_alias(package, entrypoint=entry)
        flash_push._copy_env_sidecars(env_root, package, entrypoint=entry, include_full_tree=full_tree)
        if not (package / "README.md").exists():
            (package / "README.md").write_text(f"# {name}\n\nFlash Freesolo environment.\n")
        if package_contains_direct_token(package):
            raise ValueError("environment package contains a direct access token")
        return {p.relative_to(package).as_posix(): p.read_bytes() for p in package.rglob("*") if p.is_file()}


def ours(root: Path, name: str) -> dict[str, bytes]:
    return dict(build_package(root, name).members)


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def tree_with_ignores(root: Path) -> None:
    write(root, {
        "environment.py": ENV, "dataset/train.jsonl": '{"input": "a"}\n', "configs/rl.toml": 'model = "x"\n',
        "credentials.py": "KEY_NAME = 'X'\n", "notes/n.txt": "keep me\n", "sub/pyproject.toml": "[x]\n",
        ".env": "SECRET=1\n", ".env.local": "SECRET=2\n", "server.key": "k", "credentials.json": "{}",
        "id_rsa_backup": "k", "prod.env": "A=1", "cert.pem": "p", "pyproject.toml": "[project]\n",
        "source/x.py": "x = 1\n", ".git/config": "[core]\n", "__pycache__/m.pyc": b"\0", "node_modules/a.js": "1",
        "venv/lib.py": "1", "myenv/pyvenv.cfg": "home=/", "myenv/lib.py": "1", ".hidden/file.txt": "h",
        "data/.DS_Store": "d", "secrets/s.txt": "s", "TRAINING.md": "# guide\n",
    })  # fmt: skip


def tree_with_symlinks(root: Path) -> None:
    write(root, {"environment.py": ENV, "real/data.txt": "d", "README.md": "# mine\n"})
    (root / "link.txt").symlink_to(root / "real" / "data.txt")
    (root / "linkdir").symlink_to(root / "real", target_is_directory=True)


def tree_with_nested_modules(root: Path) -> None:
    write(root, {
        "environment.py": "import helpers.scoring\n" + ENV, "helpers/__init__.py": "", "helpers/scoring.py": "x = 1\n",
        "helpers/deep/more.py": "y = 2\n", "evaluations.py": "import helpers\n", "dataset/test.json": "[]",
    })  # fmt: skip


def tree_with_preamble(root: Path) -> None:
    source = (
        '#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n"""Doc\nstring."""\nfrom __future__ import annotations\n'
        "import os\n" + ENV
    )
    write(root, {"environment.py": source})


def tree_with_placeholder_tokens(root: Path) -> None:
    write(root, {"environment.py": ENV, "README.md": "export HF_TOKEN=hf_" + "x" * 34 + "\nfslo_" + "0" * 45 + "\n"})


def tree_without_trailing_newline(root: Path) -> None:
    write(root, {"environment.py": '"""Only a docstring."""'})


def single_file_entry(root: Path) -> None:
    """A renamed entrypoint: its import closure (static, relative, dynamic through aliases) ships, the rest not."""
    write(root, {
        "math_env.py": (
            "import importlib\nfrom importlib import import_module as load\nfetch = load\n"
            "import scoring\nfrom .util import tidy\nplugins = fetch('plugins.extra')\n"
            "late = importlib.import_module('late_mod')\n" + ENV
        ),
        "scoring.py": "from helpers import deep\n", "util.py": "x = 1\n", "late_mod.py": "y = 2\n",
        "helpers/__init__.py": "", "helpers/deep.py": "z = 3\n", "helpers/.hidden.py": "h\n",
        "plugins/__init__.py": "", "plugins/extra.py": "import scoring\n",
        "unrelated.py": "never shipped\n", "notes/n.txt": "not shipped in single-file mode\n",
        "TRAINING.md": "# guide\n", "configs/rl.toml": 'model = "x"\n', "configs/deep/sft.toml": "a = 1\n",
        "configs/readme.txt": "no\n", "root.toml": "b = 2\n", "pyproject.toml": "[project]\n",
        "evaluations.py": "import late_mod\nimport extra_eval\n", "extra_eval.py": "e = 1\n",
        "dataset/train.jsonl": '{"input": "a"}\n', "datasets/more/x.jsonl": "{}\n", "dataset/.env": "S=1\n",
    })  # fmt: skip


SINGLE_FILE = {"single-file entrypoint with an import closure": single_file_entry}
TREES: dict[str, Callable[[Path], None]] = {
    "ignored names and secrets": tree_with_ignores,
    "symlinks": tree_with_symlinks,
    "nested modules": tree_with_nested_modules,
    "shebang, cookie, docstring, __future__": tree_with_preamble,
    "placeholder tokens": tree_with_placeholder_tokens,
    "no trailing newline": tree_without_trailing_newline,
}


@pytest.mark.parametrize("name", [*TREES, *SINGLE_FILE])
def test_same_members_and_bytes_as_flash(tmp_path: Path, name: str) -> None:
    target = tmp_path
    if name in SINGLE_FILE:
        SINGLE_FILE[name](tmp_path)
        target = tmp_path / "math_env.py"
    else:
        TREES[name](tmp_path)
    theirs, mine = flash_members(target, "demo-env"), ours(target, "demo-env")
    assert sorted(mine) == sorted(theirs)
    assert mine == theirs


def test_single_file_mode_ships_the_closure_and_an_alias(tmp_path: Path) -> None:
    single_file_entry(tmp_path)
    members = ours(tmp_path / "math_env.py", "demo-env")
    assert {"scoring.py", "util.py", "late_mod.py", "plugins/extra.py", "helpers/deep.py", "extra_eval.py"} <= set(
        members
    )
    assert not {"unrelated.py", "notes/n.txt", "pyproject.toml", "configs/readme.txt", "dataset/.env"} & set(members)
    assert b"sys.modules[__name__] = _environment" in members["math_env.py"]


def test_the_digest_ignores_configs_but_not_code(tmp_path: Path) -> None:
    tree_with_nested_modules(tmp_path)
    before = current_digest(tmp_path)
    write(tmp_path, {"configs/rl.toml": 'model = "y"\n'})
    assert current_digest(tmp_path) == before
    write(tmp_path, {"helpers/scoring.py": "x = 2\n"})
    assert current_digest(tmp_path) != before


def test_the_upload_is_a_gzip_tar_of_exactly_the_members(tmp_path: Path) -> None:
    import io
    import tarfile

    tree_with_nested_modules(tmp_path)
    members = ours(tmp_path, "demo-env")
    with tarfile.open(fileobj=io.BytesIO(tar_gz(list(members.items()))), mode="r:gz") as tar:
        unpacked = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        names = tar.getnames()
    assert unpacked == members
    assert names.index("environment.py") < names.index("helpers/__init__.py") < names.index("helpers/deep/more.py")


def tree_with_a_token(root: Path) -> None:
    write(root, {"environment.py": ENV, "notes.txt": "key = fslo_" + "Ab3" * 15 + "\n"})


def tree_too_big(root: Path) -> None:
    write(root, {"environment.py": ENV})
    with (root / "huge.bin").open("wb") as handle:
        handle.truncate(257 * 1024 * 1024)


def tree_with_too_many_files(root: Path) -> None:
    write(root, {"environment.py": ENV})
    (root / "many").mkdir()
    for i in range(5000):
        (root / "many" / f"{i}.txt").write_text("x")


def tree_without_entrypoint(root: Path) -> None:
    write(root, {"env.py": ENV})


def tree_with_bad_syntax(root: Path) -> None:
    write(root, {"environment.py": "def broken(:\n"})


REFUSALS: dict[str, tuple[Callable[[Path], None], str]] = {
    "embedded token": (tree_with_a_token, "direct access token"),
    "over 256 MiB": (tree_too_big, "limit 256.0 MB"),
    "over 5000 members": (tree_with_too_many_files, "limit 5,000"),
    "no environment.py": (tree_without_entrypoint, "environment.py"),
    "syntax error": (tree_with_bad_syntax, "invalid Python syntax (line 1)"),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_same_refusals_as_flash(tmp_path: Path, name: str) -> None:
    build, words = REFUSALS[name]
    build(tmp_path)
    with pytest.raises((ValueError, SyntaxError)) as flash_error:
        flash_members(tmp_path, "demo-env")
    with pytest.raises(UserError) as our_error:
        ours(tmp_path, "demo-env")
    assert words in str(our_error.value)
    assert words.split(" (")[0] in str(flash_error.value) or name in ("no environment.py", "syntax error")


def test_a_symlinked_project_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write(real, {"environment.py": ENV})
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    with pytest.raises(UserError, match="symlink"):
        ours(tmp_path / "alias", "demo-env")
    assert os.path.islink(tmp_path / "alias")


def test_the_selection_ships_code_and_data_but_never_secrets(tmp_path: Path) -> None:
    tree_with_ignores(tmp_path)
    members = ours(tmp_path, "demo-env")
    assert {"credentials.py", "notes/n.txt", "sub/pyproject.toml", "dataset/train.jsonl", "README.md"} <= set(members)
    shipped_secrets = {".env", ".env.local", "server.key", "credentials.json", "id_rsa_backup", "prod.env", "cert.pem"}
    assert not shipped_secrets & set(members)
    assert not any(m.startswith(("source/", ".git/", "node_modules/", "venv/", "myenv/", "secrets/")) for m in members)


def test_the_shim_follows_the_module_preamble(tmp_path: Path) -> None:
    tree_with_preamble(tmp_path)
    lines = ours(tmp_path, "demo-env")["environment.py"].decode().splitlines()
    assert lines[5:7] == [
        "import os as _flash_os, sys as _flash_sys",
        "_flash_sys.path.insert(0, _flash_os.path.dirname(__file__))",
    ]
    assert lines[4] == "from __future__ import annotations"
