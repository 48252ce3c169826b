"""Environment testing: every row, out of process, with timeouts."""
