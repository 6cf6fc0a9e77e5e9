"""The annotation pass: ask the LLM annotators for every missing label of a corpus, then write it back.

What is asked (``what`` is any of :data:`ANNOTATORS`; see ``annotation_prompts.py``):

- ``intent``: each user turn whose ``intent`` is None;
- ``hallucination``: each assistant turn whose ``hallucination`` is None (``reason`` is set
  when a hallucination is found, None otherwise);
- ``quality``: each conversation with a missing rating (only the missing metrics are filled);
- ``summary``: each conversation with an empty ``preference_summary``;
- ``translation``: ``Profile.text_zh``, ``Scenario.text_zh``, each ``Turn.content_zh`` that is
  None; ``Conversation.profile_zh`` / ``scenario_zh`` are copied from the records.

``overwrite=True`` asks again for everything (human labels included). Conversations failed
by the generation filters are passed through untouched (they never enter the dataset).

Failures are never defaulted: an output outside the allowed values is retried by the
runner, and when the retries run out the field stays None and the error is recorded in
``extra["annotation"][what]["errors"]`` of the conversation (or of the profile / scenario),
next to the annotator's ``model`` and ``prompt_version``. A rerun asks again only for what is
still missing; every call already answered replays from ``CORPUS/.cache/llm.sqlite``.

Writes: nothing in the corpus changes until every call is done. Conversations are then
streamed (a window of conversations in flight) into a temporary file renamed over
``conversations.jsonl``, and the other files are replaced the same way, so Ctrl-C, a kill,
``--budget-usd`` running out or a refused key leave the corpus as it was (only the cache grows).

Example:
    >>> from functools import partial  # doctest: +SKIP
    >>> from recllmsim_hf.generation.llm.options import runner_from_options  # doctest: +SKIP
    >>> make_runner = partial(runner_from_options, model="gpt-4o-mini")  # doctest: +SKIP
    >>> annotate_corpus("corpus", ["intent"], make_runner)  # doctest: +SKIP
    {'corpus': 'corpus', 'what': ['intent'], 'annotators': {'intent': {'requests': 412, ...}}, ...}
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing, nullcontext
from pathlib import Path

from recllmsim_hf.corpus import (
    CONVERSATIONS,
    MANIFEST,
    PROFILES,
    SCENARIOS,
    Corpus,
    atomic_write_text,
    write_jsonl,
)
from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import RATING_METRICS, Conversation, Profile, Scenario

from ..llm import LLMResult, LLMRunner
from ..llm.executors import ExecutorSpec, Prefetched, make_executor
from ..shards import Shard, shard_corpus
from .jobs import (
    Estimate,
    Job,
    apply,
    coverage,
    included,
    parse_what,
    plan_conversation,
    plan_record,
)
from .prompts import ANNOTATION_PROMPT_VERSION

__all__ = ["annotate_corpus", "format_summary", "parse_what"]

Log = Callable[[str], None]


def annotate_corpus(
    corpus: str | os.PathLike,
    what: list[str] | str,
    make_runner: Callable[[Path], LLMRunner],
    *,
    overwrite: bool = False,
    progress: bool = True,
    log: Log | None = None,
    executor: ExecutorSpec | str | None = None,
    shard: Shard | str | None = None,
    out: str | os.PathLike | None = None,
) -> dict:
    """Annotate ``corpus`` in place and return a summary (counts per annotator, cost, coverage).

    ``make_runner(corpus)`` builds the :class:`LLMRunner` (its cache belongs in the corpus
    folder: ``llm_options.runner_from_options`` does that). The cost estimate is passed to
    ``log`` before any call; if the runner has a budget and the estimate is above it,
    :class:`InputError` is raised and nothing is sent. ``executor`` (default online;
    ``generation/llm/executors``): with a batch executor the calls are fetched in batch rounds
    (``CORPUS/.batch/annotate``) a chunk of at most 50,000 requests / 200 MB at a time, read
    lazily from the plan as the pass reaches them (memory stays flat in the corpus size), and the
    answers are written as online. ``shard``
    ("K/N") with ``out``: shard K of the conversations is copied to ``out`` and annotated there
    (``generation/shards.py``), so N machines can share one corpus.

    Example:
        >>> annotate_corpus("corpus", "intent,quality", make_runner)["missing"]  # doctest: +SKIP
        {'intent': 0, 'quality': 0}
    """
    whats = parse_what(what)
    path = Path(corpus)
    if not (path / CONVERSATIONS).is_file():
        raise InputError(
            f"--corpus {path}: not a corpus folder (no {CONVERSATIONS}); pass the folder written by "
            "`recllmsim generate`, or use --evaluate to compare the annotators with the release's labels"
        )
    if shard is not None:
        path = shard_corpus(path, out, Shard.parse(shard) if isinstance(shard, str) else shard)
    data = Corpus(path)  # profiles and scenarios checked here, conversations while planning
    log = log or (lambda line: None)
    stamp = _stamp(path / CONVERSATIONS)
    runner = make_runner(path)
    with asyncio.Runner() as loop:
        try:
            spec = ExecutorSpec.parse(executor) if isinstance(executor, str) else executor or ExecutorSpec()
            batch_prices = runner.prices.for_batch() if spec.batched else None
            estimate, record_jobs = _plan(data, whats, overwrite, runner, batch_prices)
            log(estimate.line())
            estimate.check_budget(runner.budget_usd)
            ex = make_executor(spec, runner, path, "annotate", log)
            if estimate.requests > estimate.cached:
                loop.run(ex.check(("annotator",)))
            batched = ex.name != "online"
            jobs_runner = _prefetched(ex, data, whats, overwrite, record_jobs) if batched else runner
            counts = {w: {"requests": 0, "annotated": 0, "errors": 0, "cached": 0} for w in whats}
            with _progress_bar(progress, estimate.requests) as bar:
                tracker = _Tracker(jobs_runner, counts, bar)
                loop.run(_annotate_records(tracker, record_jobs))
                stream = _annotated(tracker, data, whats, overwrite, window=2 * runner.concurrency + 8)
                # closing(): after a Ctrl-C in the writer, the stream is closed while the loop still runs
                with closing(_sync(loop, stream, path / CONVERSATIONS, stamp)) as rows:
                    write_jsonl(path / CONVERSATIONS, rows)
            if record_jobs:
                write_jsonl(path / PROFILES, data.profiles.values())
                write_jsonl(path / SCENARIOS, data.scenarios.values())
            _note_in_manifest(path, runner, whats, ex)
        finally:
            loop.run(runner.close())
    return {
        "corpus": str(path),
        "what": whats,
        "model": runner.endpoints["annotator"].model,
        "prompt_version": ANNOTATION_PROMPT_VERSION,
        "estimate": estimate.as_dict(),
        "annotators": counts,
        "missing": coverage(Corpus(path), whats),
        "usage": runner.stats.as_dict(),
        "executor": ex.stats,
        "first_error": tracker.first_error,
        "structured_output": runner.structured_modes.get("annotator"),
    }


def _prefetched(executor, data: Corpus, whats: list[str], overwrite: bool, record_jobs) -> Prefetched:
    """The pass's calls fetched ahead through the batch executor, chunk by chunk from the lazy plan
    (in the order the pass asks: records first, then the conversations in file order)."""

    def plan():
        for _, job in record_jobs:
            yield job.request
        for conv in data.iter_conversations():
            if included(conv):
                for job in plan_conversation(conv, data, whats, overwrite):
                    yield job.request

    spec = executor.spec
    return Prefetched(
        executor.runner, executor, plan(), max_requests=spec.max_requests, max_bytes=spec.max_bytes
    )


def _plan(data: Corpus, whats: list[str], overwrite: bool, runner: LLMRunner, prices=None):
    """Price every call (conversations are planned again while streaming: memory stays flat), at
    ``prices`` (the batch table for a batch executor) or the runner's."""
    estimate = Estimate(runner, prices)
    profile_ids, scenario_ids = set(), set()
    for conv in data.iter_conversations():
        if included(conv):
            profile_ids.add(conv.profile_id)
            scenario_ids.add(conv.scenario_id)
            for job in plan_conversation(conv, data, whats, overwrite):
                estimate.add(job)
    record_jobs = []
    for records, ids in ((data.profiles, profile_ids), (data.scenarios, scenario_ids)):
        for ident in sorted(ids):
            for job in plan_record(records[ident], whats, overwrite):
                estimate.add(job)
                record_jobs.append((records[ident], job))
    return estimate.done(), record_jobs


