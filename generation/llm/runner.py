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
- For the batch executors (``executors/rounds.py``): ``runner.prepare(request)`` -> (endpoint,
  the JSON body ``complete`` sends first, its cache key) and ``runner.call(request)`` -> a
  :class:`Call` (``calls.py``): the bodies of its attempts (``runner.shaped``) and the same retry
  rules for the answers read from batch output lines.
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
The rules of one call's attempts live in :class:`Call` (``calls.py``), shared with the batch
rounds. Transport sits behind :class:`Transport` (one async call, ``transport.py``;
``pool.py`` routes it over many endpoints, and the guard and the structured-output mode apply
to each of them); how a command's requests go out, online or in batch rounds, is the
executor's job (``executors/``).

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
from .calls import Call
from .endpoints import Endpoint, endpoints_from_options
from .guard import Guard, RunStopped
from .pricing import PriceTable
from .replay import CacheReplay
from .requests import LLMRequest, LLMResult, RunStats, cache_key, request_body, strict_schema
from .retry import RetryPolicy
from .rules import ModelRules
from .structured import check_mode, first_mode, next_mode
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
        keys = {ep.api_key for ep in self.endpoints.values() if ep.api_key}
        keys |= {r.api_key for rs in getattr(transport, "pools", {}).values() for r in rs if r.api_key}
        self._secrets = sorted(keys, key=len, reverse=True)

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

    def shaped(self, call: Call) -> tuple[str | None, bytes, int | None]:
        """The next attempt of ``call``: (mode, body bytes in declaration order, cap sent). The
        mode is the endpoint's when ``auto`` has fallen back for it."""
        if call.mode is not None:  # the mode of the endpoint this attempt goes to
            call.mode = self._modes.get(call.ident, first_mode(self.structured_output))
        rule = self.rules.rule(call.endpoint.model)
        body = self._body(call.request, call.endpoint, call.mode or "json_schema", call.cap_scale)
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        return call.mode, raw, body.get(rule.max_tokens_field)

    def reserve_for(self, call: Call, raw: bytes, cap: int | None) -> float:
        """The worst-case cost of one attempt (the cap sent, else the model rule's reservation)."""
        rule = self.rules.rule(call.endpoint.model)
        completion = cap or rule.reserve_completion_tokens
        return self.budget.worst_case(call.request, call.endpoint, len(raw), completion)

    async def _attempt(self, call: Call):
        """One attempt of ``call``; an endpoint served by a pool (``pool.py``) goes to the replica
        the pool picks, with that replica's guard and structured-output mode."""
        pool = self.transport
        replicas = pool.replicas(call.endpoint) if hasattr(pool, "pick") else None
        if not replicas:
            return await self._attempt_at(call, call.endpoint, pool)
        tried: set[int] = set()
        while True:
            replica, target = await pool.pick(call.endpoint, replicas, tried)
            try:
                out = await self._attempt_at(call, target, pool.inner)
            except TransportFailure as e:
                if await pool.failed(replica, e, replicas, tried):
                    continue  # refused the connection: another replica takes it at once
                raise
            except BaseException:
                await pool.release(replica)
                raise
            await pool.answered(replica)
            return out

    async def _attempt_at(self, call: Call, target: Endpoint, transport) -> tuple[dict, bytes, int | None]:
        """One HTTP attempt to ``target``: (reply JSON, body bytes, cap sent). The mode is read when the
        endpoint's turn comes, so calls queued behind the first one use what it found out."""
        call.ident = (target.base_url, target.model)
        async with self.guard.turn(call.ident):
            mode, raw, cap = self.shaped(call)
            worst = self.reserve_for(call, raw, cap)
            await self.budget.reserve(worst)
            try:
                async with self._slots:
                    self.stats.requests += 1
                    data = await transport.complete(target, raw)
            except TransportFailure as e:
                e.mode = mode  # the mode this attempt was sent in
                raise
            finally:
                await self.budget.settle(worst)
            self.guard.answered(call.ident)
        return data, raw, cap

    async def _send(self, request: LLMRequest, endpoint: Endpoint) -> LLMResult:
        call = Call(self, request, endpoint)
        while True:
            call.start()
            try:
                data, raw, cap = await self._attempt(call)
                verdict = call.on_reply(data, raw, cap)
            except TransportFailure as e:
                verdict = call.on_failure(e)
            if verdict.result is not None:
                return verdict.result
            if verdict.delay:
                await asyncio.sleep(verdict.delay)

    # -- the seam of the batch executors (executors/rounds.py) ----------------------------------------
    def prepare(self, request: LLMRequest) -> tuple[Endpoint, str, str]:
        """The endpoint of ``request``, the JSON body :meth:`complete` sends first, and its cache key."""
        call = self.call(request)
        _, raw, _ = self.shaped(call)
        return call.endpoint, raw.decode("utf-8"), self.cache_key(request)

    def call(self, request: LLMRequest, unit: str = "attempt(s)") -> Call:
        """A fresh :class:`Call` of ``request`` (its attempts follow the online rules)."""
        return Call(self, request, self._endpoint(request), unit)

    def _refused_key(self, ident: tuple, error: str) -> None:
        base_url, model = ident
        self.guard.stopped = self.guard.stopped or (
            f"{base_url or 'the OpenAI API'} refused the request ({error}; model {model}); "
            "check --api-key / --api-key-env / OPENAI_API_KEY"
        )
        raise ServiceError(self.guard.stopped) from None

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
