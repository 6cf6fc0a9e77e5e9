"""User profiles made by the LLM (RecLLMSim §3.2), deduplicated, written to ``profiles.jsonl``.

The profile model fills the nine fields (gender, age, personality, occupation, daily
interests and hobbies, travel habits, dining preferences, spending habits, other
aspects), likes and dislikes alike, through a structured output, guided by two
few-shot examples (``prompts.PROFILE_EXAMPLES``). It writes in batches inside a few
parallel chats ("chains"); each continuation in a chain restates the requirements in
short form and names the occupations already taken, the paper's fix for the model
forgetting them in a long context (only the last ``history`` batches stay in context).

Duplicates are dropped and made up for: exact ones (the same words, ignoring case and
punctuation) and near ones (word-bigram Jaccard similarity of the field values at or
above ``near_threshold``). The summary reports how many of each were seen.

Profile ids are ``"0"``, ``"1"``, ... in order of acceptance. A rerun with a larger ``-n``
keeps the profiles already in the corpus and adds the missing ones.

Example:
    >>> d = ProfileDraft(gender="Female", age="31", personality=["Curious", "dislikes noise"],
    ...                  occupation="Nurse", daily_interests_and_hobbies=["Yoga"],
    ...                  travel_habits=["Trains"], dining_preferences=["Spicy food"],
    ...                  spending_habits=["Frugal"], other_aspects=["Has a dog"])
    >>> profile_text(to_fields(d)).splitlines()[2]
    '3. Personality: Curious; dislikes noise'
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from recllmsim_hf.corpus import PROFILES, read_jsonl, write_jsonl
from recllmsim_hf.errors import InputError, ServiceError
from recllmsim_hf.schema import PROFILE_FIELDS, Profile, ProfileFields

from ..llm.executors import ExecutorSpec, make_executor
from . import prompts
from .runfolder import RunProgress, corpus_run, update_manifest

_DISLIKE = re.compile(r"\b(?:dislike|hate|avoid|not (?:a )?fan|can't stand|cannot stand|no |never)", re.I)


class ProfileDraft(BaseModel):
    """One profile as the model writes it (the structured output of one list item)."""

    gender: str
    age: str
    personality: list[str]
    occupation: str
    daily_interests_and_hobbies: list[str]
    travel_habits: list[str]
    dining_preferences: list[str]
    spending_habits: list[str]
    other_aspects: list[str]


class ProfileBatch(BaseModel):
    """The structured output of one profile request."""

    profiles: list[ProfileDraft] = Field(min_length=1)


def to_fields(draft: ProfileDraft) -> ProfileFields:
    """Tidy a draft into :class:`ProfileFields` (stripped texts, empty items dropped)."""
    data = {}
    for name in PROFILE_FIELDS:
        value = getattr(draft, name)
        data[name] = value.strip() if isinstance(value, str) else [v.strip() for v in value if v.strip()]
    return ProfileFields(**data)


def profile_text(fields: ProfileFields) -> str:
    """The numbered nine-line text shown to the simulator ("1. Gender: Female" ...)."""
    lines = []
    for i, (name, label) in enumerate(PROFILE_FIELDS.items(), start=1):
        value = getattr(fields, name)
        lines.append(f"{i}. {label}: {value if isinstance(value, str) else '; '.join(value)}")
    return "\n".join(lines)


def problem_of(fields: ProfileFields) -> str | None:
    """Why a draft is unusable (an empty field, or no dislike anywhere), else None."""
    for name, label in PROFILE_FIELDS.items():
        if not getattr(fields, name):
            return f"empty {label}"
    items = [v for name in PROFILE_FIELDS if isinstance(vs := getattr(fields, name), list) for v in vs]
    if not any(_DISLIKE.search(item) for item in items):
        return "no dislikes"
    return None


def _words(fields: ProfileFields) -> list[str]:
    values = [getattr(fields, n) for n in PROFILE_FIELDS]
    text = " ".join(v if isinstance(v, str) else " ".join(v) for v in values)
    return re.findall(r"[a-z0-9]+", text.lower())


@dataclass
class Deduplicator:
    """Exact and near duplicate detection over accepted profiles.

    Example:
        >>> d = Deduplicator(0.8)
        >>> f = ProfileFields(gender="Male", age="40", occupation="Chef", personality=["Calm"])
        >>> d.check(f), d.check(f)
        (None, 'exact')
    """

    near_threshold: float = 0.8
    exact: set[str] = field(default_factory=set)
    shingles: list[frozenset] = field(default_factory=list)

    def check(self, fields: ProfileFields) -> str | None:
        """ "exact", "near" or None (then the profile is remembered as accepted)."""
        words = _words(fields)
        key = " ".join(words)
        if key in self.exact:
            return "exact"
        grams = frozenset(zip(words, words[1:], strict=False)) or frozenset(words)
        for other in self.shingles:
            union = len(grams | other)
            if union and len(grams & other) / union >= self.near_threshold:
                return "near"
        self.exact.add(key)
        self.shingles.append(grams)
        return None


@dataclass
class _Chain:
    index: int
    exchanges: list[tuple[str, str]] = field(default_factory=list)


def _request_messages(chain: _Chain, batch: int, occupations: list[str], history: int) -> list[dict]:
    messages = [{"role": "system", "content": prompts.PROFILE_SYSTEM}]
    for ask, answer in chain.exchanges[-history:] if history else []:
        messages += [{"role": "user", "content": ask}, {"role": "assistant", "content": answer}]
    if not chain.exchanges:
        ask = prompts.PROFILE_FIRST.format(n=batch)
    else:
        avoid = prompts.PROFILE_AVOID.format(occupations=", ".join(occupations[-40:])) if occupations else ""
        ask = prompts.PROFILE_CONTINUE.format(n=batch, avoid=avoid)
    return messages + [{"role": "user", "content": ask}]


def _seed(seed: int, chain: int, round_: int) -> int:
    digest = hashlib.sha256(f"profiles:{seed}:{chain}:{round_}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _firsts(first_error: str | None, first_problem: str | None) -> str:
    """'; first error: ...; first invalid draft: ...' for what happened (nothing when neither did)."""
    parts = [f"first error: {first_error}"] if first_error else []
    parts += [f"first invalid draft: {first_problem}"] if first_problem else []
    return "".join(f"; {part}" for part in parts)


async def _generate(runner, profiles: list[Profile], n: int, opts: dict, show: RunProgress) -> dict:
    from ..llm import LLMRequest

    dedup = Deduplicator(opts["near_threshold"])
    for p in profiles:
        if p.fields is not None:
            dedup.check(p.fields)
    counts = {"drafts": 0, "exact_duplicates": 0, "near_duplicates": 0, "invalid": 0, "errors": 0}
    first_error = first_problem = None
    chains = [_Chain(i) for i in range(opts["chains"])]
    occupations = [p.fields.occupation for p in profiles if p.fields and p.fields.occupation]
    max_rounds = opts["max_rounds"] or 5 + 3 * math.ceil(n / (opts["batch_size"] * opts["chains"]))
    round_ = 0
    while len(profiles) < n:
        if round_ >= max_rounds:
            raise ServiceError(
                f"profiles: only {len(profiles)} of {n} distinct profiles after {round_} rounds "
                f"({counts['exact_duplicates']} exact and {counts['near_duplicates']} near duplicates, "
                f"{counts['invalid']} invalid, {counts['errors']} failed calls"
                f"{_firsts(first_error, first_problem)}); "
                "rerun (accepted profiles are kept), raise --temperature or use another --model"
            )
        missing = n - len(profiles)
        active = chains[: max(1, min(len(chains), math.ceil(missing / opts["batch_size"])))]
        requests = []
        for chain in active:
            messages = _request_messages(chain, opts["batch_size"], occupations, opts["history"])
            requests.append(
                LLMRequest(
                    role="profile",
                    messages=messages,
                    temperature=opts["temperature"],
                    seed=_seed(opts["seed"], chain.index, round_),
                    response_model=ProfileBatch,
                    prompt_version=prompts.PROMPT_VERSION,
                    tag=f"profiles chain {chain.index} round {round_}",
                )  # fmt: skip
            )
        results = await opts["executor"].complete_all(requests)
        for chain, request, result in zip(active, requests, results, strict=True):
            if result.error:
                counts["errors"] += 1
                first_error = first_error or result.error
                continue
            chain.exchanges.append((request.messages[-1]["content"], result.text))
            for draft in result.parsed.profiles:
                counts["drafts"] += 1
                fields = to_fields(draft)
                if (problem := problem_of(fields)) is not None:
                    counts["invalid"] += 1
                    first_problem = first_problem or problem
                    continue
                verdict = dedup.check(fields)
                if verdict is not None:
                    counts[f"{verdict}_duplicates"] += 1
                    continue
                if len(profiles) < n:
                    profiles.append(
                        Profile(
                            profile_id=str(len(profiles)),
                            text=profile_text(fields),
                            fields=fields,
                            extra={
                                "generation": {
                                    "model": result.model,
                                    "prompt_version": prompts.PROMPT_VERSION,
                                    "seed": opts["seed"],
                                    "chain": chain.index,
                                    "round": round_,
                                    "structured_output": result.structured_mode,
                                }
                            },
                        )  # fmt: skip
                    )
                    occupations.append(fields.occupation)
                    show.advance(1, counts["errors"])
        round_ += 1
        opts["save"](profiles)
    counts["rounds"] = round_
    counts["first_error"] = first_error
    return counts


def generate_profiles(
    out: str | os.PathLike,
    n: int,
    runner_factory,
    *,
    batch_size: int = 5,
    chains: int = 4,
    history: int = 3,
    temperature: float = 1.0,
    seed: int = 0,
    near_threshold: float = 0.8,
    max_rounds: int | None = None,
    progress: bool = True,
    executor: ExecutorSpec | str | None = None,
    log=None,
) -> dict:
    """Make sure ``OUT/profiles.jsonl`` holds ``n`` distinct generated profiles.

    ``runner_factory(corpus)`` builds the LLM runner (called only when profiles are
    missing). The file is rewritten atomically after every round, so an interrupted
    run keeps what it accepted. Returns a summary with the duplicate counts. ``executor``
    (default online; ``generation/llm/executors``) sends each round of the chains; ``log`` gets
    the batch executors' progress lines.

    Example:
        >>> generate_profiles("corpus", 100, factory, seed=1)  # doctest: +SKIP
        {'requested': 100, 'existing': 0, 'generated': 100, 'exact_duplicates': 3, ...}
    """
    if n < 1:
        raise InputError(f"-n: must be at least 1, but got {n}")
    for name, value in (("--batch-size", batch_size), ("--chains", chains)):
        if value < 1:
            raise InputError(f"{name}: must be at least 1, but got {value}")
    if not 0 <= temperature <= 2:
        raise InputError(f"--temperature: must be between 0 and 2, but got {temperature}")
    if not 0 < near_threshold <= 1:
        raise InputError(f"--near-threshold: must be in (0, 1], but got {near_threshold}")
    spec = ExecutorSpec.parse(executor) if isinstance(executor, str) else executor or ExecutorSpec()
    t0 = time.perf_counter()
    with corpus_run(out) as corpus:
        path = corpus / PROFILES
        profiles = list(read_jsonl(path, Profile)) if path.is_file() else []
        existing = len(profiles)
        counts: dict = {}
        stats: dict = {}
        if existing < n:
            runner = runner_factory(corpus)
            opts = dict(
                batch_size=batch_size, chains=chains, history=history, temperature=temperature, seed=seed,
                near_threshold=near_threshold, max_rounds=max_rounds, save=lambda ps: write_jsonl(path, ps),
            )  # fmt: skip

            async def main() -> dict:
                try:
                    opts["executor"] = make_executor(spec, runner, corpus, "profiles", log)
                    await opts["executor"].check(("profile",))
                    with RunProgress("profiles", n, existing, runner, progress) as show:
                        return await _generate(runner, profiles, n, opts, show)
                finally:
                    await runner.close()

            counts = asyncio.run(main())
            stats = {**opts["executor"].stats, **runner.stats.as_dict()}
            meta = {"model": runner.endpoints["profile"].model, "temperature": temperature, "seed": seed}
            meta.update(batch_size=batch_size, chains=chains, prompt_version=prompts.PROMPT_VERSION)
            meta.update(spec.describe())
            meta["structured_output"] = runner.structured_modes.get("profile")
            update_manifest(corpus, generation={"profiles": meta}, counts={"profiles": len(profiles)})
    return {
        "out": str(Path(corpus)),
        "requested": n,
        "existing": existing,
        "generated": len(profiles) - existing,
        "total": len(profiles),
        **counts,
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "llm": stats,
    }
