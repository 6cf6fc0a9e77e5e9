"""A fake OpenAI server that works on at most ``capacity`` chat completions at once (the rest wait
in its queue), like a GPU server with a fixed batch size: for the many-endpoints tests and benchmark.

Example::

    with CappedOpenAI(capacity=4, latency=0.05) as srv:
        ...  # srv.max_working <= 4 whatever the client sends
"""

from __future__ import annotations

import asyncio

from fake_openai import FakeOpenAI


class CappedOpenAI(FakeOpenAI):
    """FakeOpenAI whose chat completions pass a ``capacity``-slot gate; ``max_working`` is recorded."""

    def __init__(self, *, capacity: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.capacity, self.working, self.max_working = capacity, 0, 0
        self._gate: asyncio.Semaphore | None = None

    def stats(self) -> dict:
        return {**super().stats(), "max_working": self.max_working}

    async def _respond(self, method: str, path: str, headers: dict, raw: bytes):
        if path != "/v1/chat/completions":
            return await super()._respond(method, path, headers, raw)
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.capacity)
        async with self._gate:
            self.working += 1
            self.max_working = max(self.max_working, self.working)
            try:
                return await super()._respond(method, path, headers, raw)
            finally:
                self.working -= 1
