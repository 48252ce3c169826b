"""The spend guard: a separate process, under its own OS user, that holds what spends or decides spending.

It keeps the Flash API key, the human's budgets, the proposals it was asked to approve, the spend ledger and the
audit trail in a state directory only its user can read, and serves the MCP server (running as the human, next
to the agent) over a Unix socket: Flash's read routes forwarded with the key added, a paid submit only as a
proposal that the human approves through the guard (`sudo /opt/flash-mcp-guard/bin/flash-mcp guard approve ID`,
its own root-owned copy), after which the guard submits exactly the body it was shown. It imports only `core/`
and the standard library's and httpx's code.
"""
