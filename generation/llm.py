"""The LLM client layer: one wrapper that owns concurrency, retries, timeouts, cost and the cache.

Public interface (the conversation, profile and annotation code uses only these names):

- :class:`Endpoint` ``(base_url, api_key, model)``: where one role's requests go. ``api_key``
  never appears in ``repr``, ``str`` or ``model_dump``.
- :func:`endpoints_from_options` ``(base_url, api_key, model, simulator_model=None,
  assistant_model=None, profile_model=None, annotator_model=None)`` -> ``{role: Endpoint}``
  for the roles :data:`ROLES` ("profile", "simulator", "assistant", "annotator"): per-role
  ``RECLLMSIM_<ROLE>_BASE_URL`` / ``RECLLMSIM_<ROLE>_API_KEY``, then the flags, then
  ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` (``generation/endpoints.py``).
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
- :class:`BudgetExceeded`: raised by ``complete`` *before* a request whose worst-case cost
  would take spending over ``budget_usd``; after that every ``complete`` raises it.
- :class:`ResponseCache`, :func:`cache_key` (re-exported from ``generation/cache.py``) and
  :class:`PriceTable` (``generation/pricing.py``).

Failures: 429, 408/409, 5xx, timeouts, connection errors, bodies that are not JSON or lack
``choices`` and structured outputs that do not validate are retried with exponential
backoff and jitter (``backoff_base * 2**(n-1)`` capped at ``backoff_max``, times 0.5-1.0), or
after the server's ``retry-after-ms`` / ``Retry-After`` (plus up to 25 % jitter). Other 4xx
end the request at once with its error recorded; 401/403 raise :class:`ServiceError`
(every request would fail). Transport sits behind :class:`Transport` (one async call,
``generation/transport.py``), so an OpenAI Batch API transport can replace
:class:`OpenAITransport` without touching callers.

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
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recllmsim_hf.errors import InputError, RecLLMSimError, ServiceError
from recllmsim_hf.schema import Usage

from .cache import ResponseCache, canonical_json, key_for_body
from .endpoints import ROLES, Endpoint, endpoints_from_options
from .pricing import PriceTable
from .transport import OpenAITransport, Transport, TransportFailure

__all__ = [
    "ROLES",
    "BudgetExceeded",
    "Endpoint",
    "LLMRequest",
    "LLMResult",
    "LLMRunner",
    "OpenAITransport",
    "PriceTable",
    "ResponseCache",
    "RunStats",
    "Transport",
    "TransportFailure",
    "cache_key",
    "endpoints_from_options",
    "strict_schema",
]

# Worst-case completion length assumed for --budget-usd when a request sets no max_tokens.
DEFAULT_MAX_TOKENS_FOR_BUDGET = 4096


class BudgetExceeded(RecLLMSimError):
    """The next request could take spending over ``--budget-usd``; nothing more is sent."""

    exit_code = 4


class LLMRequest(BaseModel):
    """One chat completion request of one role."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    role: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    seed: int | None = None
    response_model: type[BaseModel] | None = None
    prompt_version: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    tag: str | None = None


class LLMResult(BaseModel):
    """The outcome of :meth:`LLMRunner.complete`: a reply, or the error that ended the retries."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    text: str = ""
    parsed: Any = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    cost_known: bool = True
    cached: bool = False
    attempts: int = 0
    error: str | None = None
    latency: float = 0.0
    finish_reason: str | None = None
    model: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RunStats:
    """Counters of one runner: ``requests`` are HTTP attempts, ``calls`` are ``complete`` calls."""

    calls: int = 0
    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def strict_schema(model: type[BaseModel]) -> dict:
    """The JSON schema of ``model`` in OpenAI's strict form (all properties required, no extras)."""

    def fix(node: Any, names: bool = False) -> Any:
        if isinstance(node, dict):
            if names:  # a map of property / definition names: every key is a name, keep it
                return {k: fix(v) for k, v in node.items()}
            node = {k: fix(v, k in ("properties", "$defs")) for k, v in node.items() if k != "default"}
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            return node
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return fix(model.model_json_schema())


