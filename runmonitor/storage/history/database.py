"""The history's SQLite connection: opening the file safely, one lock, one transaction per write.

Opening refuses, without changing a byte, a file that is not a SQLite database, a SQLite
database that is not a RunMonitor history and a file written by a newer RunMonitor (all with
:class:`HistoryError`, the file left exactly as it was); otherwise it creates the file private
(0o600, missing folders 0o700), switches it to WAL with ``synchronous=NORMAL`` and migrates it
(:func:`~runmonitor.storage.history.schema.migrate`). :class:`HistoryStore
<runmonitor.storage.history.store.HistoryStore>` builds on this.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from runmonitor.storage.history.records import HistoryError
from runmonitor.storage.history.schema import check_version, migrate
from runmonitor.storage.paths import DIR_MODE

# The package's name: log lines keep saying "runmonitor.storage.history" wherever the code sits.
log = logging.getLogger("runmonitor.storage.history")

FILE_MODE: Final = 0o600
SQLITE_HEADER: Final = b"SQLite format 3\x00"


class HistoryDatabase:
    """The open history file, guarded by one lock. Closing twice is fine."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.schema_version = 0
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._probe()
        self._create_parent_dirs()
        self._create_private_file()
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            raise HistoryError(f"Cannot open the run history {self.path}: {exc}") from exc
        try:
            self._configure(conn)
            self.schema_version = migrate(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- opening -----------------------------------------------------------------------------

    def _probe(self) -> None:
        """Refuse, without changing a byte, files this version must not write to."""
        path = self.path
        if not path.exists():
            return
        if not path.is_file():
            raise HistoryError(f"The run history {path} is not a file.")
        try:
            with path.open("rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise HistoryError(f"Cannot read the run history {path}: {exc}") from exc
        if header and header != SQLITE_HEADER:
            raise HistoryError(
                f"{path} is not a SQLite database, so it cannot be the run history. "
                "It was left untouched; move it away to start a new history."
            )
        if not header:
            return  # an empty file is an empty database
        # Read-only; without a WAL beside it the file holds everything committed, so read it as
        # immutable, which creates no -wal/-shm files either.
        wal = Path(f"{path}-wal")
        uri = path.resolve().as_uri() + ("?mode=ro" if wal.exists() else "?mode=ro&immutable=1")
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            raise HistoryError(f"Cannot open the run history {path}: {exc}") from exc
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                f"{path} is not a readable SQLite database ({exc}). It was left untouched; "
                "move it away to start a new history."
            ) from exc
        finally:
            conn.close()
        check_version(path, version)
        if version == 0 and tables:
            raise HistoryError(
                f"{path} is a SQLite database but not a RunMonitor run history. It was left untouched."
            )

    def _create_parent_dirs(self) -> None:
        """Create missing parent directories as 0o700; existing ones are left as they are."""
        parent = self.path.parent
        missing = [d for d in (parent, *parent.parents) if not d.exists()]
        try:
            for directory in reversed(missing):
                directory.mkdir(mode=DIR_MODE, exist_ok=True)
                if os.name == "posix":
                    os.chmod(directory, DIR_MODE)
        except OSError as exc:
            raise HistoryError(f"Cannot create the folder of the run history {parent}: {exc}") from exc

    def _create_private_file(self) -> None:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
        except FileExistsError:
            return
        except OSError as exc:
            raise HistoryError(f"Cannot create the run history {self.path}: {exc}") from exc
        os.close(fd)
        if os.name == "posix":
            os.chmod(self.path, FILE_MODE)

    def _configure(self, conn: sqlite3.Connection) -> None:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"Cannot use the run history {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            log.warning("run history %s: journal mode is %s, not WAL", self.path, mode)

    # -- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with sqlite3 errors turned into HistoryError."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise HistoryError("The run history is closed.")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise HistoryError(f"Run history {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed when the block ends."""
        with self._read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
