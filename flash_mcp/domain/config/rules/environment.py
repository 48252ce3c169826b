"""[environment]: params, pip requirements, secrets and the environment id."""

from __future__ import annotations

import json
import re
from typing import Any

from flash_mcp.domain.config.env_ids import is_environment_id
from flash_mcp.domain.config.rules.base import RuleBase, echo
from flash_mcp.domain.config.schema import (
    ENVIRONMENT_KEYS,
)

RESERVED_SECRETS = frozenset(
    {
        "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GITHUB_TOKEN",
        "FREESOLO_API_KEY", "FREESOLO_INTERNAL_KEY", "RUN_ID", "HF_REPO", "GIT_ASKPASS", "FLASH_ARM", "SEED",
        "FLASH_OPD_RESUME_REVISION", "FLASH_PUBLIC_URL", "FLASH_TEACHER_CAPABILITY", "FLASH_SECRET_ENV_KEYS",
        "PARASAIL_API_KEY",
    }
)  # fmt: skip
GRPO_RESERVED_SECRETS = frozenset(
    {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS",
     "TOKENIZERS_PARALLELISM"}
)  # fmt: skip
_PIP_USERINFO = re.compile(r"://[^/@\s]+@")
_PIP_QUERY = re.compile(r"://[^\s]*\?")


class EnvironmentRules(RuleBase):
    def _environment(self, env: dict[str, Any], algorithm: str | None) -> None:
        args_fix = "use params = { ... } for load_environment arguments"
        if self._unknown_keys("environment", env, ENVIRONMENT_KEYS, lambda k: args_fix if k == "args" else "remove it"):
            return
        if env.get("params") is not None and not isinstance(env["params"], dict):
            self.fail(
                "environment.params", "[environment] params must be a table", 'write params = { split = "train" }'
            )
            return
        self.parsed.environment["params"] = dict(env.get("params") or {})
        self.parsed.environment["pip"] = self.attempt(self._pip, env.get("pip"))
        self.parsed.environment["secrets"] = self.attempt(self._secrets, env.get("secrets"), algorithm)

    def _pip(self, raw: Any) -> list[str]:
        key = "environment.pip"
        if raw is None:
            return []
        if isinstance(raw, str):
            shown = '"<redacted url>"' if "://" in raw else json.dumps(raw)
            raise self.fail(
                key,
                f"[environment] pip must be a list of requirement strings, not a string: use [{shown}]",
                f"write pip = [{shown}]",
            )
        if not isinstance(raw, (list, tuple)):
            raise self.fail(key, "[environment] pip must be a list of requirement strings", 'write pip = ["pkg>=1.0"]')
        requirements = []
        for item in raw:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(
                    key,
                    f"[environment] pip entries must be non-empty requirement strings (got: {echo(item)})",
                    "remove empty or non-string entries",
                )
            requirement = item.strip()
            if requirement.startswith("-"):
                raise self.fail(
                    key,
                    f"[environment] pip entries must be requirements, not pip options (got: {echo(requirement)})",
                    "list package requirements only",
                )
            if _PIP_USERINFO.search(requirement) or _PIP_QUERY.search(requirement):
                raise self.fail(
                    key,
                    "[environment] pip entries must not embed credentials in a URL: the spec is stored "
                    "and uploaded in plaintext. Use [environment] secrets for the credential and an "
                    "unauthenticated requirement URL without a query string.",
                    "remove the credential or query string from the URL",
                )
            requirements.append(requirement)
        return requirements

    def _secrets(self, raw: Any, algorithm: str | None) -> list[str]:
        key = "environment.secrets"
        if raw is None:
            return []
        if not isinstance(raw, (list, tuple)):
            raise self.fail(
                key, "[environment] secrets must be a list of environment variable names", 'write secrets = ["API_KEY"]'
            )
        if not all(isinstance(name, str) for name in raw):
            raise self.fail(key, "[environment] secrets entries must be strings", "quote every name")
        names = list(dict.fromkeys(raw))
        bad = sorted(repr(n) for n in names if not n or any(c in n for c in "=,\0 \t\n\r"))
        if bad:
            raise self.fail(
                key,
                f"[environment] secrets has invalid environment variable name(s): {', '.join(bad)}; an env var "
                "name must be non-empty and contain no '=', ',', whitespace, or NUL byte",
                "list variable names only, never values",
            )
        reserved = RESERVED_SECRETS | (GRPO_RESERVED_SECRETS if algorithm == "grpo" else frozenset())
        taken = sorted(n for n in names if n.upper() in reserved)
        if taken:
            raise self.fail(
                key,
                f"[environment] secrets must not include platform-managed key(s): {', '.join(taken)}",
                f"remove {', '.join(taken)}; the platform provides it",
            )
        return names

    def _environment_id(self, env: dict[str, Any]) -> None:
        value = str(env.get("id") or "")
        if not value:
            raise self.fail(
                "environment.id",
                "config must set [environment] id (upload an environment with `flash env push --project "
                '<project-uuid> --name <name>` and paste the returned id, e.g. "your-org/your-project/your-env"); '
                "there is no local path mode",
                "push the environment (push_environment fills the id), or paste the id `flash env push` printed",
            )
        if not is_environment_id(value):
            raise self.fail(
                "environment.id",
                '[environment] id must be a Freesolo environment id (for example "your-org/your-project/your-env")',
                "use the id returned by the push, in org/project/name form",
            )
        self.parsed.environment["id"] = value
