"""The LLM runner: one wrapper that owns concurrency, retries, timeouts, cost and the cache.

Public interface (the conversation, profile and annotation code uses only these names):

- :class:`Endpoint` ``(base_url, api_key, model)``: where one role's requests go. ``api_key``
  never appears in ``repr``, ``str`` or ``model_dump``.
- :func:`endpoints_from_options` ``(base_url, api_key, model, simulator_model=None,
  assistant_model=None, profile_model=None, annotator_model=None)`` -> ``{role: Endpoint}``
  for the roles :data:`ROLES` ("profile", "simulator", "assistant", "annotator"): per-role
  ``RECLLMSIM_<ROLE>_BASE_URL`` / ``RECLLMSIM_<ROLE>_API_KEY``, then the flags, then
  ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` (``endpoints.py``).
- :class:`LLMRequest`: ``role``, ``messages``, ``temperature``, ``max_tokens``, ``seed``,
  ``response_model`` (a pydantic class: sent as a strict ``json_schema`` structured output,
  the reply parsed and validated; a reply that does not validate is retried like a
  transient failure), ``prompt_version``, ``params`` (more body fields), ``tag`` (a label
  for error messages, not sent).
- :class:`LLMResult`: ``text``, ``parsed``, ``usage`` (:class:`recllmsim_hf.schema.Usage`; a
  replay reports the usage of the call that was stored),
  ``cost_usd`` (spent by this call: 0 when replayed), ``cost_known`` (False for a model
  without a price or a reply without usage), ``cached``, ``attempts`` (HTTP attempts of
  this call: 0 when replayed), ``error`` (set when retries ran out; ``complete`` does not raise for
  per-request failures), ``latency`` (seconds), ``finish_reason``, ``model``; ``ok``.
- :class:`LLMRunner` ``(endpoints, *, concurrency=32, timeout=60, max_retries=8,
  budget_usd=None, prices=None, cache=None, backoff_base=0.5, backoff_max=30,
  retry_after_max=120, transport=None, seed=0)`` (``seed`` only drives the backoff jitter):
  ``await runner.complete(request)``, ``await runner.check()`` (fail fast on an unreachable
  endpoint or a refused key), ``runner.stats``, ``await runner.close()``.
- For the batch executors (``executors/rounds.py``): ``runner.prepare(request)`` -> (endpoint,
  the exact JSON body ``complete`` sends, its cache key) and ``runner.read_reply(request, endpoint,
  data, prices=None)`` (a reply read, validated and priced as ``complete`` does).
- :class:`BudgetExceeded`: raised by ``complete`` *before* a request whose worst-case cost
  would take spending over ``budget_usd``; after that every ``complete`` raises it.
- :class:`ResponseCache` (``cache.py``), :func:`cache_key` (``requests.py``) and
  :class:`PriceTable` (``pricing.py``).

Collaborators it owns: :class:`RetryPolicy` (``retry.py``), :class:`Budget` (``budget.py``),
:class:`CacheReplay` (``replay.py``).

Failures: 429, 408/409, 5xx, timeouts, connection errors, bodies that are not JSON or lack
``choices`` and structured outputs that do not validate are retried with exponential
backoff and jitter (``backoff_base * 2**(n-1)`` capped at ``backoff_max``, times 0.5-1.0), or
after the server's ``retry-after-ms`` / ``Retry-After`` (plus up to 25 % jitter). Other 4xx
end the request at once with its error recorded; 401/403 raise :class:`ServiceError`
(every request would fail). Transport sits behind :class:`Transport` (one async call,
``transport.py``; ``pool.py`` routes it over many endpoints); how a command's requests go out,
online or in batch rounds, is the executor's job (``executors/``).

Example:
    >>> import asyncio
    >>> eps = endpoints_from_options("http://127.0.0.1:9/v1", "sk-test", "gpt-4o-mini")
    >>> eps["simulator"]
    Endpoint(base_url='http://127.0.0.1:9/v1', model='gpt-4o-mini')
    >>> req = LLMRequest(role="assistant", messages=[{"role": "user", "content": "Hi"}], seed=1)
    >>> len(cache_key(req, eps["assistant"]))
    64
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, ValidationError

from recllmsim_hf.errors import InputError, ServiceError
from recllmsim_hf.schema import Usage

from .budget import Budget
from .cache import ResponseCache, canonical_json, key_for_body
from .endpoints import Endpoint, endpoints_from_options
from .pricing import PriceTable
from .replay import CacheReplay
from .requests import LLMRequest, LLMResult, RunStats, cache_key, request_body, strict_schema
from .retry import RetryPolicy
from .transport import OpenAITransport, Transport, TransportFailure

__all__ = ["LLMRunner", "cache_key", "endpoints_from_options"]


class LLMRunner:
    """The one wrapper around every LLM call (see the module docstring).

    Example:
        >>> runner = LLMRunner(endpoints_from_options("http://127.0.0.1:9/v1", None, "m"), concurrency=4)
        >>> runner.stats.calls
        0
    """

    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        *,
        concurrency: int = 32,
        timeout: float = 60.0,
        max_retries: int = 8,
        budget_usd: float | None = None,
        prices: PriceTable | None = None,
        cache: ResponseCache | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 120.0,
        transport: Transport | None = None,
        seed: int = 0,
    ):
        for name, value, low in (("concurrency", concurrency, 1), ("timeout", timeout, 1e-9)):
            if value < low:
                raise InputError(f"--{name}: must be positive, but got {value}")
        if max_retries < 0:
            raise InputError(f"--max-retries: must be 0 or more, but got {max_retries}")
        if budget_usd is not None and budget_usd <= 0:
            raise InputError(f"--budget-usd: must be positive, but got {budget_usd}")
        self.endpoints = dict(endpoints)
        self.prices = prices or PriceTable.load()
        if budget_usd is not None:
            for role, ep in sorted(self.endpoints.items()):
                if self.prices.lookup(ep.model) is None:
                    raise InputError(
                        f"--budget-usd: no price for model {ep.model!r} ({role} role); "
                        "add it with --prices FILE or drop --budget-usd"
                    )
        self.concurrency, self.timeout = concurrency, timeout
        self.retry = RetryPolicy(max_retries, backoff_base, backoff_max, retry_after_max, seed)
        self.cache = cache
        self._transport = transport
        self.stats = RunStats()
        self.budget = Budget(budget_usd, self.prices, self.stats)
        self._replay = CacheReplay(cache, self.stats) if cache is not None else None
        self._slots = asyncio.Semaphore(concurrency)
        self._schemas: dict[type, dict] = {}
        self._secrets = sorted(
            {ep.api_key for ep in self.endpoints.values() if ep.api_key}, key=len, reverse=True
        )

    @property
    def budget_usd(self) -> float | None:
        return self.budget.limit_usd

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    # -- public -------------------------------------------------------------------------------
    async def complete(self, request: LLMRequest) -> LLMResult:
        """Run one request to a result: cached reply, fresh reply, or recorded error."""
        self.budget.check()
        started = time.perf_counter()
        endpoint = self.endpoints.get(request.role)
        if endpoint is None:
            raise InputError(
                f"LLMRequest.role: no endpoint for role {request.role!r}; known: {sorted(self.endpoints)}"
            )
        self.stats.calls += 1
        schema = self._schema(request.response_model) if request.response_model else None
        body = request_body(request, endpoint.model, schema)

        def send():
            return self._send(request, endpoint, canonical_json(body).encode("utf-8"))

        if self._replay is None:
            result = await send()
        else:
            result = await self._replay.complete(request, endpoint, body, send)
        result.latency = time.perf_counter() - started
        return result

    async def check(self) -> None:
        """Raise :class:`ServiceError` if an endpoint is unreachable or refuses its key."""
        check = getattr(self.transport, "check", None)
        if check is None:
            return
        seen = set()
        for role, ep in sorted(self.endpoints.items()):
            if (ep.base_url, ep.api_key) in seen:
                continue
            seen.add((ep.base_url, ep.api_key))
            try:
                await check(ep)
            except TransportFailure as e:
                where = ep.base_url or "the OpenAI API"
                raise ServiceError(
                    f"{where} ({role} role): {self._redact(str(e))}; check --base-url and --api-key"
                ) from None

    async def close(self) -> None:
        """Close the transport and the cache (the runner owns the cache it was given)."""
        if self._transport is not None:
            await self._transport.close()
        if self.cache is not None:
            self.cache.close()

    @property
    def transport(self) -> Transport:
        """The transport; the default one (and the openai import) is made on first use, so a
        run that replays everything from the cache never loads the openai client."""
        if self._transport is None:
            self._transport = OpenAITransport(timeout=self.timeout, max_connections=self.concurrency)
        return self._transport

    # -- sending with retries ---------------------------------------------------------------------
    async def _send(self, request: LLMRequest, endpoint: Endpoint, body: bytes) -> LLMResult:
        worst = self.budget.worst_case(request, endpoint, len(body))
        error = "not sent"
        attempt = 0
        while attempt < self.retry.attempts():
            attempt += 1
            if attempt > 1:
                self.stats.retries += 1
            await self.budget.reserve(worst)
            try:
                async with self._slots:
                    self.stats.requests += 1
                    data = await self.transport.complete(endpoint, body)
                result = self._read(request, endpoint, data)
                result.attempts = attempt
                return result
            except TransportFailure as e:
                if e.fatal:
                    where = endpoint.base_url or "the OpenAI API"
                    raise ServiceError(
                        f"{where} refused the request ({self._redact(str(e))}); "
                        "check --api-key / OPENAI_API_KEY"
                    ) from None
                error = self._redact(str(e))
                if not e.retryable:
                    break
                delay = self.retry.delay(attempt, e.retry_after)
            finally:
                await self.budget.settle(worst)
            if attempt < self.retry.attempts():
                await asyncio.sleep(delay)
        self.stats.errors += 1
        tag = f"{request.tag}: " if request.tag else ""
        return LLMResult(error=f"{tag}{request.role} call failed after {attempt} attempt(s): {error}",
                         attempts=attempt, model=endpoint.model)  # fmt: skip

    # -- the seam of the batch executors (executors/rounds.py) ----------------------------------------
    def prepare(self, request: LLMRequest) -> tuple[Endpoint, str, str]:
        """The endpoint of ``request``, the exact JSON body :meth:`complete` sends, and its cache key."""
        endpoint = self.endpoints.get(request.role)
        if endpoint is None:
            raise InputError(
                f"LLMRequest.role: no endpoint for role {request.role!r}; known: {sorted(self.endpoints)}"
            )
        schema = self._schema(request.response_model) if request.response_model else None
        body = request_body(request, endpoint.model, schema)
        return endpoint, canonical_json(body), key_for_body(body, request.prompt_version)

    def read_reply(self, request: LLMRequest, endpoint: Endpoint, data: dict, prices=None) -> LLMResult:
        """Read one reply body as :meth:`complete` does, priced with ``prices`` (default: the table);
        raises :class:`TransportFailure` for a reply that a retry may fix."""
        return self._read(request, endpoint, data, prices)

    def _read(self, request: LLMRequest, endpoint: Endpoint, data: dict, prices=None) -> LLMResult:
        # Tokens of a reply that fails validation were billed all the same: counted before checking.
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            usage = data.get("usage")
            counted = isinstance(usage, dict)  # a server without usage: the cost is unknown
            usage = usage if counted else {}
            prompt, completion = (
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
            )
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            raise TransportFailure("the reply has no choices[0].message", retryable=True) from None
        cost = (prices or self.prices).cost(endpoint.model, prompt, completion) if counted else None
        self.stats.prompt_tokens += prompt
        self.stats.completion_tokens += completion
        self.stats.cost_usd += cost or 0.0
        self.stats.unpriced_calls += cost is None
        result = LLMResult(
            text=text,
            usage=Usage(prompt_tokens=prompt, completion_tokens=completion),
            cost_usd=cost or 0.0,
            cost_known=cost is not None,
            finish_reason=choice.get("finish_reason"),
            model=endpoint.model,
        )
        if request.response_model is not None:
            try:
                result.parsed = request.response_model.model_validate_json(text)
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(root)"
                name = request.response_model.__name__
                message = f"structured output does not fit {name} ({where}: {first['msg']})"
                raise TransportFailure(message, retryable=True) from None
        return result

    def _schema(self, model: type[BaseModel]) -> dict:
        if model not in self._schemas:
            self._schemas[model] = strict_schema(model)
        return self._schemas[model]

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text
