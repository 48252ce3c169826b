"""Environment ids Flash accepts in `[environment] id` (flash/envs/meta/identity.py, 1.3.28)."""

from __future__ import annotations

import re
import urllib.parse

_SAFE_PART = re.compile(r"^[A-Za-z0-9._-]+$")


def is_environment_id(value: str) -> bool:
    """A managed slug `org/project/name` or a GitHub reference."""
    return _is_managed_slug(value) or _is_github_ref(value)


def _safe(parts: list[str] | tuple[str, ...]) -> bool:
    return bool(parts) and all(p not in {".", "..", ""} and _SAFE_PART.fullmatch(p) for p in parts)


def _is_managed_slug(value: str) -> bool:
    text = (value or "").strip()
    if not text or ":" in text:
        return False
    parsed = urllib.parse.urlparse(text)
    if parsed.scheme or parsed.netloc:
        return False
    parts = text.split("/")
    return len(parts) == 3 and _safe(parts)


def _safe_env_path(path: str) -> bool:
    parts = [part for part in path.strip().replace("\\", "/").split("/") if part]
    return not path.strip().startswith("/") and not any(part in {".", ".."} for part in parts)


def _is_github_ref(value: str) -> bool:
    text = (value or "").strip()
    if text.startswith("github:"):
        repo_ref, _, path = text[len("github:") :].partition(":")
        if path and not _safe_env_path(path):
            return False
        repo, at, ref = repo_ref.partition("@")
        if at and not _safe((ref,)):
            return False
        owner_repo = repo.split("/")
        return len(owner_repo) == 2 and _safe(owner_repo)
    parsed = urllib.parse.urlparse(text)
    if parsed.scheme not in {"http", "https"} or parsed.netloc.lower() != "github.com":
        return False
    parts = [urllib.parse.unquote(p) for p in parsed.path.strip("/").split("/") if p]
    if len(parts) < 2:
        return False
    owner, repo = parts[0], parts[1].removesuffix(".git")
    if not _safe((owner, repo)):
        return False
    if len(parts) >= 5 and parts[2] in {"blob", "tree"}:
        return _safe((parts[3],)) and _safe_env_path("/".join(parts[4:]))
    return len(parts) == 2
