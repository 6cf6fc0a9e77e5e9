"""The retry rules of one call, shared by the online runner and the batch rounds.

A :class:`Call` holds the state of one request across its attempts (the attempt count, the
structured-output mode, the cap scale, whether invalid JSON was already asked again) and says
what each outcome means, so that an answer read from a batch output line is treated exactly as
the same answer read online:

- :meth:`Call.on_reply` (a 2xx reply body): usable -> the result; a refusal -> recorded with its
  text, not retried; cut at the cap -> once more with the cap doubled, then recorded naming the
  cap; a structured reply that does not validate -> once more, then recorded;
- :meth:`Call.on_failure` (a :class:`TransportFailure`, online or from a batch line): 401/403
  raise :class:`ServiceError`; a refused response format falls back to the next mode
  (``--structured-output auto``, not counted as an attempt); ``context_length_exceeded`` is
  recorded as ``context_limit``; other 4xx are recorded as ``rejected`` (not retried) and counted
  by the fail-fast guard (3 identical ones stop the run); the rest is retried, after the backoff
  online, in the next round in a batch, up to ``--max-retries``.

A :class:`Verdict` with a ``result`` ends the call; without one, the call goes on (after
``delay`` seconds online).

Example:
    >>> Verdict(None, 0.5).result is None
    True
"""

from __future__ import annotations

from typing import NamedTuple

from .reply import read_reply
from .requests import LLMResult
from .retry import classify
from .structured import first_mode, next_mode, refused
from .transport import TransportFailure


class Verdict(NamedTuple):
    result: LLMResult | None  # set: the call is over (a success or a recorded failure)
    delay: float = 0.0  # before the next attempt (online; a batch retries in its next round)


class Call:
    """One request's way through its attempts (see the module docstring); ``runner`` is the
    :class:`LLMRunner` whose rules, guard, stats and retry policy apply; ``unit`` names the
    attempts in the error (a batch counts "batch round(s)")."""

    def __init__(self, runner, request, endpoint, unit: str = "attempt(s)"):
        self.runner, self.request, self.endpoint, self.unit = runner, request, endpoint, unit
        self.ident = (endpoint.base_url, endpoint.model)  # where the last attempt went (a pool's replica)
        self.field = runner.rules.rule(endpoint.model).max_tokens_field
        structured = request.response_model is not None
        self.mode = first_mode(runner.structured_output) if structured else None
        self.error, self.kind = "not sent", "transient"
        self.attempt, self.cap_scale, self.asked_again = 0, 1, False

    @property
    def more(self) -> bool:
        """Whether another attempt is allowed after this one."""
        return self.attempt < self.runner.retry.attempts()

    def start(self) -> None:
        """Count one attempt (the first, or a retry)."""
        self.attempt += 1
        if self.attempt > 1:
            self.runner.stats.retries += 1

    def on_reply(self, data: dict, raw: bytes, cap: int | None, prices=None) -> Verdict:
        """A decoded 2xx reply to the body ``raw`` (sent with ``cap``), priced with ``prices``
        (default: the runner's table). Raises :class:`TransportFailure` for a body without choices."""
        r, request, endpoint = self.runner, self.request, self.endpoint
        result, problem = read_reply(data, request, model=endpoint.model, mode=self.mode,
                                     prices=prices or r.prices, body=raw)  # fmt: skip
        r._count(result, endpoint)
        result.attempts = self.attempt
        if problem is None:
            return Verdict(result)
        if problem.kind == "refusal":
            return Verdict(self._failed("refusal", f"refused: {problem.detail}", refusal=problem.detail))
        last = not self.more
        if problem.kind == "length":
            where = f"{self.field}={cap}" if cap is not None else "the server's own limit (no cap sent)"
            error = (f"the reply was cut at {where} ({problem.detail}); raise the cap or use a model "
                     "that answers more briefly")  # fmt: skip
            if cap is None or self.cap_scale != 1 or last:
                return Verdict(self._failed("length", error))
            self.cap_scale = 2  # once, with room to finish
            return Verdict(None)
        self.error, self.kind = problem.detail, "invalid_output"
        if self.asked_again or last:
            return Verdict(self.give_up())
        self.asked_again = True
        return Verdict(None)

    def on_failure(self, e: TransportFailure) -> Verdict:
        """A failed attempt; raises :class:`ServiceError` (refused key) or :class:`RunStopped`."""
        r = self.runner
        kind, error = classify(e), r._redact(str(e))
        self.mode = e.mode or self.mode
        if kind == "fatal":  # the key is refused: every other call stops too
            r._refused_key(self.ident, error)
        if kind == "rejected" and self.mode is not None and r.structured_output == "auto":
            if refused(self.mode, e.status, e.server_message) and next_mode(self.mode) is not None:
                self.mode = r._fall_back(self.ident, self.mode)
                self.attempt -= 1  # the server said what it takes: this one does not count
                return Verdict(None)
        if kind == "context_limit":
            return Verdict(self._failed(kind, error))
        self.error, self.kind = error, kind
        if kind == "rejected":
            r.guard.rejected(self.ident, error)
            return Verdict(self.give_up())
        if not self.more:
            return Verdict(self.give_up())
        return Verdict(None, r.retry.delay(self.attempt, e.retry_after))

    def give_up(self) -> LLMResult:
        """The recorded failure after the last attempt."""
        base_url, model = self.ident
        if self.kind == "rejected":
            how = f"rejected by {base_url or 'the OpenAI API'} for {model} (not retried)"
        else:
            how = f"failed after {self.attempt} {self.unit}"
        return self._failed(self.kind, f"{how}: {self.error}", plain=True)

    def _failed(self, kind: str, error: str, refusal: str | None = None, plain: bool = False) -> LLMResult:
        self.runner.stats.errors += 1
        request = self.request
        tag = f"{request.tag}: " if request.tag else ""
        call = f"{request.role} call " if plain else f"{request.role} call: "
        return LLMResult(error=f"{tag}{call}{error}", error_kind=kind, refusal=refusal, attempts=self.attempt,
                         model=self.endpoint.model)  # fmt: skip
