"""Two-LLM conversations (RecLLMSim §3.4), written to a corpus folder with safe resume.

The user simulator gets the scenario and the profile in its system prompt and opens
the conversation; the assistant is a plain assistant and sees only the user and
assistant turns. Every assistant reply reaches the simulator with the paper's end
prompt appended (in Chinese for ``--language zh``); the conversation ends when the simulator's
reply closes with thanks and a goodbye (the rule of ``goodbye.py``: "Thanks, goodbye.", "Thank
you so much, goodbye!", "谢谢，再见。" with zh ...; ``end_reason="goodbye"``; that closing message is
kept in ``generation.extra["closing_message"]``, not in the turns, as in the release, and the
exact closing text matched in ``extra["closing_phrase"]``), when a reply is cut at the token
cap (``end_reason="cut_off"``: the filter rejects a cut turn, so no more turns are paid for),
when the conversation outgrows the model's context (``end_reason="context_limit"``: the paid
turns are kept, the filter rejects it, the server's message is in ``extra["context_error"]``), or after
``max_turns`` user/assistant exchanges (``end_reason="max_turns"``; the simulator's reply
to the last exchange is still asked for, to see whether it would have said goodbye, and
kept as ``closing_message``). Every request carries a seed derived from (seed,
conversation index, step). ``generation.cost_usd`` is what this run paid: calls replayed
from the cache cost 0 (``generation.extra["cached_requests"]`` counts them). The rule
filter's verdict is stored at once in ``extra["filter"]`` (see ``filters.py``).

Assignment (a documented contract): conversation ``i`` (0-based) of a run with seed
``S`` talks about ``scenarios[i % len(scenarios)]`` (scenarios in id order) with profile
``perm(S, i // P)[i % P]``, where ``P`` is the number of profiles and ``perm(S, e)`` is the
profile ids sorted and shuffled by ``random.Random(f"{S}:{e}")``: every scenario and every
profile is used equally often, and the first N of a plan do not depend on N. Its id is
``c{i:06d}-`` + the first 10 hex of sha256 of the canonical JSON of
``{"index": i, "profile_id": ..., "scenario_id": ..., "seed": S}``.

``conversations.jsonl`` is append-only: each finished conversation is one line,
written whole and flushed; a rerun of the same command repairs a cut last line,
skips the ids it finds and generates only the missing ones.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from recllmsim_hf.corpus import CONVERSATIONS, MANIFEST, append_jsonl
from recllmsim_hf.errors import InputError, RecLLMSimError
from recllmsim_hf.schema import Conversation, GenerationMeta, Profile, Scenario, Turn, Usage

from ..llm.executors import ExecutorSpec, ItemFailed, make_executor
from ..shards import Shard
from . import prompts
from .filters import LANGUAGES, check_rules
from .runfolder import (
    RunProgress,
    corpus_run,
    load_profiles,
    merge_scenarios,
    scan_conversations,
    update_manifest,
)


@dataclass(frozen=True)
class PlanItem:
    index: int
    conversation_id: str
    scenario: Scenario
    profile: Profile


@dataclass(frozen=True)
class Settings:
    """How conversations are made; everything here is recorded in the manifest."""

    max_turns: int = 10
    seed: int = 0
    simulator_temperature: float | None = 1.0
    assistant_temperature: float | None = 1.0
    max_tokens: int | None = None
    language: str = "en"


def conversation_id(seed: int, index: int, scenario_id: str, profile_id: str) -> str:
    """The deterministic id of conversation ``index`` (see the module docstring).

    Example:
        >>> conversation_id(0, 7, "recipe-planning-r1-2d5536cd", "3")[:8]
        'c000007-'
    """
    canon = json.dumps(
        {"index": index, "profile_id": profile_id, "scenario_id": scenario_id, "seed": seed},
        sort_keys=True,
        separators=(",", ":"),
    )
    return f"c{index:06d}-{hashlib.sha256(canon.encode()).hexdigest()[:10]}"


class Plan:
    """The first ``n`` conversations of the assignment over scenarios x profiles (module docstring),
    made one at a time: memory does not grow with ``n``, and item ``i`` costs the same for any ``n``.

    Example:
        >>> p = Plan(scenarios, profiles, 1_000_000_000, seed=0)  # doctest: +SKIP
        >>> p.item(7).conversation_id[:8], p.index_of(p.item(7).conversation_id)  # doctest: +SKIP
        ('c000007-', 7)
    """

    def __init__(self, scenarios: Sequence[Scenario], profiles: Sequence[Profile], n: int, seed: int):
        if not scenarios:
            raise InputError("no scenarios to generate: check --tasks and --catalog")
        if not profiles:
            raise InputError("no profiles: run `recllmsim generate profiles` first or pass --profiles FILE")
        self.n, self.seed = n, seed
        self._scenarios = sorted(scenarios, key=lambda s: s.scenario_id)
        self._by_id = {p.profile_id: p for p in profiles}
        self._ids = sorted(self._by_id)
        self._perm = functools.lru_cache(maxsize=4)(self._permutation)

    def _permutation(self, epoch: int) -> list[str]:
        return random.Random(f"{self.seed}:{epoch}").sample(self._ids, len(self._ids))

    def __len__(self) -> int:
        return self.n

    def item(self, i: int) -> PlanItem:
        s = self._scenarios[i % len(self._scenarios)]
        p = self._by_id[self._perm(i // len(self._ids))[i % len(self._ids)]]
        return PlanItem(i, conversation_id(self.seed, i, s.scenario_id, p.profile_id), s, p)

    def __iter__(self) -> Iterator[PlanItem]:
        return (self.item(i) for i in range(self.n))

    def index_of(self, ident: str) -> int | None:
        """The index of ``ident`` in this plan, or None (read from the id, then checked)."""
        match = re.match(r"c(\d+)-", ident)
        if match is None or int(match[1]) >= self.n:
            return None
        i = int(match[1])
        return i if self.item(i).conversation_id == ident else None


def plan(scenarios: Sequence[Scenario], profiles: Sequence[Profile], n: int, seed: int) -> list[PlanItem]:
    """The first ``n`` conversations of the assignment, as a list (see :class:`Plan` for a lazy one)."""
    return list(Plan(scenarios, profiles, n, seed))


def _seed(seed: int, index: int, step: int) -> int:
    digest = hashlib.sha256(f"{seed}:{index}:{step}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class ConversationFailed(ItemFailed):
    """An LLM call of one conversation failed after its retries (the conversation is not written)."""


class _ContextFull(Exception):
    """The next call of a conversation is longer than the model's context."""


