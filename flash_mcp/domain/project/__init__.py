"""The agent's project tree: confinement-aware files, datasets, diagnostics, secrets, preflight, scaffolding."""
