"""``--budget-usd``: reserve each request's worst-case cost before it is sent.

A request is sent only when the money spent plus what in-flight requests may still cost plus
its own worst case stays within the budget; otherwise it waits for in-flight requests to settle
(they usually cost less than reserved) or, when spending alone leaves no room, the run stops
with :class:`BudgetExceeded` and every later request raises it too.
"""

from __future__ import annotations

import asyncio

from recllmsim_hf.errors import RecLLMSimError

from .endpoints import Endpoint
from .pricing import PriceTable
from .requests import LLMRequest, RunStats

# Worst-case completion length assumed for --budget-usd when a request sets no max_tokens.
DEFAULT_MAX_TOKENS_FOR_BUDGET = 4096


class BudgetExceeded(RecLLMSimError):
    """The next request could take spending over ``--budget-usd``; nothing more is sent."""

    exit_code = 4


class Budget:
    """The spending limit of one runner; ``limit_usd=None`` means no limit (every call is free)."""

    def __init__(self, limit_usd: float | None, prices: PriceTable, stats: RunStats):
        self.limit_usd, self.prices, self.stats = limit_usd, prices, stats
        self._reserved = 0.0
        self._cond: asyncio.Condition | None = None
        self.stopped: str | None = None

    def worst_case(
        self, request: LLMRequest, endpoint: Endpoint, body_bytes: int, completion: int | None = None
    ) -> float:
        """The most ``request`` can cost: the whole body as prompt, and as completion ``completion``
        (the runner passes the cap sent, else the model rule's reservation), else the request's cap,
        else 4,096."""
        if self.limit_usd is None:
            return 0.0
        # Over-estimate the prompt: one token per 3 bytes of body is above every tokenizer's
        # rate for English (~4 chars) and about right for CJK (3 bytes, ~1 token per char).
        prompt = body_bytes // 3 + 1
        completion = completion or request.max_tokens or request.params.get("max_completion_tokens")
        return self.prices.cost(endpoint.model, prompt, completion or DEFAULT_MAX_TOKENS_FOR_BUDGET) or 0.0

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` once the budget has stopped the run."""
        if self.stopped:
            raise BudgetExceeded(self.stopped)

    async def reserve(self, worst: float) -> None:
        """Wait until ``worst`` fits beside what is spent and reserved, then reserve it."""
        if self.limit_usd is None:
            return
        if self._cond is None:
            self._cond = asyncio.Condition()
        async with self._cond:
            while True:
                self.check()
                if self.stats.cost_usd + worst > self.limit_usd:
                    self.stopped = (
                        f"--budget-usd {self.limit_usd:g}: spent {self.stats.cost_usd:.6g} USD and the next "
                        f"request may cost up to {worst:.6g} USD; stopped before exceeding it "
                        "(rerun with a larger budget: finished calls replay from the cache)"
                    )
                    self._cond.notify_all()
                    raise BudgetExceeded(self.stopped)
                if self.stats.cost_usd + self._reserved + worst <= self.limit_usd:
                    self._reserved += worst
                    return
                await self._cond.wait()  # in-flight calls may settle cheaper than reserved

    async def settle(self, worst: float) -> None:
        """Release a reservation once its request has been paid for (or failed)."""
        if self.limit_usd is None:
            return
        async with self._cond:
            self._reserved -= worst
            self._cond.notify_all()
