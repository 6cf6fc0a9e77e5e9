"""What one LLM call is: the request, its result, run counters, and the exact body sent.

:func:`request_body` is the one place a request becomes a chat-completions body; the cache
key (:func:`cache_key`, contract in ``cache.py``) is taken over that same body, so what is
sent and what is cached never drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recllmsim_hf.schema import Usage

from .cache import key_for_body
from .endpoints import Endpoint
from .rules import ModelRule, shape
from .structured import response_format, with_instruction


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
    # Why the call failed ("rejected", "context_limit", "refusal", "length", "invalid_output",
    # "transient"); None when it succeeded.
    error_kind: str | None = None
    refusal: str | None = None  # the model's refusal text (``message.refusal``)
    structured_mode: str | None = None  # json_schema, json_object or prompt (structured calls)
    usage_estimated: bool = False  # the server sent no usage: tokens estimated locally (tokens.py)

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


def request_body(
    request: LLMRequest,
    model: str,
    schema: dict | None,
    *,
    mode: str = "json_schema",
    rule: ModelRule | None = None,
    params: dict[str, Any] | None = None,
) -> dict:
    """The chat-completions body of ``request`` for ``model`` (``schema``: its strict JSON schema),
    in structured-output ``mode``, shaped by the model's ``rule``, with the role's ``params`` last."""
    messages = request.messages
    if schema is not None and mode != "json_schema":
        messages = with_instruction(messages, schema)
    body: dict[str, Any] = {"model": model, "messages": messages}
    for name in ("temperature", "max_tokens", "seed"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if schema is not None:
        fmt = response_format(mode, request.response_model.__name__, schema)
        if fmt is not None:
            body["response_format"] = fmt
    body.update(request.params)
    if rule is not None:
        body = shape(rule, body)
    body.update(params or {})
    return body


def cache_key(request: LLMRequest, endpoint: Endpoint, **shaping: Any) -> str:
    """The cache key of ``request`` sent to ``endpoint`` (contract: ``cache.py``); ``shaping`` are
    :func:`request_body`'s keywords (a runner's own keys: :meth:`LLMRunner.cache_key`)."""
    schema = strict_schema(request.response_model) if request.response_model else None
    body = request_body(request, endpoint.model, schema, **shaping)
    return key_for_body(body, request.prompt_version, endpoint.base_url)
