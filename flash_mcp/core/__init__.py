"""The base layer: errors, settings, the workspace, SQLite helpers and shipped assets; imports nothing above it."""
