"""Basic filtering of generated conversations (RecLLMSim §3.4): rule checks and an optional LLM check.

Every conversation stays in ``conversations.jsonl`` (the raw set); the verdict is
stored in ``Conversation.extra["filter"]``::

    {"passed": bool, "reasons": [code, ...], "turns": {code: [turn index, ...]},
     "rules": RULES_VERSION, "language": "en", "llm": null | {...}}

and the filtered set is the conversations with ``passed`` true. Reason codes:

- ``no_exchange``: the conversation has no assistant reply;
- ``not_ended``: the simulator never said goodbye (ended at ``--max-turns``, on a reply cut at
  the token cap: ``cut_off``, or when it outgrew the model's context: ``context_limit``);
- ``empty_turn``: a turn is empty or whitespace;
- ``cut_off_turn``: a reply stopped at the token limit (``finish_reason`` "length");
- ``prompt_leak``: a turn contains the ``[System]`` end prompt;
- ``simulator_as_assistant``: a user turn reads like an assistant (offers help, hands out
  a plan, or is a long list-shaped answer);
- ``wrong_language``: a turn is mostly in another script than the expected language's;
- ``llm:<check>``: the optional LLM check said no to one of its questions.

Example:
    >>> from recllmsim_hf.schema import Conversation, Turn
    >>> c = Conversation(conversation_id="c", task="t", profile_id="p", scenario_id="s", end_reason="goodbye",
    ...                  turns=[Turn(role="user", content="How can I help you today?"),
    ...                         Turn(role="assistant", content="I need a recipe.")])
    >>> check_rules(c)["reasons"]
    ['simulator_as_assistant']
"""

from __future__ import annotations

import asyncio
import os
import re
import unicodedata
from collections import Counter
from pathlib import Path

from pydantic import BaseModel

from recllmsim_hf.corpus import CONVERSATIONS, PROFILES, SCENARIOS, read_jsonl, repair_tail, write_jsonl
from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import Conversation, Profile, Scenario, passed_filters

from ..llm.executors import ExecutorSpec, make_executor
from . import prompts
from .runfolder import RunProgress, corpus_lock, update_manifest

RULES_VERSION = "rules-1"
LANGUAGES = ("en", "zh", "any")

_ASSISTANT_LIKE = re.compile(
    r"\bas an ai\b"
    r"|\bhow (?:can|may) i (?:help|assist) you\b"
    r"|\bi(?:'d| would) be (?:happy|glad) to help\b"
    r"|\bis there anything else (?:i can|you would like me to)\b"
    r"|\bhere(?:'s| is) (?:a|an|your) (?:[\w-]+ ){0,3}(?:plan|itinerary|recipe|schedule|menu|list)\b",
    re.IGNORECASE,
)
_LIST_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+\S", re.MULTILINE)
_LONG_LIST_CHARS, _LONG_LIST_LINES = 1200, 4


def _script_share(text: str, language: str) -> tuple[float, int]:
    if text.isascii():
        return (1.0 if language != "zh" else 0.0), sum(c.isalpha() for c in text)
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 1.0, 0
    if language == "zh":
        hits = sum("CJK" in unicodedata.name(c, "") for c in letters)
    else:
        hits = sum(ord(c) < 0x250 for c in letters)  # Basic Latin to Latin Extended-B
    return hits / len(letters), len(letters)


def check_rules(conv: Conversation, language: str = "en") -> dict:
    """The rule verdict of one conversation (see the module docstring for the codes)."""
    turns: dict[str, list[int]] = {}

    def flag(code: str, i: int) -> None:
        turns.setdefault(code, []).append(i)

    for i, t in enumerate(conv.turns):
        text = t.content
        if not text.strip():
            flag("empty_turn", i)
            continue
        if t.extra.get("finish_reason") == "length":
            flag("cut_off_turn", i)
        if "[System]" in text:
            flag("prompt_leak", i)
        if t.role == "user" and (
            _ASSISTANT_LIKE.search(text)
            or (len(text) > _LONG_LIST_CHARS and len(_LIST_LINE.findall(text)) >= _LONG_LIST_LINES)
        ):
            flag("simulator_as_assistant", i)
        if language != "any":
            share, n = _script_share(text, language)
            if n >= 20 and share < 0.5:
                flag("wrong_language", i)
    reasons = []
    if not any(t.role == "assistant" for t in conv.turns):
        reasons.append("no_exchange")
    if conv.end_reason != "goodbye":
        reasons.append("not_ended")
    reasons += list(turns)
    return {
        "passed": not reasons,
        "reasons": reasons,
        "turns": turns,
        "rules": RULES_VERSION,
        "language": language,
        "llm": None,
    }


class LLMVerdict(BaseModel):
    """The structured answer of the optional LLM check."""

    user_stays_user: bool
    assistant_stays_assistant: bool
    on_task: bool
    complete: bool
    reason: str


def merge_llm(verdict: dict, llm: LLMVerdict | None, model: str, error: str | None = None) -> dict:
    """Add an LLM check's answer (or its error) to a rule verdict; returns a new verdict."""
    out = {**verdict, "reasons": list(verdict["reasons"])}
    if llm is None:
        out["llm"] = {"model": model, "error": error}
        return out
    checks = ("user_stays_user", "assistant_stays_assistant", "on_task", "complete")
    failed = [k for k in checks if not getattr(llm, k)]
    out["reasons"] += [f"llm:{k}" for k in failed]
    out["passed"] = not out["reasons"]
    out["llm"] = {"model": model, "passed": not failed, "failed": failed, "reason": llm.reason}
    return out


def _words(conv: Conversation) -> int:
    return sum(len(t.content.split()) for t in conv.turns)