class _Tracker:
    """Runs jobs through the runner, counting outcomes per annotator and advancing the bar."""

    def __init__(self, runner: LLMRunner, counts: dict, bar):
        self.runner, self.counts, self.bar = runner, counts, bar
        self.model = runner.endpoints["annotator"].model
        self.first_error: str | None = None

    async def run(self, job: Job) -> LLMResult:
        result = await self.runner.complete(job.request)
        count = self.counts[job.what]
        count["requests"] += 1
        count["cached"] += result.cached
        count["annotated" if result.ok else "errors"] += 1
        self.first_error = self.first_error or result.error
        if self.bar is not None:
            self.bar.advance(self.bar.task_ids[0])
        return result

    def provenance(self, extra: dict, what: str, errors: list[dict], answered: list[Job]) -> None:
        """Record who answered ``what`` in one record, and which items: turn indexes (merged with
        earlier runs') or, for quality, the metrics; errors are this run's."""
        entry = {"model": self.model, "prompt_version": ANNOTATION_PROMPT_VERSION, "errors": errors}
        mode = self.runner.structured_modes.get("annotator")
        if mode is not None:
            entry["structured_output"] = mode
        earlier = extra.setdefault("annotation", {}).get(what, {})
        turns = {job.index for job in answered if job.index is not None}
        if turns or earlier.get("turns"):
            entry["turns"] = sorted(turns | set(earlier.get("turns", [])))
        metrics = {m for job in answered for m in job.metrics}
        if metrics or earlier.get("metrics"):
            entry["metrics"] = [m for m in RATING_METRICS if m in metrics | set(earlier.get("metrics", []))]
        extra["annotation"][what] = entry


