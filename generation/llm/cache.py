"""The response cache: every successful LLM call, keyed by a canonical hash, in SQLite.

The cache lives inside the corpus folder (``CORPUS/.cache/llm.sqlite``), so rerunning
the same command replays every call it has already paid for, at zero cost.

Key contract (stable across releases; bump :data:`KEY_VERSION` if it ever changes):

    key = sha256_hex(canonical_json({"v": KEY_VERSION, "endpoint": E, "prompt_version": P,
                                     "request": BODY}))

where ``BODY`` is the JSON body of the request as meant (``model``, ``messages``, the
parameters that are set after the model's rule and ``--param``: unset ones are left out, and
``response_format`` with the JSON schema of a structured output; with ``--structured-output
auto`` the body of the ``json_schema`` mode, whichever mode the endpoint ends up taking, since
one endpoint always takes the same mode) and ``E`` is the endpoint's identity: its base URL
without a trailing slash (``https://api.openai.com/v1`` for the OpenAI API). Replies recorded
from one server (a test server, a small local model) therefore never replay against another
that serves a model of the same name. ``canonical_json`` is ``json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8; it is used for the key only:
the body sent keeps its fields in declaration order (a schema's properties in the order the
model should write them). API keys and tokens are never part of the key or the stored row.
Version 1 keys (before the endpoint was part of the key) are never looked up again.

Rows hold only the model name, the prompt version, the reply text, the finish reason,
the token usage, the original cost and the structured-output mode the reply was made in.
The schema is versioned with ``PRAGMA user_version`` and explicit numbered migrations; each
write is its own transaction (WAL journal), so a killed run leaves every finished call
stored and none half-stored.
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

from recllmsim_hf.errors import InputError

KEY_VERSION = 2
OPENAI_URL = "https://api.openai.com/v1"
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
    "ALTER TABLE responses ADD COLUMN structured_mode TEXT",
)


def canonical_json(obj: object) -> str:
    """Sorted keys, compact separators, UTF-8 text: the form every key is hashed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def endpoint_identity(base_url: str | None) -> str:
    """The endpoint part of the key: the base URL without a trailing slash."""
    return (base_url or OPENAI_URL).rstrip("/")


def key_for_body(body: dict, prompt_version: str, endpoint: str | None = None) -> str:
    """The cache key of one request body sent to ``endpoint`` (a base URL; None: the OpenAI API)."""
    payload = canonical_json(
        {"v": KEY_VERSION, "endpoint": endpoint_identity(endpoint), "prompt_version": prompt_version,
         "request": body}
    )  # fmt: skip
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CachedResponse(NamedTuple):
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    structured_mode: str | None = None


class ResponseCache:
    """A SQLite file of successful responses (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise InputError(
                f"{self.path}: not a usable response cache ({e}); delete the file or pass --no-cache"
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
        row = self._conn.execute(
            "SELECT text, finish_reason, prompt_tokens, completion_tokens, cost_usd, structured_mode"
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
        structured_mode: str | None = None,
    ) -> None:
        """Store one response in its own transaction; the first answer stored for a key wins."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._conn.execute(
            "INSERT OR IGNORE INTO responses (key, model, prompt_version, text, finish_reason,"
            " prompt_tokens, completion_tokens, cost_usd, created_at, structured_mode)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                model,
                prompt_version,
                text,
                finish_reason,
                prompt_tokens,
                completion_tokens,
                cost_usd,
                stamp,
                structured_mode,
            ),
        )

    def __len__(self) -> int:
        return self._conn.execute("SELECT count(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
