"""Zero-shot and few-shot intent classification by an LLM (the LLM rows of RecLLMSim Table 4).

Each test utterance is one structured-output request through the project's LLM client
(``generation/llm/``: retries, timeouts, budget, optional SQLite cache): the prompt of
the ``intent`` annotator (``generation/annotate/prompts.py``: the five label
definitions, the task, the preceding assistant turn, the utterance) and the answer model
``IntentAnnotation`` (``{"intent": <one of the 5 labels>}``, a strict JSON schema).

- ``llm-zero-shot``: that prompt alone.
- ``llm-few-shot``: ``shots`` labelled examples per class from the train split, shown as
  earlier user / assistant exchanges before the question. They are chosen by the split
  hash of their ids under ``seed`` (same seed, same examples) and their context is cut to
  :data:`EXAMPLE_CONTEXT_CHARS` characters to keep the prompt short.

A request whose retries run out is recorded (``failed``, ``first_error``) and counted as a
wrong answer; nothing is replaced by a default label.

Example:
    >>> s = LLMSettings(model="gpt-4o-mini", base_url="http://127.0.0.1:8000/v1")
    >>> s.api_key is None, "api_key" in repr(s)
    (True, False)
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import numpy as np

from recllmsim_hf.dataset.configs import split_key
from recllmsim_hf.errors import InputError

EXAMPLE_CONTEXT_CHARS = 600
ROLE = "annotator"


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to ask the LLM.

    ``model``: model name; ``base_url`` / ``api_key``: the endpoint (else ``OPENAI_BASE_URL`` /
    ``OPENAI_API_KEY``; the key never appears in ``repr`` or in any output), or tuples of several
    (a pool, ``generation/llm/pool.py``, as are ``endpoints`` and ``endpoint_concurrency``); ``concurrency``,
    ``timeout``, ``max_retries``, ``budget_usd``, ``api_key_env``, ``param``, ``model_rules``,
    ``structured_output``: as for ``recllmsim generate`` (same defaults); ``cache``: a SQLite
    response cache file (``None``: no cache); ``shots``: examples per class for few-shot;
    ``limit``: score only the first ``limit`` test utterances; ``prices``: a price table file
    overriding the bundled one.
    """

    model: str = "gpt-4o-mini"
    base_url: str | tuple[str, ...] | None = None
    api_key: str | tuple[str, ...] | None = field(default=None, repr=False)
    concurrency: int = 32
    timeout: float = 60.0
    max_retries: int = 8
    budget_usd: float | None = None
    cache: str | os.PathLike | None = None
    shots: int = 2
    limit: int | None = None
    prices: str | os.PathLike | None = None
    api_key_env: tuple[str, ...] = ()
    param: tuple[str, ...] = ()
    model_rules: str | os.PathLike | None = None
    structured_output: str = "auto"
    endpoints: str | os.PathLike | None = None
    endpoint_concurrency: int | None = None


def pick_examples(train, labels: list[str], shots: int, seed: int) -> list[int]:
    """Indices of ``shots`` train rows per label: those with the smallest split hash under ``seed``."""
    picked = []
    for k in range(len(labels)):
        rows = [i for i in range(len(train)) if train.label[i] == k]
        rows.sort(key=lambda i: split_key(seed, train.utterance_id[i]))
        picked.extend(rows[:shots])
    # interleave the classes so that no label is always the last example before the question
    picked.sort(key=lambda i: split_key(seed + 1, train.utterance_id[i]))
    return picked


def messages_for(task: str, context: str, utterance: str, examples: list[tuple[str, str, str, str]]) -> list:
    """The chat messages for one utterance; ``examples`` are (task, context, utterance, label)."""
    import json

    from recllmsim_hf.generation.annotate.prompts import intent_messages

    messages = intent_messages(task, context, utterance)
    shots = []
    for ex_task, ex_context, ex_text, ex_label in examples:
        shots.append(intent_messages(ex_task, ex_context[:EXAMPLE_CONTEXT_CHARS], ex_text)[1])
        shots.append({"role": "assistant", "content": json.dumps({"intent": ex_label})})
    return messages[:1] + shots + messages[1:]


