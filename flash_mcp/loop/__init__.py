"""The application layer: one plain-Python function per use case, shared by the MCP surface and the CLI."""
