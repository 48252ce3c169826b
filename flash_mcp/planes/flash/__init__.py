"""The Flash plane: the hosted or self-hosted Flash control plane over HTTP, spoken as `flash` 1.3.28 speaks it."""