def _runner(settings: LLMSettings):
    from recllmsim_hf.generation.llm.options import runner_from_options

    return runner_from_options(
        None, base_url=settings.base_url, api_key=settings.api_key, model=settings.model,
        concurrency=settings.concurrency, timeout=settings.timeout, max_retries=settings.max_retries,
        budget_usd=settings.budget_usd, prices=settings.prices, cache_file=settings.cache,
        api_key_env=list(settings.api_key_env), param=list(settings.param), model_rules=settings.model_rules,
        structured_output=settings.structured_output, roles=(ROLE,), endpoints_file=settings.endpoints,
        endpoint_concurrency=settings.endpoint_concurrency,
    )  # fmt: skip


async def _ask_all(settings: LLMSettings, requests: list, progress: bool) -> tuple[list, dict]:
    runner = _runner(settings)
    try:
        await runner.check((ROLE,))
        bar = None
        if progress:
            from rich.console import Console
            from rich.progress import Progress

            bar = Progress(console=Console(stderr=True), transient=True)
            bar.start()
            task = bar.add_task(f"asking {settings.model}", total=len(requests))

        async def one(request):
            result = await runner.complete(request)
            if bar is not None:
                bar.advance(task)
            return result

        try:
            results = await asyncio.gather(*(one(r) for r in requests))
        finally:
            if bar is not None:
                bar.stop()
        return results, {**runner.stats.as_dict(), "structured_output": runner.structured_modes.get(ROLE)}
    finally:
        await runner.close()


def evaluate_llm(name: str, data, settings: LLMSettings, *, seed: int = 42, progress: bool = True) -> dict:
    """Ask the LLM for the intent of each test utterance; one ``results`` entry (see the module doc)."""
    from recllmsim_hf.generation.annotate.prompts import (
        ANNOTATION_PROMPT_VERSION,
        MAX_TOKENS,
        IntentAnnotation,
    )
    from recllmsim_hf.generation.llm import LLMRequest

    from recllmsim_hf.analysis.intent_data import scores

    if name not in ("llm-zero-shot", "llm-few-shot"):
        raise InputError(f"--models: {name!r} is not an LLM model; use llm-zero-shot or llm-few-shot")
    if settings.limit is not None and settings.limit < 1:
        raise InputError(f"--limit: must be 1 or more, but got {settings.limit}")
    if settings.shots < 1:
        raise InputError(f"--shots: must be 1 or more, but got {settings.shots}")
    train, test = data.splits["train"], data.splits["test"]
    n = len(test) if settings.limit is None else min(settings.limit, len(test))
    examples = []
    if name == "llm-few-shot":
        for i in pick_examples(train, data.labels, settings.shots, seed):
            examples.append(
                (data.tasks[train.task[i]], train.context[i], train.text[i], data.labels[train.label[i]])
            )
    requests = [
        LLMRequest(
            role=ROLE,
            messages=messages_for(data.tasks[test.task[i]], test.context[i], test.text[i], examples),
            temperature=0,
            seed=seed,
            max_tokens=MAX_TOKENS["intent"],
            response_model=IntentAnnotation,
            prompt_version=ANNOTATION_PROMPT_VERSION,
            tag=f"intent of {test.utterance_id[i]}",
        )
        for i in range(n)
    ]
    started = time.perf_counter()
    results, stats = asyncio.run(_ask_all(settings, requests, progress))
    elapsed = time.perf_counter() - started
    index = {label: k for k, label in enumerate(data.labels)}
    predicted = np.array([index.get(r.parsed.intent, -1) if r.ok else -1 for r in results], dtype=np.int64)
    errors = [r.error for r in results if not r.ok]
    return {
        "model": name,
        "llm_model": settings.model,
        "shots_per_class": settings.shots if name == "llm-few-shot" else 0,
        **scores(test.label[:n], predicted, len(data.labels)),
        "train_seconds": 0.0,
        "predict_seconds": round(elapsed, 3),
        "test_size": n,
        "failed": len(errors),
        "first_error": errors[0] if errors else None,
        "cache_hits": stats["cache_hits"],
        "prompt_tokens": stats["prompt_tokens"],
        "completion_tokens": stats["completion_tokens"],
        "cost_usd": round(stats["cost_usd"], 6),
        "structured_output": stats["structured_output"],
    }


def evaluator(settings: LLMSettings):
    """The ``llm(name, data, seed, progress)`` argument of ``analysis.baselines.run_intent_baselines``."""

    def evaluate(name: str, data, seed: int, progress: bool) -> dict:
        return evaluate_llm(name, data, settings, seed=seed, progress=progress)

    return evaluate
