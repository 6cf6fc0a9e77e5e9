"""The retry policy of the runner: how long to wait before the next attempt.

Exponential backoff with jitter (``base * 2**(n-1)`` capped at ``cap``, times 0.5-1.0), or the
server's ``retry-after-ms`` / ``Retry-After`` (capped at ``retry_after_max``, plus up to 25 %
jitter). The jitter comes from a seeded generator, so a run's waits are reproducible.

What is retried (:func:`classify`): 429, 408/409, 5xx, timeouts and connection failures are
``transient`` (retried with backoff); 401/403 are ``fatal`` (the key is refused: every request
would fail, the run stops at once); other 4xx (400, 404, 422 ...) are ``rejected`` (the server
refuses this request as it is: not retried, and identical rejections stop the run, see
``guard.py``); a 400 saying the prompt is longer than the model's context
(``context_length_exceeded``) is ``context_limit`` (not retried; a conversation keeps its paid
turns). Answers that cannot improve by asking again (a refusal, a reply cut at the cap,
invalid JSON) get at most one more attempt: ``reply.py`` and the runner.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .transport import TransportFailure

_CONTEXT = ("context_length_exceeded", "maximum context length", "context length", "context window")


def classify(failure: TransportFailure) -> str:
    """``transient``, ``fatal``, ``rejected`` or ``context_limit`` (module docstring)."""
    if failure.fatal:
        return "fatal"
    if failure.retryable or failure.status is None:
        return "transient"
    text = f"{failure.code or ''} {failure.server_message}".lower()
    if failure.status in (400, 413) and any(marker in text for marker in _CONTEXT):
        return "context_limit"
    return "rejected"


@dataclass
class RetryPolicy:
    """How many times to retry and how long to wait between attempts."""

    max_retries: int = 8
    base: float = 0.5
    cap: float = 30.0
    retry_after_max: float = 120.0
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def attempts(self) -> int:
        """The most attempts one call may make."""
        return self.max_retries + 1

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.retry_after_max) * (1 + 0.25 * self._rng.random())
        delay = min(self.cap, self.base * 2 ** (attempt - 1))
        return delay * (0.5 + 0.5 * self._rng.random())
