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
  ``response_model`` (a pydantic class: sent as a structured output in the endpoint's mode,
  the reply parsed and validated; a reply that does not validate is asked again once),
  ``prompt_version``, ``params`` (more body fields), ``tag`` (a label for error messages, not
  sent).
- :class:`LLMResult`: ``text``, ``parsed``, ``usage`` (:class:`recllmsim_hf.schema.Usage`; a
  replay reports the usage of the call that was stored),
  ``cost_usd`` (spent by this call: 0 when replayed), ``cost_known`` (False for a model
  without a price or a reply without usage), ``cached``, ``attempts`` (HTTP attempts of
  this call: 0 when replayed), ``error`` (set when the call failed; ``complete`` does not raise for
  per-request failures), ``error_kind``, ``refusal``, ``structured_mode``, ``usage_estimated``,
  ``latency`` (seconds), ``finish_reason``, ``model``; ``ok``.
- :class:`LLMRunner` ``(endpoints, *, concurrency=32, timeout=60, max_retries=8,
  budget_usd=None, prices=None, cache=None, backoff_base=0.5, backoff_max=30,
  retry_after_max=120, transport=None, seed=0, rules=None, params=None,
  structured_output="auto", warn=None)`` (``seed`` only drives the backoff jitter; ``rules``: a
  :class:`ModelRules`, ``params``: ``{role: {field: value}}`` from ``--param``, ``warn``: where
  one-time warnings go, stderr by default): ``await runner.complete(request)``, ``await
  runner.check()`` (fail fast on an unreachable endpoint or a refused key), ``runner.stats``,
  ``runner.cache_key(request)``, ``runner.structured_modes`` (role -> the structured-output mode
  its calls used), ``await runner.close()``.
- :class:`BudgetExceeded`: raised by ``complete`` *before* a request whose worst-case cost
  would take spending over ``budget_usd``; after that every ``complete`` raises it.
- :class:`ResponseCache` (``cache.py``), :func:`cache_key` (``requests.py``) and
  :class:`PriceTable` (``pricing.py``).

Collaborators it owns: :class:`RetryPolicy` (``retry.py``), :class:`Budget` (``budget.py``),
:class:`CacheReplay` (``replay.py``).

Failures (``retry.py``): 429, 408/409, 5xx, timeouts, connection errors and bodies that are
not JSON or lack ``choices`` are retried with exponential backoff and jitter (``backoff_base *
2**(n-1)`` capped at ``backoff_max``, times 0.5-1.0), or after the server's ``retry-after-ms`` /
``Retry-After`` (plus up to 25 % jitter). Other 4xx end the request at once with its error
recorded (``error_kind`` "rejected", or "context_limit" for a prompt longer than the model's
context); the first request to each endpoint goes alone until it has answered, and 3 identical
rejections stop the run with :class:`RunStopped` (``guard.py``); 401/403 raise
:class:`ServiceError` (every request would fail). Answers that cannot improve get one more
attempt at most (``reply.py``): a refusal is recorded with its text and not retried; a reply cut
at the token cap is asked again once with the cap doubled, then recorded naming the cap; a
structured reply that does not validate is asked again once. Structured outputs follow
``structured_output`` (``structured.py``): ``auto`` falls back from ``json_schema`` to
``json_object`` to ``prompt`` once per endpoint when the server refuses the response format.
A server that sends no usage is charged by the local estimate of ``tokens.py`` (warned once).
Transport sits behind :class:`Transport` (one async call,
``transport.py``), so an OpenAI Batch API transport can replace
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
import json
import sys
import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from recllmsim_hf.errors import InputError, ServiceError

from .budget import Budget
from .cache import ResponseCache, key_for_body
from .endpoints import Endpoint, endpoints_from_options
from .guard import Guard, RunStopped
from .pricing import PriceTable
from .replay import CacheReplay
from .reply import read_reply
from .requests import LLMRequest, LLMResult, RunStats, cache_key, request_body, strict_schema
from .retry import RetryPolicy, classify
from .rules import ModelRules
from .structured import check_mode, first_mode, next_mode, refused
from .transport import OpenAITransport, Transport, TransportFailure

