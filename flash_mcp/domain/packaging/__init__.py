"""Packaging an environment exactly as `flash env push` does: members, digests, import sidecars."""
