"""Cache replay for the runner: answer from the cache, share identical in-flight calls, store replies.

A call whose key is in the cache is answered from it (no request, cost 0). A call identical to
one already on its way waits for that one and shares its answer. A fresh reply that succeeded
is stored; a failure is never stored, so a rerun asks again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from recllmsim_hf.schema import Usage

from .cache import ResponseCache, key_for_body
from .endpoints import Endpoint
from .requests import LLMRequest, LLMResult, RunStats


class CacheReplay:
    """Wraps a send function with the response cache and in-flight sharing."""

    def __init__(self, cache: ResponseCache, stats: RunStats):
        self.cache, self.stats = cache, stats
        self._inflight: dict[str, asyncio.Future] = {}

    async def complete(
        self,
        request: LLMRequest,
        endpoint: Endpoint,
        body: dict,
        send: Callable[[], Awaitable[LLMResult]],
    ) -> LLMResult:
        key = key_for_body(body, request.prompt_version, endpoint.base_url)
        if key in self._inflight:  # the same call is on its way: share its answer
            leader = await asyncio.shield(self._inflight[key])
            return leader.model_copy(update={"cached": leader.ok, "cost_usd": 0.0, "attempts": 0})
        hit = self._replay(key, request, endpoint)
        if hit is not None:
            return hit
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await send()
            if result.ok:
                self.cache.put(
                    key, model=endpoint.model, prompt_version=request.prompt_version, text=result.text,
                    finish_reason=result.finish_reason, prompt_tokens=result.usage.prompt_tokens,
                    completion_tokens=result.usage.completion_tokens,
                    cost_usd=result.cost_usd if result.cost_known else None,
                    structured_mode=result.structured_mode,
                )  # fmt: skip
            future.set_result(result)
            return result
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # mark retrieved: waiters may not exist
            raise
        finally:
            del self._inflight[key]

    def _replay(self, key: str, request: LLMRequest, endpoint: Endpoint) -> LLMResult | None:
        hit = self.cache.get(key)
        if hit is None:
            return None
        result = LLMResult(
            text=hit.text,
            usage=Usage(prompt_tokens=hit.prompt_tokens, completion_tokens=hit.completion_tokens),
            cost_known=hit.cost_usd is not None,
            cached=True,
            finish_reason=hit.finish_reason,
            model=endpoint.model,
            structured_mode=hit.structured_mode,
        )
        try:
            if request.response_model is not None:
                result.parsed = request.response_model.model_validate_json(hit.text)
        except ValidationError:  # stored under an older model class: ask again
            return None
        self.stats.cache_hits += 1
        return result
