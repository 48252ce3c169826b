"""Parsing Python source safely from several threads at once.

Tools run their file work in worker threads, so two calls can parse `environment.py` at the same time.
CPython 3.11.7's `ast` keeps its recursion-depth bookkeeping per interpreter, not per thread, and two
concurrent parses can fail with a spurious "AST constructor recursion depth mismatch" (fixed in later
3.11 releases). Every `ast.parse` in the server goes through one lock (compiling to bytecode builds no
Python AST objects and needs none).
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse`, one thread at a time."""
    with _LOCK:
        return ast.parse(source, filename=filename)
