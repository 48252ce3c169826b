"""The environment-test harness: the runner that starts sandboxed children, the checked channel, the wire."""
