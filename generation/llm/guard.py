"""Fail fast: the first request to an endpoint goes alone, and identical rejections stop the run.

A request a server rejects as such (400, 404, 422: an unknown model, a parameter the model
does not take) fails the same way for every item of a corpus, so retrying it or sending the
other 10,000 wastes time and money. Two rules, per endpoint (base URL and model):

- until the endpoint has answered once (any 2xx), its requests go one at a time, so that a
  bad model name or parameter costs a handful of requests, not ``--concurrency`` of them;
- after :data:`STOP_AFTER` identical rejections (same status and server message) the run
  stops with :class:`RunStopped`: one line naming the model, the endpoint and the server's
  message. Calls that finished stay in the cache and in what the command already wrote.

Example:
    >>> guard = Guard(stop_after=2)
    >>> guard.rejected(("http://h/v1", "m"), "HTTP 404: no such model")
    >>> try:
    ...     guard.rejected(("http://h/v1", "m"), "HTTP 404: no such model")
    ... except RunStopped as e:
    ...     print(str(e)[:62])
    m at http://h/v1 rejected 2 identical requests (HTTP 404: no s
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import asynccontextmanager

from recllmsim_hf.errors import ServiceError

STOP_AFTER = 3
OPENAI_URL = "https://api.openai.com/v1"


class RunStopped(ServiceError):
    """The server rejected the same request several times: nothing more is sent."""


class Guard:
    """The two fail-fast rules of the module docstring, for one runner."""

    def __init__(self, stop_after: int = STOP_AFTER):
        self.stop_after = stop_after
        self.stopped: str | None = None
        self._answered: set[tuple] = set()
        self._locks: dict[tuple, asyncio.Lock] = {}
        self._seen: Counter[tuple] = Counter()

    @asynccontextmanager
    async def turn(self, ident: tuple):
        """Hold one request to ``ident``: alone until the endpoint has answered once."""
        self.raise_if_stopped()
        if ident in self._answered:
            yield
            return
        lock = self._locks.setdefault(ident, asyncio.Lock())
        await lock.acquire()
        if ident in self._answered:  # it answered while this one waited: no need to go alone
            lock.release()
            self.raise_if_stopped()
            yield
            return
        try:
            self.raise_if_stopped()
            yield
        finally:
            lock.release()

    def answered(self, ident: tuple) -> None:
        self._answered.add(ident)

    def rejected(self, ident: tuple, message: str) -> None:
        """Count one rejection; raises :class:`RunStopped` at the ``stop_after``-th identical one."""
        self._seen[ident, message] += 1
        if self._seen[ident, message] >= self.stop_after and self.stopped is None:
            base_url, model = ident
            self.stopped = (
                f"{model} at {base_url or OPENAI_URL} rejected {self.stop_after} identical requests "
                f"({message}); stopped without sending the rest: fix the model name or the request "
                "(--model, --param, --model-rules, --structured-output) and rerun (finished calls replay "
                "from the cache)"
            )
        self.raise_if_stopped()

    def raise_if_stopped(self) -> None:
        if self.stopped is not None:
            raise RunStopped(self.stopped)