async def _annotate_records(tracker: _Tracker, record_jobs: list[tuple[Profile | Scenario, Job]]) -> None:
    results = await asyncio.gather(*(tracker.run(job) for _, job in record_jobs))
    for (record, job), result in zip(record_jobs, results, strict=True):
        error = apply(record, job, result)
        tracker.provenance(record.extra, job.what, [error] if error else [], [])


async def _annotate_one(
    tracker: _Tracker, conv: Conversation, data: Corpus, whats, overwrite
) -> Conversation:
    if not included(conv):
        return conv
    jobs = plan_conversation(conv, data, whats, overwrite)
    results = await asyncio.gather(*(tracker.run(job) for job in jobs))
    errors: dict[str, list[dict]] = {}
    answered: dict[str, list[Job]] = {}
    for job, result in zip(jobs, results, strict=True):
        error = apply(conv, job, result)
        errors.setdefault(job.what, []).extend([error] if error else [])
        answered.setdefault(job.what, []).extend([] if error else [job])
    for what, found in errors.items():
        tracker.provenance(conv.extra, what, found, answered[what])
    if "translation" in whats:  # the conversation shows the record's translation
        pairs = (
            ("profile_zh", data.profiles[conv.profile_id]),
            ("scenario_zh", data.scenarios[conv.scenario_id]),
        )
        for field, record in pairs:
            if record.text_zh is not None and (overwrite or getattr(conv, field) is None):
                setattr(conv, field, record.text_zh)
    return conv


async def _annotated(
    tracker: _Tracker, data: Corpus, whats, overwrite, window: int
) -> AsyncIterator[Conversation]:
    """The conversations in file order, ``window`` of them annotated at once."""
    pending: deque[asyncio.Task] = deque()
    try:
        for conv in data.iter_conversations():
            pending.append(asyncio.create_task(_annotate_one(tracker, conv, data, whats, overwrite)))
            if len(pending) >= window:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _sync(
    loop: asyncio.Runner, stream: AsyncIterator[Conversation], path: Path, stamp
) -> Iterator[Conversation]:
    """Drive the async stream from the synchronous, atomic writer; refuse to replace a file that changed."""

    async def step() -> Conversation:
        return await anext(stream)

    try:
        while True:
            try:
                yield loop.run(step())
            except StopAsyncIteration:
                break
        if _stamp(path) != stamp:
            raise InputError(
                f"{path}: changed while annotating (another process wrote to it); nothing was replaced: "
                "rerun `recllmsim annotate` when it is done (answered calls replay from the cache)"
            )
    finally:
        loop.run(stream.aclose())


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _note_in_manifest(path: Path, runner: LLMRunner, whats: list[str], executor) -> None:
    if not (path / MANIFEST).is_file():
        return
    from recllmsim_hf.schema import Manifest

    manifest = Manifest.model_validate_json((path / MANIFEST).read_bytes())
    done = manifest.generation.get("annotation", {}).get("what", [])
    manifest.generation["annotation"] = {
        "model": runner.endpoints["annotator"].model,
        "prompt_version": ANNOTATION_PROMPT_VERSION,
        "what": sorted(set(done) | set(whats)),
        **executor.describe(),
    }
    mode = runner.structured_modes.get("annotator")
    if mode is not None:
        manifest.generation["annotation"]["structured_output"] = mode
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    atomic_write_text(path / MANIFEST, text)


def _progress_bar(enabled: bool, total: int):
    if not enabled or total == 0:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("annotating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    bar.add_task("annotating", total=total)
    return bar


def format_summary(summary: dict) -> str:
    """The summary of one pass as a few aligned lines of text."""
    usage = summary["usage"]
    lines = [f"annotated {summary['corpus']} with {summary['model']} ({summary['prompt_version']})"]
    for what, c in summary["annotators"].items():
        missing = summary["missing"][what]
        lines.append(
            f"  {what:<14} {c['requests']:>7,} calls  {c['annotated']:>7,} annotated  "
            f"{c['errors']:>5,} errors  {c['cached']:>7,} from cache  {missing:>6,} still missing"
        )
    lines.append(
        f"  spent {usage['cost_usd']:.4f} USD on {usage['requests']:,} HTTP requests "
        f"({usage['prompt_tokens']:,} input + {usage['completion_tokens']:,} output tokens)"
    )
    return "\n".join(lines)