async def run_conversation(runner, item: PlanItem, settings: Settings) -> Conversation:
    """Let the simulator and the assistant talk online; returns the finished conversation.

    Raises :class:`ConversationFailed` when a call's retries run out.
    """
    steps = conversation_steps(item, settings, runner.endpoints)
    request = next(steps)
    while True:
        try:
            request = steps.send(await runner.complete(request))
        except StopIteration as done:
            return done.value


def conversation_steps(item: PlanItem, settings: Settings, endpoints, executor: str = "online"):
    """The conversation as an executor item: yields each next request, receives its result
    (``result = yield request``) and returns the finished :class:`Conversation`.

    Raises :class:`ConversationFailed` when a call's retries run out.
    """
    from ..llm import LLMRequest

    language = {"en": "English", "zh": "Chinese (Simplified)"}.get(settings.language, "English")
    sim = [
        {
            "role": "system",
            "content": prompts.simulator_setup(item.profile.text, item.scenario.text, language),
        },
        {"role": "user", "content": prompts.SIMULATOR_KICKOFF},
    ]
    chat = [{"role": "system", "content": prompts.ASSISTANT_SYSTEM}]
    turns: list[Turn] = []
    usage = Usage()
    stats = {"requests": 0, "cached_requests": 0, "attempts": 0}
    cost, cost_known = 0.0, True
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.perf_counter()
    closing, end_reason = None, "max_turns"
    tag = f"conversation {item.conversation_id}"

    def ask(role: str, messages: list[dict], temperature: float | None, step: int):
        nonlocal cost, cost_known
        request = LLMRequest(
            role=role, messages=messages, temperature=temperature, max_tokens=settings.max_tokens,
            seed=_seed(settings.seed, item.index, step), prompt_version=prompts.PROMPT_VERSION, tag=tag,
        )  # fmt: skip
        result = yield request
        if result.error and result.error_kind == "context_limit" and turns:
            raise _ContextFull(result.error)
        if result.error:
            raise ConversationFailed(result.error)
        stats["requests"] += 1
        stats["cached_requests"] += result.cached
        stats["attempts"] += result.attempts
        usage.prompt_tokens += result.usage.prompt_tokens
        usage.completion_tokens += result.usage.completion_tokens
        cost += result.cost_usd
        cost_known = cost_known and result.cost_known
        extra = {} if result.finish_reason in (None, "stop") else {"finish_reason": result.finish_reason}
        return result.text, extra

    phrase, context_error = None, None
    try:
        for exchange in range(settings.max_turns + 1):
            text, extra = yield from ask("simulator", sim, settings.simulator_temperature, 2 * exchange)
            phrase = prompts.closing_phrase(text, settings.language)
            if phrase is not None:
                end_reason, closing = "goodbye", text
                if not turns:  # a record needs a turn; the filter rejects it (no_exchange)
                    turns.append(Turn(role="user", content=text, extra=extra))
                break
            if exchange == settings.max_turns:
                closing = text  # the simulator wanted to go on: kept for inspection, not answered
                break
            turns.append(Turn(role="user", content=text, extra=extra))
            if extra.get("finish_reason") == "length":
                end_reason = "cut_off"
                break
            sim.append({"role": "assistant", "content": text})
            chat.append({"role": "user", "content": text})
            reply, extra = yield from ask("assistant", chat, settings.assistant_temperature, 2 * exchange + 1)
            turns.append(Turn(role="assistant", content=reply, extra=extra))
            if extra.get("finish_reason") == "length":
                end_reason = "cut_off"
                break
            chat.append({"role": "assistant", "content": reply})
            sim.append({"role": "user", "content": prompts.with_end_prompt(reply, settings.language)})
    except _ContextFull as e:
        end_reason, context_error = "context_limit", str(e)

    conv = Conversation(
        conversation_id=item.conversation_id,
        task=item.scenario.task,
        round=item.scenario.round,
        profile_id=item.profile.profile_id,
        scenario_id=item.scenario.scenario_id,
        turns=turns,
        end_reason=end_reason,
        generation=GenerationMeta(
            simulator_model=endpoints["simulator"].model,
            assistant_model=endpoints["assistant"].model,
            simulator_temperature=settings.simulator_temperature,
            assistant_temperature=settings.assistant_temperature,
            seed=settings.seed,
            prompt_version=prompts.PROMPT_VERSION,
            max_turns=settings.max_turns,
            usage=usage,
            cost_usd=round(cost, 8) if cost_known else None,
            started_at=started_at,
            duration_s=round(time.perf_counter() - t0, 3),
            extra={
                "index": item.index,
                "closing_message": closing,
                "closing_phrase": phrase,
                **stats,
                "executor": executor,
                **({"context_error": context_error} if context_error else {}),
            },  # fmt: skip
        ),
    )
    conv.extra["filter"] = check_rules(conv, settings.language)
    return conv


