"""The annotators' calls for one record: which to make, what they cost, and how answers land.

A :class:`Job` is one call: the annotator (``what``), the turn it is about (``index``; None for
a whole conversation, profile or scenario) and its :class:`LLMRequest`. :func:`plan_conversation`
and :func:`plan_record` decide the jobs from what is missing, :func:`apply` writes one answer
(or returns the error to record), :func:`coverage` counts what is still missing, and
:class:`Estimate` prices a list of jobs before any call.

Example:
    >>> parse_what("quality, intent")
    ['intent', 'quality']
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import BaseModel

from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import RATING_METRICS, Conversation, Profile, Ratings, Scenario, passed_filters

from ..llm import LLMRequest, LLMResult, LLMRunner, strict_schema
from .prompts import (
    ANNOTATION_PROMPT_VERSION,
    ANNOTATORS,
    ANSWER_MODELS,
    MAX_TOKENS,
    hallucination_messages,
    intent_messages,
    quality_messages,
    summary_messages,
    translation_max_tokens,
    translation_messages,
)

# Typical reply length (tokens) per annotator, for the estimate; translations: len(text) / 3.
EXPECTED_COMPLETION = {"intent": 8, "hallucination": 25, "quality": 130, "summary": 30}
CHARS_PER_TOKEN = 4  # the estimate's rule for prompts: characters / 4


@dataclass
class Job:
    """One annotator call."""

    what: str
    index: int | None
    request: LLMRequest
    expected_completion: int
    metrics: tuple[str, ...] = ()  # quality: the ratings to fill


def parse_what(what: str | list[str]) -> list[str]:
    """``"quality,intent"`` or a list -> the annotators in their fixed order; unknown names fail."""
    names = what.split(",") if isinstance(what, str) else list(what)
    names = [n.strip() for n in names if n.strip()]
    for name in names:
        if name not in ANNOTATORS:
            raise InputError(f"--what: unknown annotator {name!r}; choose from {', '.join(ANNOTATORS)}")
    if not names:
        raise InputError(
            f"--what: empty (names no annotator), but got {what!r}; choose from {', '.join(ANNOTATORS)}"
        )
    return [a for a in ANNOTATORS if a in names]


def included(conv: Conversation) -> bool:
    """Whether a conversation enters the dataset (not failed by the generation filters)."""
    return passed_filters(conv.extra)


def _request(what: str, messages: list[dict], tag: str, max_tokens: int) -> LLMRequest:
    return LLMRequest(
        role="annotator",
        messages=messages,
        temperature=0.0,
        seed=0,
        response_model=ANSWER_MODELS[what],
        prompt_version=ANNOTATION_PROMPT_VERSION,
        params={"max_completion_tokens": max_tokens},
        tag=tag,
    )


def _translation(text: str, index: int | None, tag: str) -> Job:
    request = _request("translation", translation_messages(text), tag, translation_max_tokens(text))
    return Job("translation", index, request, len(text) // 3 + 10)


def plan_conversation(conv: Conversation, data, whats: list[str], overwrite: bool = False) -> list[Job]:
    """The calls one conversation needs (``data``: the corpus, for its profile and scenario)."""
    cid, task, turns = conv.conversation_id, conv.task, conv.turns
    jobs = []
    for i, turn in enumerate(turns):
        tag = f"{cid} turns[{i}]"
        before = turns[i - 1].content if i else ""
        if "intent" in whats and turn.role == "user" and (overwrite or turn.intent is None):
            request = _request("intent", intent_messages(task, before, turn.content), f"{tag} intent",
                               MAX_TOKENS["intent"])  # fmt: skip
            jobs.append(Job("intent", i, request, EXPECTED_COMPLETION["intent"]))
        if (
            "hallucination" in whats
            and turn.role == "assistant"
            and (overwrite or turn.hallucination is None)
        ):
            messages = hallucination_messages(task, before, turn.content)
            request = _request("hallucination", messages, f"{tag} hallucination", MAX_TOKENS["hallucination"])
            jobs.append(Job("hallucination", i, request, EXPECTED_COMPLETION["hallucination"]))
        if "translation" in whats and (overwrite or turn.content_zh is None) and turn.content.strip():
            jobs.append(_translation(turn.content, i, f"{tag} translation"))
    pairs = [(t.role, t.content) for t in turns]
    if "quality" in whats:
        ratings = conv.ratings or Ratings()
        metrics = tuple(m for m in RATING_METRICS if overwrite or getattr(ratings, m) is None)
        if metrics:
            profile, scenario = data.profiles[conv.profile_id].text, data.scenarios[conv.scenario_id].text
            request = _request("quality", quality_messages(profile, scenario, pairs), f"{cid} quality",
                               MAX_TOKENS["quality"])  # fmt: skip
            jobs.append(Job("quality", None, request, EXPECTED_COMPLETION["quality"], metrics))
    if "summary" in whats and (overwrite or not conv.preference_summary):
        request = _request("summary", summary_messages(task, pairs), f"{cid} summary", MAX_TOKENS["summary"])
        jobs.append(Job("summary", None, request, EXPECTED_COMPLETION["summary"]))
    return jobs


def plan_record(record: Profile | Scenario, whats: list[str], overwrite: bool = False) -> list[Job]:
    """The calls a profile or scenario needs: its translation, if missing."""
    if "translation" not in whats or not (overwrite or record.text_zh is None):
        return []
    name = f"profile {record.profile_id}" if isinstance(record, Profile) else f"scenario {record.scenario_id}"
    return [_translation(record.text, None, f"{name} translation")]


def apply(target: Conversation | Profile | Scenario, job: Job, result: LLMResult) -> dict | None:
    """Write one answer into ``target``; returns the error entry to record when there is none."""
    if not result.ok:
        return {"error": result.error} if job.index is None else {"turn": job.index, "error": result.error}
    answer = result.parsed
    turn = target.turns[job.index] if job.index is not None else None
    if job.what == "intent":
        turn.intent = answer.intent
    elif job.what == "hallucination":
        turn.hallucination = answer.hallucination
        turn.reason = answer.reason.strip() if answer.hallucination else None
    elif job.what == "quality":
        ratings = target.ratings or Ratings()
        for metric in job.metrics:
            setattr(ratings, metric, getattr(answer, metric))
        target.ratings = ratings
    elif job.what == "summary":
        target.preference_summary = [p.strip() for p in answer.phrases]
    elif turn is not None:
        turn.content_zh = answer.translation
    else:
        target.text_zh = answer.translation
    return None


def coverage(corpus, whats: list[str]) -> dict[str, int]:
    """How many items of the corpus's included conversations still lack each annotation."""
    missing = dict.fromkeys(whats, 0)
    for conv in corpus.iter_conversations():
        if not included(conv):
            continue
        for turn in conv.turns:
            if "intent" in missing and turn.role == "user":
                missing["intent"] += turn.intent is None
            if "hallucination" in missing and turn.role == "assistant":
                missing["hallucination"] += turn.hallucination is None
            if "translation" in missing and turn.content.strip():
                missing["translation"] += turn.content_zh is None
        if "quality" in missing:
            missing["quality"] += conv.ratings is None or any(
                getattr(conv.ratings, m) is None for m in RATING_METRICS
            )
        if "summary" in missing:
            missing["summary"] += not conv.preference_summary
        if "translation" in missing:
            missing["translation"] += (conv.profile_zh is None) + (conv.scenario_zh is None)
    return missing


