"""flash-mcp: an MCP server for Flash LoRA post-training."""

__version__ = "0.1.0"
