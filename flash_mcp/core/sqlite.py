"""One SQLite file in WAL mode, written by this server only (one writer lock per process).

A store may version its schema: `schema` is the layout as it first shipped (CREATE ... IF NOT EXISTS) and
`migrations[i]` takes the file from version i to i + 1, so `PRAGMA user_version` is `len(migrations)` once opened.
Opening applies what is missing in one transaction (an old file keeps every row); a file from a newer version is
refused before anything in it is touched.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from flash_mcp.core.errors import UserError


class NewerSchema(UserError):
    def __init__(self, path: Path, found: int, known: int):
        super().__init__(
            f"{path} has schema version {found}, newer than this flash-mcp knows ({known}): it was written by a "
            "newer flash-mcp and was left as it was; upgrade flash-mcp (downgrading is not supported)"
        )


class Database:
    def __init__(self, path: Path, schema: str, migrations: Sequence[str] = ()):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self.version = len(migrations)
        if migrations:
            self._check_version()
        with self.connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            if not migrations:
                db.executescript(schema)
        if migrations:
            self._migrate(schema, migrations)

    def _check_version(self) -> None:
        if not self.path.exists():
            return
        db = sqlite3.connect(self.path, timeout=30)
        try:
            found = db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
        if found > self.version:
            raise NewerSchema(self.path, found, self.version)

    def _migrate(self, schema: str, migrations: Sequence[str]) -> None:
        """The first layout, then each missing migration, then the version: all in one transaction."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found > self.version:  # another process upgraded it meanwhile
                db.execute("ROLLBACK")
                raise NewerSchema(self.path, found, self.version)
            if found < self.version:
                for script in (schema, *migrations[found:]):
                    for statement in _statements(script):
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {int(self.version)}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

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


def _statements(script: str) -> Iterator[str]:
    """The script's statements one by one (executescript would commit the transaction they belong to)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in a schema: {pending[:80]!r}")