# -- the run -------------------------------------------------------------------------------------


async def _run(
    executor, todo: Iterator[PlanItem], settings: Settings, path: Path, show: RunProgress, outcome: dict
):
    endpoints = executor.runner.endpoints
    # a generator: the plan is walked as the executor asks for items, so memory stays flat in -n
    items = (conversation_steps(item, settings, endpoints, executor.name) for item in todo)

    async def done(index: int, conv: Conversation | None, error: Exception | None) -> None:
        if error is not None:
            outcome["failed"] += 1
            outcome["first_error"] = outcome["first_error"] or str(error)
            show.advance(0, outcome["failed"])
            return
        # The fsync would stall every other conversation: the write runs in a thread (one
        # whole line per os.write, so concurrent appends never interleave).
        await asyncio.to_thread(append_jsonl, path, conv)
        outcome["generated"] += 1
        outcome["passed"] += conv.extra["filter"]["passed"]
        outcome["context_limit"] += conv.end_reason == "context_limit"
        show.advance(1, outcome["failed"])

    await executor.drive(items, done)


def generate_conversations(
    out: str | Path,
    n: int,
    runner_factory,
    *,
    settings: Settings = Settings(),
    tasks: Sequence[str] | None = None,
    catalogs: Sequence[str | Path] = (),
    builtin_catalog: bool = True,
    profiles_file: str | Path | None = None,
    progress: bool = True,
    executor: ExecutorSpec | str | None = None,
    shard: Shard | str | None = None,
    log=None,
) -> dict:
    """Make sure the first ``n`` conversations of the plan are in ``OUT/conversations.jsonl``.

    ``runner_factory(corpus)`` builds the :class:`~recllmsim_hf.generation.llm.LLMRunner`
    (called only when there is work). Returns a summary; ``failed`` > 0 means some
    conversations ran out of retries and a rerun will redo them. ``executor`` (default
    online) says how requests are sent (``generation/llm/executors``); ``shard`` ("K/N")
    keeps only this machine's slice of the plan (``generation/shards.py``); ``log`` gets the
    batch executors' progress lines.

    Example:
        >>> generate_conversations("corpus", 30, factory, settings=Settings(seed=1))  # doctest: +SKIP
        {'requested': 30, 'already_done': 0, 'generated': 30, 'failed': 0, ...}
    """
    from .scenarios import load_scenarios

    if n < 1:  # the rule of every -n: `generate profiles`, `annotate --evaluate --sample` alike
        raise InputError(f"-n: must be at least 1, but got {n}")
    if settings.max_turns < 1:
        raise InputError(f"--max-turns: must be at least 1, but got {settings.max_turns}")
    for flag, value in (
        ("--simulator-temperature", settings.simulator_temperature),
        ("--assistant-temperature", settings.assistant_temperature),
    ):
        if value is not None and not 0 <= value <= 2:
            raise InputError(f"{flag}: must be between 0 and 2, but got {value}")
    if settings.max_tokens is not None and settings.max_tokens < 1:
        raise InputError(f"--max-tokens: must be at least 1, but got {settings.max_tokens}")
    if settings.language not in LANGUAGES:
        raise InputError(f"--language: must be one of {list(LANGUAGES)}, but got {settings.language!r}")
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    spec = ExecutorSpec.parse(executor) if isinstance(executor, str) else executor or ExecutorSpec()
    scenarios = load_scenarios(catalogs, builtin=builtin_catalog, tasks=tasks)
    with corpus_run(out, makes=(CONVERSATIONS,)) as corpus:
        profiles = load_profiles(corpus, profiles_file)
        items = Plan(scenarios, profiles, n, settings.seed)
        mine = None if shard is None else shard.select(items, key=lambda it: it.conversation_id)
        all_scenarios = merge_scenarios(corpus, scenarios)
        done, lines, passed = scan_conversations(corpus)
        if mine is None:
            in_plan = {ident for ident in done if items.index_of(ident) is not None}
            planned, source = n, items
        else:  # a shard: its slice of the plan (a list: a shard is what one machine makes)
            in_plan = done & {it.conversation_id for it in mine}
            planned, source = len(mine), mine
        to_make = planned - len(in_plan)
        todo = (it for it in source if it.conversation_id not in in_plan)
        path = corpus / CONVERSATIONS
        path.touch()
        meta = {"conversations": {
            "settings": asdict(settings), "requested": n, "prompt_version": prompts.PROMPT_VERSION,
            "tasks": sorted({s.task for s in scenarios}), "catalogs": [Path(c).name for c in catalogs],
            **spec.describe(), "shard": str(shard) if shard else None,
        }}  # fmt: skip
        counts = {"profiles": len(profiles), "scenarios": len(all_scenarios)}
        outcome = {"generated": 0, "failed": 0, "passed": 0, "context_limit": 0, "first_error": None,
                   "run_s": 0.0}  # fmt: skip
        stats: dict = {}
        t0 = time.perf_counter()
        if to_make:
            runner = runner_factory(corpus)
            meta["conversations"]["simulator_model"] = runner.endpoints["simulator"].model
            meta["conversations"]["assistant_model"] = runner.endpoints["assistant"].model

            async def main() -> None:
                try:
                    ex = make_executor(spec, runner, corpus, "conversations", log)
                    await ex.check(("simulator", "assistant"))
                    started = time.perf_counter()
                    with RunProgress("conversations", planned, planned - to_make, runner, progress) as show:
                        await _run(ex, todo, settings, path, show, outcome)
                    stats.update(ex.stats)
                    outcome["run_s"] = round(time.perf_counter() - started, 3)
                finally:
                    await runner.close()

            try:
                asyncio.run(main())
            except (RecLLMSimError, KeyboardInterrupt):
                # Stopped (budget, refused key, unreachable endpoint, Ctrl-C): record what was
                # written, and leave the manifest alone when nothing was.
                if outcome["generated"] or not (corpus / MANIFEST).exists():
                    _, lines_now, passed_now = scan_conversations(corpus)
                    counts.update(conversations=lines_now, conversations_passed=passed_now)
                    update_manifest(corpus, generation=meta, counts=counts)
                raise
            stats.update(runner.stats.as_dict())
        counts.update(
            conversations=lines + outcome["generated"], conversations_passed=passed + outcome["passed"]
        )
        # With nothing to do, the manifest keeps describing the run that made the conversations.
        update_manifest(corpus, generation=meta if to_make else None, counts=counts)
    return {
        "out": str(corpus),
        "requested": n,
        "shard": str(shard) if shard else None,
        "planned": planned,
        "already_done": planned - to_make,
        "generated": outcome["generated"],
        "failed": outcome["failed"],
        "first_error": outcome["first_error"],
        "context_limit": outcome["context_limit"],
        "in_file": counts["conversations"],
        "passed_filter": counts["conversations_passed"],
        "not_in_plan": len(done - in_plan),
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "run_s": outcome["run_s"],
        "llm": stats,
    }
