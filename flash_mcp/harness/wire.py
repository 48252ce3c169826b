"""What the environment-test runner and its child share: the 16-byte progress record."""

from __future__ import annotations

import struct

PROGRESS = struct.Struct("<qd")  # row index being run (LOADING, or -2 - n for response n), monotonic start
LOADING = -1