_SCHEMA_CHARS: dict[type[BaseModel], int] = {}


def _prompt_tokens(request: LLMRequest) -> int:
    model = request.response_model
    if model not in _SCHEMA_CHARS:
        _SCHEMA_CHARS[model] = len(json.dumps(strict_schema(model)))
    chars = sum(len(str(m.get("content", ""))) for m in request.messages) + _SCHEMA_CHARS[model]
    return chars // CHARS_PER_TOKEN + 4 * len(request.messages)


class Estimate:
    """What the planned jobs will cost: calls, how many replay from the cache, tokens and USD.

    Tokens are estimated as characters / 4 for prompts (schema included) and a typical reply
    length per annotator; ``cost_usd`` is None when the model has no price.
    ``cost_with_retries_usd`` is what the calls can cost at most when each needs the one retry
    the runner gives an answer that cannot improve (invalid JSON, or a reply cut at the cap,
    asked again with the cap doubled): twice the prompts, and the typical replies plus twice
    each call's cap as sent (the model's rule may raise it). Retries of transient failures
    (429, 5xx) are not billed.
    """

    def __init__(self, runner: LLMRunner, prices=None):
        self._runner, self._endpoint = runner, runner.endpoints["annotator"]
        self._prices = prices or runner.prices  # a batch executor's table: its batch prices
        self.model, self.prices_as_of = self._endpoint.model, runner.prices.as_of
        self.requests = self.cached = self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd: float | None = 0.0
        self.cost_with_retries_usd: float | None = 0.0
        self.cap_tokens = 0
        self.per_annotator: dict[str, int] = {}

    def add(self, job: Job) -> None:
        self.requests += 1
        self.per_annotator[job.what] = self.per_annotator.get(job.what, 0) + 1
        cache = self._runner.cache
        if cache is not None and cache.get(self._runner.cache_key(job.request)) is not None:
            self.cached += 1
            return
        self.prompt_tokens += _prompt_tokens(job.request)
        self.completion_tokens += job.expected_completion
        cap = job.request.max_tokens or job.request.params.get("max_completion_tokens")
        rule = self._runner.rules.rule(self.model)
        self.cap_tokens += rule.cap(cap) or rule.reserve_completion_tokens

    def done(self) -> Estimate:
        prices = self._prices
        self.cost_usd = prices.cost(self.model, self.prompt_tokens, self.completion_tokens)
        self.cost_with_retries_usd = prices.cost(
            self.model, 2 * self.prompt_tokens, self.completion_tokens + 2 * self.cap_tokens
        )
        return self

    def line(self) -> str:
        """One human line, printed before any call."""
        new = self.requests - self.cached
        head = f"estimate: {self.requests:,} calls ({self.cached:,} cached, free; {new:,} to send)"
        tokens = f"~{self.prompt_tokens:,} input + ~{self.completion_tokens:,} output tokens"
        if self.cost_usd is None:
            cost = f"cost unknown: no price for {self.model!r} (give one with --prices FILE)"
        else:
            cost = (
                f"~{self.cost_usd:.4f} USD with {self.model} (prices as of {self.prices_as_of or 'unknown'}; "
                f"at most {self.cost_with_retries_usd:.4f} USD if every call needs its one retry)"
            )
        return f"{head}, {tokens}, {cost}"

    def check_budget(self, budget_usd: float | None) -> None:
        """Refuse to start when the estimate is above ``--budget-usd``."""
        if budget_usd is not None and self.cost_usd is not None and self.cost_usd > budget_usd:
            raise InputError(
                f"--budget-usd {budget_usd:g}: the estimated cost is {self.cost_usd:.4f} USD for "
                f"{self.requests - self.cached:,} calls; nothing was sent: raise --budget-usd or ask for "
                "less (--what, --sample)"
            )

    def as_dict(self) -> dict:
        keys = ("requests", "cached", "prompt_tokens", "completion_tokens", "cost_usd",
                "cost_with_retries_usd", "model")  # fmt: skip
        return {k: getattr(self, k) for k in keys} | {"per_annotator": dict(self.per_annotator)}