def table(conversations: list[Conversation]) -> dict:
    """Raw vs filtered statistics in the shape of the paper's Table 1, plus reason counts.

    ``avg_words`` counts whitespace-separated words (the paper's token counts came
    from its own tokenizer). A conversation without a verdict counts as passed.
    """

    def stats(convs: list[Conversation]) -> dict:
        n = len(convs)
        return {
            "scenarios": len({c.scenario_id for c in convs}),
            "conversations": n,
            "avg_utterances": round(sum(c.num_turns for c in convs) / n, 2) if n else 0.0,
            "avg_words": round(sum(_words(c) for c in convs) / n, 2) if n else 0.0,
        }

    kept = [c for c in conversations if passed_filters(c.extra)]
    reasons = Counter(r for c in conversations for r in (c.extra.get("filter") or {}).get("reasons", []))
    by_task: dict[str, dict[str, int]] = {}
    for c in conversations:
        row = by_task.setdefault(c.task, {"raw": 0, "filtered": 0})
        row["raw"] += 1
    for c in kept:
        by_task[c.task]["filtered"] += 1
    return {
        "raw": stats(conversations),
        "filtered": stats(kept),
        "reasons": dict(sorted(reasons.items())),
        "by_task": dict(sorted(by_task.items())),
    }


def _llm_request(conv: Conversation, profile: str, scenario: str):
    from ..llm import LLMRequest

    text = "\n\n".join(f"{t.role.upper()}: {t.content}" for t in conv.turns)
    user = prompts.FILTER_USER.format(profile=profile, scenario=scenario, conversation=text)
    return LLMRequest(
        role="annotator",
        messages=[{"role": "system", "content": prompts.FILTER_SYSTEM}, {"role": "user", "content": user}],
        temperature=0.0,
        response_model=LLMVerdict,
        prompt_version=prompts.PROMPT_VERSION,
        tag=f"filter {conv.conversation_id}",
    )


async def _llm_checks(executor, convs: list[Conversation], corpus: Path, show: RunProgress) -> dict:
    profiles = {p.profile_id: p.text for p in read_jsonl(corpus / PROFILES, Profile)}
    scenarios = {s.scenario_id: s.text for s in read_jsonl(corpus / SCENARIOS, Scenario)}
    model = executor.runner.endpoints["annotator"].model
    # Conversations the rules already reject are not sent (they cannot pass).
    todo = [c for c in convs if c.extra["filter"]["passed"]]
    outcome = {"errors": 0, "checked": 0, "first_error": None}

    def one(conv: Conversation):
        request = _llm_request(conv, profiles.get(conv.profile_id, ""), scenarios.get(conv.scenario_id, ""))
        return (yield request)

    def done(index: int, result, error) -> None:
        outcome["checked"] += 1
        outcome["errors"] += result.error is not None
        outcome["first_error"] = outcome["first_error"] or result.error
        conv = todo[index]
        conv.extra["filter"] = merge_llm(conv.extra["filter"], result.parsed, model, result.error)
        if result.structured_mode is not None:
            conv.extra["filter"]["llm"]["structured_output"] = result.structured_mode
        show.advance(1, outcome["errors"])

    await executor.drive([one(c) for c in todo], done)
    return outcome


def filter_corpus(
    corpus: str | os.PathLike,
    *,
    language: str = "en",
    runner_factory=None,
    progress: bool = True,
    executor: ExecutorSpec | str | None = None,
    log=None,
) -> dict:
    """Recompute every conversation's verdict and rewrite ``conversations.jsonl`` atomically.

    With ``runner_factory`` the LLM check runs too (on conversations the rules pass).
    Returns :func:`table` plus ``llm_errors`` (of ``llm_checked``; ``llm_first_error``): a
    conversation whose LLM check failed keeps its rule verdict and ``llm.error``; a rerun asks
    again. ``executor`` (default online; ``generation/llm/executors``) sends the LLM checks;
    ``log`` gets batch progress lines.

    Example:
        >>> filter_corpus("corpus")["filtered"]["conversations"]  # doctest: +SKIP
        27
    """
    if language not in LANGUAGES:
        raise InputError(f"--language: must be one of {list(LANGUAGES)}, but got {language!r}")
    corpus = Path(corpus)
    path = corpus / CONVERSATIONS
    if not path.is_file():
        raise InputError(f"{path}: missing; pass a corpus folder made by `recllmsim generate conversations`")
    with corpus_lock(corpus):
        repair_tail(path)
        convs = list(read_jsonl(path, Conversation))
        for conv in convs:
            conv.extra["filter"] = check_rules(conv, language)
        llm = {"errors": 0, "checked": 0, "first_error": None}
        if runner_factory is not None and convs:
            runner = runner_factory(corpus)
            todo = sum(c.extra["filter"]["passed"] for c in convs)

            async def main() -> dict:
                try:
                    ex = make_executor(executor, runner, corpus, "filter", log)
                    await ex.check(("annotator",))
                    with RunProgress("llm filter", todo, 0, runner, progress) as show:
                        return await _llm_checks(ex, convs, corpus, show)
                finally:
                    await runner.close()

            llm = asyncio.run(main())
        write_jsonl(path, convs)
        summary = table(convs)
        checked = None
        if runner_factory is not None and convs:
            spec = ExecutorSpec.parse(executor) if isinstance(executor, str) else executor or ExecutorSpec()
            checked = {"llm_filter": {"model": runner.endpoints["annotator"].model, **spec.describe()}}
        update_manifest(
            corpus,
            generation=checked,
            counts={
                "conversations": len(convs),
                "conversations_passed": summary["filtered"]["conversations"],
            },
        )
    llm_out = {"llm_errors": llm["errors"], "llm_checked": llm["checked"]}
    return {**summary, **llm_out, "llm_first_error": llm["first_error"], "language": language}
