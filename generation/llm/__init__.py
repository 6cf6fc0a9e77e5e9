"""The LLM client layer: the runner and what it is made of.

- ``runner.py``: :class:`LLMRunner`, the one wrapper around every call (concurrency, retries,
  timeouts, cost, cache), owning ``retry.py`` (:class:`RetryPolicy`), ``budget.py``
  (:class:`Budget`, :class:`BudgetExceeded`) and ``replay.py`` (:class:`CacheReplay`);
- ``requests.py``: :class:`LLMRequest`, :class:`LLMResult`, the body sent and its cache key;
- ``transport.py``: one async call to an OpenAI-compatible endpoint; ``endpoints.py``: where
  each role's requests go; ``cache.py``: the SQLite response cache; ``pricing.py`` with
  ``prices.yaml``: cost per model; ``options.py``: the LLM flags shared by every command.
"""

from .budget import BudgetExceeded
from .cache import ResponseCache
from .endpoints import ROLES, Endpoint, endpoints_from_options
from .pricing import PriceTable
from .requests import LLMRequest, LLMResult, RunStats, cache_key, strict_schema
from .runner import LLMRunner
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
