"""The MCP surface: declarations of tools, resources and prompts that call the use cases in `flash_mcp.loop`."""
