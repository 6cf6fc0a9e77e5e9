"""Reading one 2xx reply: its text, its usage (or a local estimate), its cost, and what is wrong with it.

:func:`read_reply` returns the :class:`LLMResult` and a :class:`Problem` (None when the reply
is usable). The tokens of every reply are billed, usable or not, so usage and cost are read
before anything is checked. Problems, in the order they are looked for:

- ``refusal``: ``message.refusal`` is set (OpenAI's safety refusals under structured outputs);
  retrying gets the same refusal, so the runner records it with its text;
- ``length``: the reply stopped at the token cap (``finish_reason`` "length") and is cut JSON,
  or is empty (a reasoning model spent the cap on hidden reasoning); the runner retries once
  with the cap doubled;
- ``invalid``: a structured reply that is not valid JSON for the answer model (after Markdown
  fences are stripped); the runner retries it once.

A reply without ``usage`` is charged by the local estimate of ``tokens.py`` (the whole body
sent as the prompt, the reply text as the completion) and flagged ``usage_estimated``.
``usage.prompt_tokens_details.cached_tokens`` are priced at the model's cached-input rate.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import ValidationError

from recllmsim_hf.schema import Usage

from . import tokens
from .pricing import PriceTable
from .requests import LLMRequest, LLMResult
from .structured import extract_json
from .transport import TransportFailure


class Problem(NamedTuple):
    kind: str  # "refusal", "length" or "invalid"
    detail: str


def read_reply(
    data: dict, request: LLMRequest, *, model: str, mode: str | None, prices: PriceTable, body: bytes
) -> tuple[LLMResult, Problem | None]:
    """The result of one decoded reply body and its problem, if any (module docstring)."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        text = message.get("content") or ""
        refusal = message.get("refusal") or None
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise TransportFailure("the reply has no choices[0].message", retryable=True) from None
    usage = data.get("usage")
    try:
        if isinstance(usage, dict) and usage.get("prompt_tokens") is not None:
            prompt, completion = int(usage["prompt_tokens"]), int(usage.get("completion_tokens") or 0)
            details = usage.get("prompt_tokens_details") or {}
            cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
            estimated = False
        else:
            prompt, completion = tokens.estimate(body), tokens.estimate(text + (refusal or ""))
            cached, estimated = 0, True
    except (TypeError, ValueError):
        raise TransportFailure("the reply's usage is not a set of token counts", retryable=True) from None
    cost = prices.cost(model, prompt, completion, cached_tokens=cached)
    result = LLMResult(
        text=text,
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion),
        cost_usd=cost or 0.0,
        cost_known=cost is not None,
        finish_reason=finish,
        model=model,
        usage_estimated=estimated,
        structured_mode=mode,
    )
    if refusal:
        result.refusal = str(refusal)
        return result, Problem("refusal", str(refusal))
    if request.response_model is None:
        if finish == "length" and not text.strip():
            return result, Problem("length", "an empty reply")
        return result, None
    result.text = extract_json(text, mode or "json_schema")
    try:
        result.parsed = request.response_model.model_validate_json(result.text)
    except ValidationError as e:
        if finish == "length":
            return result, Problem("length", "cut JSON")
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        name = request.response_model.__name__
        shown = text.strip().replace("\n", " ")[:80]
        return result, Problem("invalid", f"structured output does not fit {name} ({where}: {first['msg']}; "
                                          f"reply began {shown!r})")  # fmt: skip
    return result, None
