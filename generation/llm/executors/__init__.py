"""Request executors: how the LLM requests of a command reach the models.

The code that decides what to ask (conversations, profiles, annotators, the LLM filter) hands
its work to an executor as *items* and never knows which executor runs:

- an item is a generator that yields the next :class:`LLMRequest` it needs and receives its
  :class:`LLMResult` (``result = yield request``) until it returns its value; it raises
  :class:`ItemFailed` when it cannot go on (a call ran out of retries);
- ``await executor.drive(items, on_done)`` runs every item to its end and calls
  ``on_done(index, value, error)`` (may be async) as each one finishes;
- ``await executor.complete_all(requests)`` is the one-step case: the results, in order.

Executors (``--executor``):

- ``online`` (:class:`OnlineExecutor`): each request goes out as soon as its item asks, through
  the :class:`LLMRunner` (concurrency, retries, the cache, the budget);
- ``openai-batch`` and ``command`` (:class:`BatchExecutor`): the work goes in *rounds*; a round is
  the next request of every unfinished item, written as one JSONL file in the OpenAI batch
  format under ``CORPUS/.batch/<run>/round-NNNN/`` and sent through the OpenAI Batch API
  (``openai_batch.py``) or a local program such as ``vllm run-batch`` (``command.py``). See
  ``rounds.py`` for resume, retries, cost and the budget.

Example:
    >>> spec = ExecutorSpec.parse("command", batch_command="vllm run-batch -i {input} -o {output} --model m")
    >>> spec.name, spec.describe()
    ('command', {'executor': 'command', 'batch_program': 'vllm'})
"""

from __future__ import annotations

import shlex
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recllmsim_hf.errors import InputError

EXECUTORS = ("online", "openai-batch", "command")
BATCH_FOLDER = ".batch"


class ItemFailed(Exception):
    """An item cannot go on (one of its calls ran out of retries); the run goes on with the others."""


Item = Generator[Any, Any, Any]


@dataclass(frozen=True)
class ExecutorSpec:
    """The executor flags of one command.

    ``name``: one of :data:`EXECUTORS`. ``batch_command``: the program of the ``command``
    executor, with ``{input}``, ``{output}`` and optionally ``{model}`` placeholders.
    ``poll_interval`` / ``poll_max``: seconds between two polls of a batch (growing 1.5x
    from the first to the second). ``max_requests`` / ``max_bytes``: the size of one batch
    file (the Batch API's limits by default).
    """

    name: str = "online"
    batch_command: str | None = None
    poll_interval: float = 5.0
    poll_max: float = 120.0
    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024

    @classmethod
    def parse(cls, name: str, batch_command: str | None = None, **kw) -> ExecutorSpec:
        """Validate the flags (one-line errors naming the flag and the bad value)."""
        if name not in EXECUTORS:
            raise InputError(f"--executor: must be one of {', '.join(EXECUTORS)}, but got {name!r}")
        if name == "command":
            if not batch_command:
                raise InputError(
                    "--executor command: needs --batch-command, e.g. "
                    "'vllm run-batch -i {input} -o {output} --model MODEL'"
                )
            try:
                argv = shlex.split(batch_command)
            except ValueError as e:
                raise InputError(f"--batch-command: cannot split {batch_command!r} ({e})") from None
            text = " ".join(argv)
            if not argv or "{input}" not in text or "{output}" not in text:
                raise InputError(
                    "--batch-command: must name the files as {input} and {output}, "
                    f"but got {batch_command!r}"
                )
        elif batch_command:
            raise InputError(f"--batch-command: only used with --executor command, not with {name!r}")
        if kw.get("poll_interval", 1.0) <= 0:
            raise InputError(f"--batch-poll: must be positive, but got {kw['poll_interval']}")
        return cls(name=name, batch_command=batch_command, **kw)

    @property
    def batched(self) -> bool:
        return self.name != "online"

    def describe(self) -> dict:
        """What the provenance records (the program's name, not its arguments)."""
        out = {"executor": self.name}
        if self.name == "command":
            out["batch_program"] = Path(shlex.split(self.batch_command)[0]).name
        return out


def make_executor(spec: ExecutorSpec | str | None, runner, corpus: str | Path, run: str, log=None):
    """The executor of ``spec`` around ``runner``; batch rounds live in ``CORPUS/.batch/<run>``."""
    spec = ExecutorSpec.parse(spec) if isinstance(spec, str) else spec or ExecutorSpec()
    if not spec.batched:
        from .online import OnlineExecutor

        return OnlineExecutor(runner)
    if runner.cache is None:
        raise InputError(
            f"--no-cache: the {spec.name} executor keeps every answer in the response cache to resume "
            "after a crash; drop --no-cache"
        )
    from .rounds import BatchExecutor

    if spec.name == "openai-batch":
        from .openai_batch import OpenAIBatchBackend

        backend = OpenAIBatchBackend(spec, timeout=runner.timeout, log=log)
    else:
        from .command import CommandBackend

        backend = CommandBackend(spec, log=log)
    return BatchExecutor(runner, backend, Path(corpus) / BATCH_FOLDER / run, spec=spec, log=log)


class Prefetched:
    """A runner look-alike serving answers a batch executor fetches ahead, for code that calls
    ``complete`` one request at a time in the order of ``plan`` (an iterable of the same requests).

    ``plan`` is read lazily, a *chunk* at a time: at most ``max_requests`` requests or
    ``max_bytes`` of bodies (the Batch API's limits by default), sent through the executor as
    rounds of their own when ``complete`` first asks for a request the chunks held do not answer.
    Only the last two chunks' answers are held, so memory stays flat in the plan's length. A
    request asked again later, or not in the plan, is answered by the executor alone (a cached
    answer replays; nothing is sent twice).

    Example:
        >>> Prefetched(runner, executor, iter(requests)).endpoints is runner.endpoints  # doctest: +SKIP
        True
    """

    KEEP = 2

    def __init__(self, runner, executor, plan, *, max_requests: int = 50_000, max_bytes: int = 200 * 1024**2):
        self._runner, self._executor, self._plan = runner, executor, iter(plan)
        self.max_requests, self.max_bytes = max_requests, max_bytes
        self._chunks: list[dict[str, Any]] = []
        self._fetched, self._exhausted, self._lock = 0, False, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    async def complete(self, request):
        import asyncio

        _, _, key = self._runner.prepare(request)
        self._lock = self._lock or asyncio.Lock()
        while True:
            for chunk in self._chunks:
                if key in chunk:
                    return chunk[key]
            if self._exhausted:
                async with self._lock:  # the executor drives one set of items at a time
                    return (await self._executor.complete_all([request]))[0]
            seen = self._fetched
            async with self._lock:
                if self._fetched == seen:  # nobody fetched the next chunk while this one waited
                    await self._fetch()

    async def _fetch(self) -> None:
        requests, size, last = [], 0, True
        for request in self._plan:
            requests.append(request)
            size += len(self._runner.prepare(request)[1])
            if len(requests) >= self.max_requests or size >= self.max_bytes:
                last = False
                break
        if requests:
            results = await self._executor.complete_all(requests)
            keys = [self._runner.prepare(r)[2] for r in requests]
            self._chunks = [*self._chunks, dict(zip(keys, results, strict=True))][-self.KEEP :]
        self._exhausted = last  # only now: a caller that sees it finds the last chunk's answers
        self._fetched += 1
