"""[gpu]: count, provider and accelerator types."""

from __future__ import annotations

from typing import Any

from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.rules.base import Invalid, RuleBase, suggest
from flash_mcp.domain.config.schema import (
    GPU_KEYS,
)


class GpuRules(RuleBase):
    def _gpu(self) -> None:
        gpu = self._table("gpu")
        managed = "remove {}; the platform manages disk, retries and wall time"
        if self._unknown_keys("gpu", gpu, sorted(GPU_KEYS), managed.format):
            raise Invalid()
        count = self._gpu_count(gpu)
        provider = self._gpu_provider(gpu)
        types = self._gpu_types(gpu.get("type", ""))
        providers = self._gpu_providers(gpu)
        if provider and providers:
            raise self.fail(
                "gpu.provider",
                "gpu.provider and gpu.providers cannot both be set",
                "keep provider (a hard pin) or providers (a preference), not both",
            )
        self.parsed.gpu = {"type": types, "count": count, "provider": provider, "providers": providers}

    def _gpu_count(self, gpu: dict[str, Any]) -> int | None:
        value = gpu.get("count")
        if value is None:
            return None
        knob = type("K", (), {"minimum": 1, "maximum": catalog.MAX_GPU_COUNT})
        return self._int("gpu.count", value, knob)

    def _gpu_provider(self, gpu: dict[str, Any]) -> str:
        raw = gpu.get("provider", "")
        if not isinstance(raw, str):
            raise self.fail("gpu.provider", "gpu.provider must be a string", 'write provider = "modal"')
        name = raw.strip().lower()
        if name and name not in catalog.PROVIDERS:
            raise self.fail(
                "gpu.provider",
                f"gpu.provider must be one of {', '.join(catalog.PROVIDERS)}; got {raw!r}",
                'use provider = "modal", or remove it',
            )
        return name

    def _gpu_types(self, raw: Any) -> list[str]:
        key = "gpu.type"
        if isinstance(raw, str):
            entries = [raw] if raw.strip() else []
        elif isinstance(raw, (list, tuple)):
            entries = list(raw)
            if not entries:
                raise self.fail(
                    key,
                    "[gpu] type must not be an empty list; omit the key for managed allocation, or name the classes "
                    'to allow, e.g. type = ["H100", "A100 SXM"]',
                    "remove type, or list at least one class",
                )
        else:
            raise self.fail(key, "gpu.type must be a string or a list of strings", 'write type = "H100"')
        if any(not isinstance(entry, str) for entry in entries):
            raise self.fail(key, "gpu.type entries must be strings", "quote every class name")
        if any(not entry.strip() for entry in entries):
            raise self.fail(key, "gpu.type entries must not be empty", "remove empty entries")
        canonical: list[str] = []
        for entry in entries:
            name = catalog.canonical_gpu(entry)
            if name is None:
                known = ", ".join(catalog.GPUS)
                raise self.fail(
                    key,
                    f"gpu.type: unsupported gpu {entry!r}; Flash manages {known}",
                    suggest(entry, catalog.GPUS, f"use one of: {known}"),
                )
            if name not in canonical:
                canonical.append(name)
        return canonical

    def _gpu_providers(self, gpu: dict[str, Any]) -> list[str]:
        raw = gpu.get("providers")
        if raw is None:
            return []
        if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
            raise self.fail("gpu.providers", "gpu.providers must be a list of provider names", 'write ["modal"]')
        if not raw:
            raise self.fail("gpu.providers", "gpu.providers must name at least one provider", 'write ["modal"]')
        names: list[str] = []
        for entry in raw:
            if not isinstance(entry, str):
                raise self.fail("gpu.providers", "gpu.providers entries must be strings", 'write ["modal"]')
            name = entry.strip().lower()
            if name not in catalog.PROVIDERS:
                raise self.fail(
                    "gpu.providers",
                    f"gpu.providers entry {entry!r} must be one of {', '.join(catalog.PROVIDERS)}",
                    'write ["modal"]',
                )
            if name not in names:
                names.append(name)
        return names