__all__ = ["LLMRunner", "RunStopped", "cache_key", "endpoints_from_options"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
        rules: ModelRules | None = None,
        params: dict[str, dict] | None = None,
        structured_output: str = "auto",
        warn: Callable[[str], None] | None = None,
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
        self.rules = rules or ModelRules.load()
        self.params = {role: dict((params or {}).get(role) or {}) for role in self.endpoints}
        self.structured_output = check_mode(structured_output)
        self.structured_modes: dict[str, str] = {}
        self.guard = Guard()
        self._modes: dict[tuple, str] = {}  # endpoint -> the mode it takes (auto's fallbacks)
        self._warn = warn or _stderr
        self._warned: set[tuple] = set()
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
        self.guard.raise_if_stopped()
        started = time.perf_counter()
        endpoint = self._endpoint(request)
        self.stats.calls += 1
        body = self._body(request, endpoint, first_mode(self.structured_output))

        def send():
            return self._send(request, endpoint)

        if self._replay is None:
            result = await send()
        else:
            result = await self._replay.complete(request, endpoint, body, send)
        if result.structured_mode is not None:
            self.structured_modes[request.role] = result.structured_mode
        result.latency = time.perf_counter() - started
        return result

    def cache_key(self, request: LLMRequest) -> str:
        """The key this runner stores ``request``'s reply under (rules, ``--param`` and endpoint)."""
        endpoint = self._endpoint(request)
        body = self._body(request, endpoint, first_mode(self.structured_output))
        return key_for_body(body, request.prompt_version, endpoint.base_url)

    async def check(self, roles: Sequence[str] | None = None) -> None:
        """Raise :class:`ServiceError` if the endpoint of one of ``roles`` (default: all) is
        unreachable or refuses its key; the message names the roles that use that endpoint."""
        check = getattr(self.transport, "check", None)
        if check is None:
            return
        users: dict[tuple, list[str]] = {}
        for role in roles or sorted(self.endpoints):
            ep = self.endpoints[role]
            users.setdefault((ep.base_url, ep.api_key), []).append(role)
        for names in users.values():
            ep = self.endpoints[names[0]]
            try:
                await check(ep)
            except TransportFailure as e:
                where = ep.base_url or "the OpenAI API"
                label = " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]
                label += " roles" if len(names) > 1 else " role"
                raise ServiceError(
                    f"{where} ({label}): {self._redact(str(e))}; check --base-url and --api-key"
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
    def _endpoint(self, request: LLMRequest) -> Endpoint:
        endpoint = self.endpoints.get(request.role)
        if endpoint is None:
            raise InputError(
                f"LLMRequest.role: no endpoint for role {request.role!r}; known: {sorted(self.endpoints)}"
            )
        return endpoint

    def _body(self, request: LLMRequest, endpoint: Endpoint, mode: str, cap_scale: int = 1) -> dict:
        schema = self._schema(request.response_model) if request.response_model else None
        rule = self.rules.rule(endpoint.model)
        body = request_body(request, endpoint.model, schema, mode=mode, rule=rule,
                            params=self.params.get(request.role))  # fmt: skip
        if cap_scale != 1 and isinstance(body.get(rule.max_tokens_field), int):
            body[rule.max_tokens_field] *= cap_scale
        return body

    async def _attempt(self, request: LLMRequest, endpoint: Endpoint, mode: str | None, cap_scale: int):
        """One HTTP attempt: (reply JSON, body bytes, cap sent, mode used). The mode is read when the
        endpoint's turn comes, so calls queued behind the first one use what it found out."""
        ident = (endpoint.base_url, endpoint.model)
        rule = self.rules.rule(endpoint.model)
        async with self.guard.turn(ident):
            if mode is not None:
                mode = self._modes.get(ident, mode)
            body = self._body(request, endpoint, mode or "json_schema", cap_scale)
            cap = body.get(rule.max_tokens_field)
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            worst = self.budget.worst_case(request, endpoint, len(raw), cap or rule.reserve_completion_tokens)
            await self.budget.reserve(worst)
            try:
                async with self._slots:
                    self.stats.requests += 1
                    data = await self.transport.complete(endpoint, raw)
            except TransportFailure as e:
                e.mode = mode  # the mode this attempt was sent in
                raise
            finally:
                await self.budget.settle(worst)
            self.guard.answered(ident)
        return data, raw, cap, mode

    async def _send(self, request: LLMRequest, endpoint: Endpoint) -> LLMResult:
        ident = (endpoint.base_url, endpoint.model)
        field = self.rules.rule(endpoint.model).max_tokens_field
        mode = first_mode(self.structured_output) if request.response_model is not None else None
        error, kind, attempt, cap_scale, asked_again = "not sent", "transient", 0, 1, False
        while attempt < self.retry.attempts():
            attempt += 1
            if attempt > 1:
                self.stats.retries += 1
            try:
                data, raw, cap, mode = await self._attempt(request, endpoint, mode, cap_scale)
                result, problem = read_reply(data, request, model=endpoint.model, mode=mode,
                                             prices=self.prices, body=raw)  # fmt: skip
            except TransportFailure as e:
                kind, error, mode = classify(e), self._redact(str(e)), e.mode or mode
                if kind == "fatal":  # the key is refused: every other call stops too
                    where = endpoint.base_url or "the OpenAI API"
                    self.guard.stopped = self.guard.stopped or (
                        f"{where} refused the request ({error}; model {endpoint.model}); "
                        "check --api-key / --api-key-env / OPENAI_API_KEY"
                    )
                    raise ServiceError(self.guard.stopped) from None
                if kind == "rejected" and mode is not None and self.structured_output == "auto":
                    if refused(mode, e.status, e.server_message) and next_mode(mode) is not None:
                        mode = self._fall_back(ident, mode)
                        attempt -= 1  # the server said what it takes: this one does not count
                        continue
                if kind == "context_limit":
                    return self._failed(request, endpoint, attempt, kind, error)
                if kind == "rejected":
                    self.guard.rejected(ident, error)
                    break
                if attempt < self.retry.attempts():
                    await asyncio.sleep(self.retry.delay(attempt, e.retry_after))
                continue
            self._count(result, endpoint)
            result.attempts = attempt
            if problem is None:
                return result
            if problem.kind == "refusal":
                return self._failed(request, endpoint, attempt, "refusal", f"refused: {problem.detail}",
                                    refusal=problem.detail)  # fmt: skip
            last = attempt >= self.retry.attempts()
            if problem.kind == "length":
                where = f"{field}={cap}" if cap is not None else "the server's own limit (no cap sent)"
                error = (f"the reply was cut at {where} ({problem.detail}); raise the cap or use a model "
                         "that answers more briefly")  # fmt: skip
                if cap is None or cap_scale != 1 or last:
                    return self._failed(request, endpoint, attempt, "length", error)
                cap_scale = 2  # once, with room to finish
                continue
            error, kind = problem.detail, "invalid_output"
            if asked_again or last:
                break
            asked_again = True
        if kind == "rejected":
            how = f"rejected by {endpoint.base_url or 'the OpenAI API'} for {endpoint.model} (not retried)"
        else:
            how = f"failed after {attempt} attempt(s)"
        return self._failed(request, endpoint, attempt, kind, f"{how}: {error}", plain=True)

    def _failed(
        self, request: LLMRequest, endpoint: Endpoint, attempts: int, kind: str, error: str,
        refusal: str | None = None, plain: bool = False,
    ) -> LLMResult:  # fmt: skip
        self.stats.errors += 1
        tag = f"{request.tag}: " if request.tag else ""
        call = f"{request.role} call " if plain else f"{request.role} call: "
        return LLMResult(error=f"{tag}{call}{error}", error_kind=kind, refusal=refusal, attempts=attempts,
                         model=endpoint.model)  # fmt: skip

    def _fall_back(self, ident: tuple, mode: str) -> str:
        new = next_mode(mode)
        if self._modes.get(ident, mode) == mode:  # first to see it: tell the user once
            self._modes[ident] = new
            base_url, model = ident
            self._warn(
                f"warning: {base_url or 'the OpenAI API'} does not take response_format {mode} for "
                f"{model}; using {new} for the rest of the run (force one with --structured-output)"
            )
        return self._modes[ident]

    def _count(self, result: LLMResult, endpoint: Endpoint) -> None:
        self.stats.prompt_tokens += result.usage.prompt_tokens
        self.stats.completion_tokens += result.usage.completion_tokens
        self.stats.cost_usd += result.cost_usd
        self.stats.unpriced_calls += not result.cost_known
        if result.usage_estimated and (endpoint.base_url, endpoint.model) not in self._warned:
            self._warned.add((endpoint.base_url, endpoint.model))
            self._warn(
                f"warning: {endpoint.base_url or 'the OpenAI API'} sent no token usage for {endpoint.model}; "
                "counting a local estimate (UTF-8 bytes / 3 per text) so costs and --budget-usd still work"
            )

    def _schema(self, model: type[BaseModel]) -> dict:
        if model not in self._schemas:
            self._schemas[model] = strict_schema(model)
        return self._schemas[model]

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text
