"""One SQLite file in WAL mode, written by this server only (one writer lock per process)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Database:
    def __init__(self, path: Path, schema: str):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        with self.connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A connection inside this process's writer lock: read-check-write happens as one step."""
        with self._write_lock, self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            yield db

    def write(self, sql: str, params: tuple) -> None:
        with self.writing() as db:
            db.execute(sql, params)
