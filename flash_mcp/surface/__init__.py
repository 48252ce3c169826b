"""The MCP surface: thin adapters from tools, resources and prompts to the domain."""