def _body(request: LLMRequest, model: str, schema: dict | None) -> dict:
    body: dict[str, Any] = {"model": model, "messages": request.messages}
    for name in ("temperature", "max_tokens", "seed"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if schema is not None:
        name = request.response_model.__name__
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
        body["response_format"]["json_schema"]["strict"] = True
    body.update(request.params)
    return body


def cache_key(request: LLMRequest, endpoint: Endpoint) -> str:
    """The cache key of ``request`` sent to ``endpoint`` (contract: ``generation/cache.py``)."""
    schema = strict_schema(request.response_model) if request.response_model else None
    return key_for_body(_body(request, endpoint.model, schema), request.prompt_version)


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
        self.concurrency, self.timeout, self.max_retries = concurrency, timeout, max_retries
        self.budget_usd, self.cache = budget_usd, cache
        self.backoff_base, self.backoff_max, self.retry_after_max = backoff_base, backoff_max, retry_after_max
        self._transport = transport
        self.stats = RunStats()
        self._rng = random.Random(seed)
        self._slots = asyncio.Semaphore(concurrency)
        self._schemas: dict[type, dict] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self._reserved = 0.0
        self._budget_cond: asyncio.Condition | None = None
        self._stopped: str | None = None
        self._secrets = sorted(
            {ep.api_key for ep in self.endpoints.values() if ep.api_key}, key=len, reverse=True
        )

    # -- public -------------------------------------------------------------------------------
    async def complete(self, request: LLMRequest) -> LLMResult:
        """Run one request to a result: cached reply, fresh reply, or recorded error."""
        if self._stopped:
            raise BudgetExceeded(self._stopped)
        started = time.perf_counter()
        endpoint = self.endpoints.get(request.role)
        if endpoint is None:
            raise InputError(
                f"LLMRequest.role: no endpoint for role {request.role!r}; known: {sorted(self.endpoints)}"
            )
        self.stats.calls += 1
        schema = self._schema(request.response_model) if request.response_model else None
        body = _body(request, endpoint.model, schema)
        if self.cache is None:
            result = await self._send(request, endpoint, canonical_json(body).encode("utf-8"))
        else:
            result = await self._cached(request, endpoint, body)
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

    # -- cache and in-flight sharing --------------------------------------------------------------
    async def _cached(self, request: LLMRequest, endpoint: Endpoint, body: dict) -> LLMResult:
        key = key_for_body(body, request.prompt_version)
        if key in self._inflight:  # the same call is on its way: share its answer
            leader = await asyncio.shield(self._inflight[key])
            return leader.model_copy(update={"cached": leader.ok, "cost_usd": 0.0, "attempts": 0})
        hit = self.cache.get(key)
        if hit is not None:
            result = LLMResult(
                text=hit.text,
                usage=Usage(prompt_tokens=hit.prompt_tokens, completion_tokens=hit.completion_tokens),
                cost_known=hit.cost_usd is not None,
                cached=True,
                finish_reason=hit.finish_reason,
                model=endpoint.model,
            )
            try:
                if request.response_model is not None:
                    result.parsed = request.response_model.model_validate_json(hit.text)
                self.stats.cache_hits += 1
                return result
            except ValidationError:  # stored under an older model class: ask again
                pass
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._send(request, endpoint, canonical_json(body).encode("utf-8"))
            if result.ok:
                self.cache.put(
                    key, model=endpoint.model, prompt_version=request.prompt_version, text=result.text,
                    finish_reason=result.finish_reason, prompt_tokens=result.usage.prompt_tokens,
                    completion_tokens=result.usage.completion_tokens,
                    cost_usd=result.cost_usd if result.cost_known else None,
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

    # -- sending with retries ---------------------------------------------------------------------
    async def _send(self, request: LLMRequest, endpoint: Endpoint, body: bytes) -> LLMResult:
        worst = self._worst_case(request, endpoint, len(body))
        error = "not sent"
        attempt = 0
        while attempt <= self.max_retries:
            attempt += 1
            if attempt > 1:
                self.stats.retries += 1
            await self._reserve(worst)
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
                delay = self._delay(attempt, e.retry_after)
            finally:
                await self._settle(worst)
            if attempt <= self.max_retries:
                await asyncio.sleep(delay)
        self.stats.errors += 1
        tag = f"{request.tag}: " if request.tag else ""
        return LLMResult(error=f"{tag}{request.role} call failed after {attempt} attempt(s): {error}",
                         attempts=attempt, model=endpoint.model)  # fmt: skip

    def _read(self, request: LLMRequest, endpoint: Endpoint, data: dict) -> LLMResult:
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
        cost = self.prices.cost(endpoint.model, prompt, completion) if counted else None
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

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.retry_after_max) * (1 + 0.25 * self._rng.random())
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return delay * (0.5 + 0.5 * self._rng.random())

    # -- budget -------------------------------------------------------------------------------------
    def _worst_case(self, request: LLMRequest, endpoint: Endpoint, body_bytes: int) -> float:
        if self.budget_usd is None:
            return 0.0
        # Over-estimate the prompt: one token per 3 bytes of body is above every tokenizer's
        # rate for English (~4 chars) and about right for CJK (3 bytes, ~1 token per char).
        prompt = body_bytes // 3 + 1
        completion = request.max_tokens or request.params.get("max_completion_tokens")
        return self.prices.cost(endpoint.model, prompt, completion or DEFAULT_MAX_TOKENS_FOR_BUDGET) or 0.0

    async def _reserve(self, worst: float) -> None:
        if self.budget_usd is None:
            return
        if self._budget_cond is None:
            self._budget_cond = asyncio.Condition()
        async with self._budget_cond:
            while True:
                if self._stopped:
                    raise BudgetExceeded(self._stopped)
                if self.stats.cost_usd + worst > self.budget_usd:
                    self._stopped = (
                        f"--budget-usd {self.budget_usd:g}: spent {self.stats.cost_usd:.6g} USD and the next "
                        f"request may cost up to {worst:.6g} USD; stopped before exceeding it "
                        "(rerun with a larger budget: finished calls replay from the cache)"
                    )
                    self._budget_cond.notify_all()
                    raise BudgetExceeded(self._stopped)
                if self.stats.cost_usd + self._reserved + worst <= self.budget_usd:
                    self._reserved += worst
                    return
                await self._budget_cond.wait()  # in-flight calls may settle cheaper than reserved

    async def _settle(self, worst: float) -> None:
        if self.budget_usd is None:
            return
        async with self._budget_cond:
            self._reserved -= worst
            self._budget_cond.notify_all()

    def _schema(self, model: type[BaseModel]) -> dict:
        if model not in self._schemas:
            self._schemas[model] = strict_schema(model)
        return self._schemas[model]

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text
