"""The response cache: every successful LLM call, keyed by a canonical hash, in SQLite.

The cache lives inside the corpus folder (``CORPUS/.cache/llm.sqlite``), so rerunning
the same command replays every call it has already paid for, at zero cost.

Key contract (stable across releases; bump :data:`KEY_VERSION` if it ever changes):

    key = sha256_hex(canonical_json({"v": KEY_VERSION, "prompt_version": P, "request": BODY}))

where ``BODY`` is exactly the JSON body sent to ``/chat/completions``: ``model``,
``messages``, the parameters that are set (``temperature``, ``max_tokens``, ``seed``,
extra params; unset ones are left out), and ``response_format`` with the JSON schema of
a structured output. ``canonical_json`` is ``json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8. The base URL is *not*
part of the key: the same model asked the same thing on another host (a proxy, a
mirror) replays. API keys and tokens are never part of the key or the stored row.

Rows hold only the model name, the prompt version, the reply text, the finish reason,
the token usage and the original cost. The schema is versioned with ``PRAGMA
user_version`` and explicit numbered migrations; each write is its own transaction
(WAL journal), so a killed run leaves every finished call stored and none half-stored.
One :class:`ResponseCache` is meant for one process (asyncio tasks share it freely:
each call runs to completion on the event loop thread); other processes may read and
write the same file (SQLite locking, 30 s busy timeout).

Example:
    >>> import tempfile
    >>> cache = ResponseCache(tempfile.mkdtemp() + "/llm.sqlite")
    >>> k = key_for_body({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}, "p1")
    >>> cache.put(k, model="gpt-4o-mini", prompt_version="p1", text="Hello!", finish_reason="stop",
    ...           prompt_tokens=8, completion_tokens=2, cost_usd=0.0000024)
    >>> cache.get(k).text
    'Hello!'
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple

from recllmsim_hf.errors import InputError, naming

KEY_VERSION = 1
CACHE_FILE = Path(".cache") / "llm.sqlite"

# Numbered migrations: MIGRATIONS[i] brings a database from user_version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE responses (
        key               TEXT PRIMARY KEY,
        model             TEXT NOT NULL,
        prompt_version    TEXT NOT NULL,
        text              TEXT NOT NULL,
        finish_reason     TEXT,
        prompt_tokens     INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cost_usd          REAL,
        created_at        TEXT NOT NULL
    )
    """,
)


def canonical_json(obj: object) -> str:
    """Sorted keys, compact separators, UTF-8 text: the form every key is hashed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def key_for_body(body: dict, prompt_version: str) -> str:
    """The cache key of one request body (see the module docstring for the contract)."""
    payload = canonical_json({"v": KEY_VERSION, "prompt_version": prompt_version, "request": body})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CachedResponse(NamedTuple):
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None


class ResponseCache:
    """A SQLite file of successful responses (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with naming(self.path):  # disk full, permission denied: the CLI boundary names the file
                self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError):
                raise
            raise InputError(
                f"{self.path}: not a usable response cache ({e}); nothing was changed: "
                "pass --no-cache (or move the file away)"
            ) from None

    @classmethod
    def for_corpus(cls, corpus: str | os.PathLike) -> ResponseCache:
        """The cache of a corpus folder: ``CORPUS/.cache/llm.sqlite``."""
        return cls(Path(corpus) / CACHE_FILE)

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise InputError(
                f"{self.path}: cache schema version {version} is newer than this toolkit knows "
                f"({len(MIGRATIONS)}); upgrade recllmsim or pass --no-cache"
            )
        for number in range(version, len(MIGRATIONS)):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(MIGRATIONS[number])
                self._conn.execute(f"PRAGMA user_version = {number + 1}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def get(self, key: str) -> CachedResponse | None:
        """The stored response for ``key``, or None."""
        with naming(self.path):
            row = self._conn.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, cost_usd"
                " FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
        return CachedResponse(*row) if row else None

    def put(
        self,
        key: str,
        *,
        model: str,
        prompt_version: str,
        text: str,
        finish_reason: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float | None,
    ) -> None:
        """Store one response in its own transaction; the first answer stored for a key wins."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        row = (
            key,
            model,
            prompt_version,
            text,
            finish_reason,
            prompt_tokens,
            completion_tokens,
            cost_usd,
            stamp,
        )
        with naming(self.path):
            self._conn.execute("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def __len__(self) -> int:
        return self._conn.execute("SELECT count(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
