"""The online executor: each request of an item goes out as soon as the item asks for it.

Items run side by side (``4 x --concurrency`` of them at once, so every request slot stays busy
while others wait on their turn); the :class:`LLMRunner` under it owns concurrency, retries,
the cache and the budget. This is the path every command took before the batch executors.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Sequence

from . import Item, ItemFailed


async def finish(on_done: Callable | None, index: int, value, error) -> None:
    """Call ``on_done`` (plain or async)."""
    if on_done is not None:
        out = on_done(index, value, error)
        if inspect.isawaitable(out):
            await out


def step(item: Item, result=None, first: bool = False):
    """Advance ``item`` by one answer: ``("ask", request)``, ``("done", value)`` or ``("failed", error)``."""
    try:
        return "ask", (next(item) if first else item.send(result))
    except StopIteration as stop:
        return "done", stop.value
    except ItemFailed as e:
        return "failed", e


class OnlineExecutor:
    """Runs items through ``runner.complete`` (see the module docstring)."""

    name = "online"

    def __init__(self, runner):
        self.runner = runner
        self.stats: dict = {"executor": "online"}

    async def check(self, roles: Sequence[str] | None = None) -> None:
        await self.runner.check(roles)

    def describe(self) -> dict:
        return {"executor": "online"}

    async def drive(self, items: Iterable[Item], on_done: Callable | None = None) -> None:
        """Run ``items`` (any iterable, walked lazily: memory stays flat in their number) with
        at most four items per request slot in progress."""
        shared = iter(enumerate(items))

        async def worker() -> None:
            for index, item in shared:  # one shared iterator: next() never awaits
                kind, payload = step(item, first=True)
                while kind == "ask":
                    kind, payload = step(item, await self.runner.complete(payload))
                if kind == "done":
                    await finish(on_done, index, payload, None)
                else:
                    await finish(on_done, index, None, payload)

        workers = [asyncio.create_task(worker()) for _ in range(4 * self.runner.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def complete_all(self, requests: Sequence) -> list:
        return list(await asyncio.gather(*(self.runner.complete(r) for r in requests)))
