"""The domain: plain Python that knows nothing of MCP."""
