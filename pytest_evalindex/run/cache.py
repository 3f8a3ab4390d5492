"""Response cache shared by every process of a run: SQLite in WAL mode.

An answer is written the moment it arrives, in its own transaction, so a run killed
half-way keeps every answer it was paid for and a rerun asks only for the rest. Only
successful answers are stored; errors are never cached. The key is a hash of everything
that determines the answer (base URL, model, messages, generation parameters, repeat
number), never of the API key.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(
    *,
    base_url: str,
    model: str,
    messages: list[dict[str, Any]],
    generation: dict[str, Any],
    repeat: int = 0,
) -> str:
    payload = {
        "base_url": base_url.rstrip("/"),
        "model": model,
        "messages": messages,
        "generation": generation,
        "repeat": repeat,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SharedDatabase:
    """One SQLite file in WAL mode that every process and thread of a run writes to: a
    connection per thread, in autocommit, so each write is durable at once."""

    def __init__(
        self, path: Path, schema: Sequence[str], prepare: Callable[[Any], None] | None = None
    ) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Switching to WAL needs a moment of exclusive access, and SQLite does not wait for
        # it when several processes open the file at once: retry briefly. WAL mode is
        # stored in the file, so later connections need not ask again.
        deadline = time.monotonic() + 30.0
        while True:
            try:
                conn = self.connection()
                conn.execute("PRAGMA journal_mode=WAL")
                for statement in schema:
                    conn.execute(statement)
                if prepare is not None:
                    prepare(conn)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


class ResponseCache:
    """Thread-safe and multi-process-safe key → answer store."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "responses.sqlite3"
        self._database = SharedDatabase(self.path, [SCHEMA])
        self._connect = self._database.connection

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._connect().execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, answer: dict[str, Any]) -> None:
        self._connect().execute(
            "INSERT OR REPLACE INTO answers (key, answer, created) VALUES (?, ?, ?)",
            (key, json.dumps(answer, ensure_ascii=False), time.time()),
        )

    def count_present(self, keys: list[str]) -> int:
        """How many of ``keys`` have an answer stored (each key counted once)."""
        unique = sorted(set(keys))
        found = 0
        conn = self._connect()
        # SQLite limits the parameters of one statement; 500 is well inside every build
        for start in range(0, len(unique), 500):
            batch = unique[start : start + 500]
            marks = ",".join("?" * len(batch))
            row = conn.execute(
                f"SELECT COUNT(*) FROM answers WHERE key IN ({marks})", batch
            ).fetchone()
            found += int(row[0])
        return found

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self._database.close()
