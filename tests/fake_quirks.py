"""The behaviours of real OpenAI-compatible servers, for :class:`fake_openai.FakeOpenAI` (``quirks=``).

Each field of :class:`Quirks` switches one documented behaviour on, with the status code and
error body the real server sends (``flavour`` picks the body shape):

- ``openai``: ``{"error": {"message", "type", "param", "code"}}`` (the OpenAI API);
- ``vllm``: ``{"object": "error", "message", "type": "BadRequestError", "param": null, "code": 400}``
  (vLLM's OpenAI server: the fields at the top level, ``code`` the HTTP status);
- ``ollama``: ``{"error": {"message", "type", "param": null, "code": null}}`` (Ollama's ``/v1``:
  type ``invalid_request_error`` for 400, ``not_found_error`` for 404, ``api_error`` otherwise).

Behaviours:

- ``reasoning``: models named like OpenAI reasoning models (:data:`REASONING`: o1, o3, o4,
  gpt-5 families; not ``gpt-5-chat``) get their request rules: a ``temperature`` other than 1
  and any ``top_p`` are 400 ``unsupported_value`` / ``unsupported_parameter``; ``max_tokens`` is
  400 ``unsupported_parameter`` ("Use 'max_completion_tokens' instead"); o1-mini and
  o1-preview reject ``system`` and ``developer`` messages. Each reply first spends
  ``reasoning_tokens`` hidden tokens, which count against ``max_completion_tokens``: a cap at or
  below them gives empty content with ``finish_reason`` "length" (billed all the same), and
  ``usage.completion_tokens_details.reasoning_tokens`` reports them.
- ``structured``: the ``response_format`` types the server takes: "json_schema" (all),
  "json_object" (json_schema is a 400, as on servers without structured outputs), "none"
  (both are 400s).
- ``known_models``: other models get 404 ``model_not_found``.
- ``api_keys``: other bearer keys get 401 ``invalid_api_key`` (the key shown masked, as OpenAI does).
- ``usage=False``: replies without ``usage`` (some servers and proxies).
- ``cached_share``: that share of the prompt tokens is reported as
  ``usage.prompt_tokens_details.cached_tokens``.
- ``truncate_json``: structured replies stop halfway (cut JSON) with ``finish_reason`` "length".
- ``refuse``: structured requests get ``message.refusal`` (content null), as OpenAI's safety
  refusals under structured outputs.
- ``fence_json``: JSON replies come wrapped in a Markdown fence (```json ... ```), as small local
  models write them.
- ``context_tokens``: a request whose prompt (one token per 4 characters of message content) plus
  cap exceeds it gets 400 ``context_length_exceeded``.

Example:
    >>> q = Quirks(reasoning=True)
    >>> q.check({"model": "gpt-5-mini", "messages": [], "max_tokens": 5}, "sk")[1]["error"]["code"]
    'unsupported_parameter'
    >>> q.check({"model": "gpt-4o-mini", "messages": [], "max_tokens": 5}, "sk") is None
    True
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass

REASONING = ("o1*", "o3*", "o4*", "gpt-5*")
NOT_REASONING = ("gpt-5-chat*",)
NO_SYSTEM_ROLE = ("o1-mini*", "o1-preview*")
SAMPLING = ("top_p", "presence_penalty", "frequency_penalty", "logprobs")
REFUSAL = "I'm sorry, but I can't assist with that request."
CHARS_PER_TOKEN = 4

_TYPES = {
    "openai": {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"},
    "vllm": {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError"},
    "ollama": {400: "invalid_request_error", 401: "api_error", 404: "not_found_error"},
}


def matches(model: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(model, p) for p in patterns)


def is_reasoning(model: str) -> bool:
    return matches(model, REASONING) and not matches(model, NOT_REASONING)


def tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


@dataclass
class Quirks:
    """Which real-server behaviours to emulate (module docstring); the defaults change nothing."""

    flavour: str = "openai"
    reasoning: bool = False
    reasoning_tokens: int = 256
    structured: str = "json_schema"
    known_models: tuple[str, ...] | None = None
    api_keys: tuple[str, ...] | None = None
    usage: bool = True
    cached_share: float = 0.0
    truncate_json: bool = False
    refuse: bool = False
    fence_json: bool = False
    context_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.flavour not in _TYPES:
            raise ValueError(f"flavour: one of {sorted(_TYPES)}, but got {self.flavour!r}")
        if self.structured not in ("json_schema", "json_object", "none"):
            raise ValueError(f"structured: json_schema, json_object or none, but got {self.structured!r}")

    # -- errors ------------------------------------------------------------------------------
    def error(self, status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
        """The error body this server's flavour sends."""
        kind = _TYPES[self.flavour].get(status, "api_error")
        if self.flavour == "vllm":
            return {"object": "error", "message": message, "type": kind, "param": None, "code": status}
        if self.flavour == "ollama":
            return {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}

    def check(self, body: dict, bearer: str) -> tuple[int, dict] | None:
        """The (status, error body) a real server answers ``body`` with, or None to serve it."""
        if self.api_keys is not None and bearer not in self.api_keys:
            shown = f"{bearer[:3]}*{bearer[-4:]}" if len(bearer) > 8 else "*" * len(bearer)
            message = (
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return 401, self.error(401, message, None, "invalid_api_key")
        model = str(body.get("model", ""))
        if self.known_models is not None and model not in self.known_models:
            if self.flavour == "ollama":
                message = f'model "{model}" not found, try pulling it first'
            elif self.flavour == "vllm":
                message = f"The model `{model}` does not exist."
            else:
                message = f"The model `{model}` does not exist or you do not have access to it."
            return 404, self.error(404, message, None, "model_not_found")
        if self.reasoning and is_reasoning(model):
            found = self._reasoning_rules(model, body)
            if found:
                return found
        fmt = (body.get("response_format") or {}).get("type")
        if fmt == "json_schema" and self.structured != "json_schema":
            return 400, self.error(400, "response_format json_schema not supported", "response_format")
        if fmt == "json_object" and self.structured == "none":
            return 400, self.error(400, "response_format json_object not supported", "response_format")
        if self.context_tokens is not None:
            prompt = sum(tokens(str(m.get("content", ""))) for m in body.get("messages") or [])
            cap = body.get("max_completion_tokens") or body.get("max_tokens") or 0
            if prompt + cap > self.context_tokens:
                if self.flavour == "openai":
                    message = (
                        f"This model's maximum context length is {self.context_tokens} tokens. However, "
                        f"your messages resulted in {prompt + cap} tokens. Please reduce the length of "
                        "the messages."
                    )
                else:
                    message = (
                        f"This model's maximum context length is {self.context_tokens} tokens. However, you "
                        f"requested {prompt + cap} tokens ({prompt} in the messages, {cap} in the "
                        "completion). Please reduce the length of the messages or completion."
                    )
                return 400, self.error(400, message, "messages", "context_length_exceeded")
        return None

    def _reasoning_rules(self, model: str, body: dict) -> tuple[int, dict] | None:
        if matches(model, NO_SYSTEM_ROLE):
            for i, m in enumerate(body.get("messages") or []):
                if m.get("role") in ("system", "developer"):
                    message = (
                        f"Unsupported value: 'messages[{i}].role' does not support '{m['role']}' "
                        "with this model."
                    )
                    return 400, self.error(400, message, f"messages[{i}].role", "unsupported_value")
        if "max_tokens" in body:
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
            return 400, self.error(400, message, "max_tokens", "unsupported_parameter")
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            shown = json.dumps(temperature)
            message = (
                f"Unsupported value: 'temperature' does not support {shown} with this model. "
                "Only the default (1) value is supported."
            )
            return 400, self.error(400, message, "temperature", "unsupported_value")
        for name in SAMPLING:
            if name in body:
                message = f"Unsupported parameter: '{name}' is not supported with this model."
                return 400, self.error(400, message, name, "unsupported_parameter")
        return None

    # -- replies -----------------------------------------------------------------------------
    def shape(self, body: dict, text: str, structured: bool) -> tuple[dict, str, dict]:
        """The (message, finish_reason, usage) of a reply whose full answer is ``text``."""
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        hidden = self.reasoning_tokens if self.reasoning and is_reasoning(str(body.get("model", ""))) else 0
        message: dict = {"role": "assistant", "content": text, "refusal": None}
        finish = "stop"
        if structured and self.refuse:
            message.update(content=None, refusal=REFUSAL)
            text = REFUSAL
        elif structured and self.fence_json:
            text = f"```json\n{text}\n```"
            message["content"] = text
        if structured and self.truncate_json and not self.refuse:
            text, finish = text[: max(1, len(text) // 2)], "length"
            message["content"] = text
        if cap is not None:
            room = cap - hidden
            if room <= 0:
                hidden, text, finish = cap, "", "length"
                message["content"] = ""
            elif tokens(text) > room:
                text, finish = text[: room * CHARS_PER_TOKEN], "length"
                message["content"] = text
        prompt = sum(tokens(str(m.get("content", ""))) for m in body.get("messages") or [])
        completion = (tokens(text) if text else 0) + hidden
        usage: dict = {"prompt_tokens": prompt, "completion_tokens": completion}
        usage["total_tokens"] = prompt + completion
        if self.cached_share:
            usage["prompt_tokens_details"] = {"cached_tokens": int(prompt * self.cached_share)}
        if hidden:
            usage["completion_tokens_details"] = {"reasoning_tokens": hidden}
        return message, finish, usage


PRESETS: dict[str, Quirks] = {
    "openai-reasoning": Quirks(reasoning=True),
    "vllm-no-json-schema": Quirks(flavour="vllm", structured="json_object"),
    "ollama-no-structured": Quirks(flavour="ollama", structured="none"),
    "unknown-model": Quirks(known_models=("gpt-4o-mini",)),
    "ollama-unknown-model": Quirks(flavour="ollama", known_models=("llama3.1:8b",)),
    "bad-key": Quirks(api_keys=("sk-the-right-key",)),
    "no-usage": Quirks(usage=False),
    "cached-tokens": Quirks(cached_share=0.5),
    "truncated-json": Quirks(truncate_json=True),
    "refusal": Quirks(refuse=True),
    "fenced-json": Quirks(fence_json=True, structured="json_object"),
    "small-context": Quirks(flavour="vllm", context_tokens=600),
}
