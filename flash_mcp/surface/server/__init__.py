"""The MCP server machinery the tools go through: the server class, registration, the tools cache, rendering."""
