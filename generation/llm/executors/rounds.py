"""Batch rounds: the work of a command as a few large batch files instead of many online calls.

A *round* is the next request of every unfinished item (the next simulator or assistant turn of
each conversation, each pending annotation). Requests the response cache already answers never
enter a round (a replay costs nothing, as online); the round's files are described in
``roundfiles.py``; its parts go to a back end (``openai_batch.py``, ``command.py``).

- Each line's body is the body the online executor would send (the model's rules, ``--param``,
  the endpoint's structured-output mode, declaration order), and each answer goes through the
  online rules of :class:`~recllmsim_hf.generation.llm.calls.Call`: a refusal is recorded with
  its text, not retried; a reply cut at the cap goes into the next round once with the cap
  doubled; invalid JSON into the next round once; a refused response format falls back to the
  next mode; ``context_length_exceeded`` is recorded as ``context_limit``; 400/404/422 are
  recorded as rejected (not retried) and 3 identical ones stop the run; 401/403 stop it at once.
  Answers are priced at the *batch* price of ``prices.yaml`` (cached prompt tokens at the batch
  cached rate; a line without usage by the local estimate); tokens and cost go into the runner's
  stats, every answer into the response cache, before the round is marked ``applied``.
- Lines that a retry may fix (error-file lines without a status, 408/409/429/5xx, lines an
  expired or cancelled batch left unanswered) go into the next round, at most ``--max-retries``
  times; then the item gets the error, as online.
- ``--budget-usd`` is checked before each round against its worst case (every prompt at one
  token per 3 bytes of body, every completion at its cap or the model rule's reservation), at
  the batch price.
- A role with several endpoints (``--base-url`` twice, ``--simulator-base-url`` twice, an
  endpoints file) has each round's lines split over them by the ``openai-batch`` back end: even
  blocks of the sorted lines, one Files upload and one batch per endpoint with that endpoint's
  key; an endpoint the check before the run could not reach is left out (also for the parts of an
  open round a stopped run had not uploaded yet). The custom_id stays the
  request's cache key (which names the role's first endpoint), so the cache and a resume do not
  depend on the split. The ``command`` back end runs locally: it ignores the endpoints.
- Resume: after kill -9 a rerun replays every applied round from the cache, finishes a round
  that was open (an openai batch is polled again, not sent again), reads a round that was
  downloaded but not applied, and goes on with the next round number.

Example (what a 3-turn conversation run looks like on disk)::

    CORPUS/.batch/conversations/round-0000/{input.jsonl,state.json,output.jsonl,errors.jsonl}
    CORPUS/.batch/conversations/round-0001/...
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from recllmsim_hf.corpus import atomic_write_text
from recllmsim_hf.errors import InputError

from ..budget import Budget, BudgetExceeded
from ..calls import Call
from ..replay import CacheReplay
from ..requests import LLMResult
from ..transport import TransportFailure
from . import ExecutorSpec, Item
from .online import finish, step
from .roundfiles import batch_line, read_answers, read_state, split_parts, write_state

ROUNDS = "batch round(s)"


class BatchExecutor:
    """Items in rounds through a batch back end (see the module docstring)."""

    def __init__(self, runner, backend, folder: Path, *, spec: ExecutorSpec, log: Callable | None = None):
        self.runner, self.backend, self.folder, self.spec = runner, backend, Path(folder), spec
        self.name = spec.name
        self.prices = runner.prices.for_batch()
        self._budget = Budget(runner.budget_usd, self.prices, runner.stats)  # its worst-case rule
        self._cache = CacheReplay(runner.cache, runner.stats)
        self.log = log or (lambda line: None)
        self._fresh: dict[str, LLMResult] = {}  # answered in this process, not handed out yet
        self._final: dict[str, LLMResult] = {}  # out of retries
        self._raw: dict[str, tuple[str, object]] = {}  # downloaded by a killed run, not applied
        self._calls: dict[str, Call] = {}  # key -> its attempts so far (the online retry rules)
        self._sent: dict[str, tuple] = {}  # key -> (mode, body bytes, cap) of its line in the last round
        self._resumed = False
        self._reread: list[Path] = []
        self._next = 0
        self.stats = {"executor": spec.name, "rounds": 0, "batch_requests": 0, "failed_lines": 0}

    # -- the executor interface ---------------------------------------------------------------
    def describe(self) -> dict:
        return self.spec.describe()

    async def check(self, roles: Sequence[str] | None = None) -> None:
        """Fail fast on a refused key (the Batch API); a local program has nothing to check."""
        if self.backend.name == "openai-batch":
            await self.runner.check(roles)

    async def drive(self, items: Sequence[Item], on_done: Callable | None = None) -> None:
        await self._resume()
        live: dict[int, tuple[Item, object, tuple]] = {}
        for index, item in enumerate(items):
            await self._advance(index, item, step(item, first=True), live, on_done)
        while live:
            pending: dict[str, tuple] = {}
            for _, request, prepared in live.values():
                pending.setdefault(prepared[2], (request, *prepared))
            await self._round(pending)
            waiting, live = live, {}
            for index, (item, request, prepared) in sorted(waiting.items()):
                result = self._known(request, prepared)
                if result is None:  # its line failed: it goes into the next round
                    live[index] = (item, request, prepared)
                    continue
                await self._advance(index, item, step(item, result), live, on_done)
        self._close_resumed()

    async def complete_all(self, requests: Sequence) -> list[LLMResult]:
        results: list = [None] * len(requests)

        def one(request):
            return (yield request)

        def keep(index, value, error):
            results[index] = value

        await self.drive([one(r) for r in requests], keep)
        return results

    # -- items ---------------------------------------------------------------------------------
    async def _advance(self, index: int, item: Item, state, live: dict, on_done) -> None:
        kind, payload = state
        while kind == "ask":
            prepared = self.runner.prepare(payload)
            result = self._known(payload, prepared)
            if result is None:
                live[index] = (item, payload, prepared)
                return
            kind, payload = step(item, result)
        await finish(
            on_done, index, payload if kind == "done" else None, payload if kind == "failed" else None
        )

    def _known(self, request, prepared: tuple) -> LLMResult | None:
        """The answer to ``request`` if it is known: answered now, out of retries, cached, downloaded."""
        endpoint, _, key = prepared
        if key in self._fresh:
            self.runner.stats.calls += 1
            return self._noted(request, self._fresh.pop(key))
        if key in self._final:
            self.runner.stats.calls += 1
            return self._final[key]
        cached = self._replay(request, endpoint, key)
        if cached is not None:
            return self._noted(request, cached)
        if key in self._raw:
            self._settle(key, request, endpoint, self._raw.pop(key))
            return self._known(request, prepared) if key in self._fresh or key in self._final else None
        return None

    def _replay(self, request, endpoint, key: str) -> LLMResult | None:
        result = self._cache._replay(key, request, endpoint)  # noqa: SLF001 (the runner's own rule)
        if result is not None:
            self.runner.stats.calls += 1
        return result

    def _noted(self, request, result: LLMResult) -> LLMResult:
        if result.structured_mode is not None:
            self.runner.structured_modes[request.role] = result.structured_mode
        return result

    def _settle(self, key: str, request, endpoint, answer: tuple[str, object]) -> None:
        """Turn one answer line into a result (cached), a final failure, or a line of the next round."""
        call = self._calls.get(key)
        if call is None:  # read from a round a stopped run left: its first attempt
            call = self._calls[key] = self.runner.call(request, ROUNDS)
            call.start()
        mode, raw, cap = self._sent.pop(key, None) or self.runner.shaped(call)
        kind, payload = answer
        try:
            if kind != "ok":
                raise payload
            verdict = call.on_reply(payload, raw, cap, prices=self.prices)
        except TransportFailure as e:
            e.mode = mode
            verdict = call.on_failure(e)
        result = verdict.result
        if result is None:  # into the next round (a retry, the cap doubled, another mode)
            self.stats["failed_lines"] += 1
            return
        del self._calls[key]
        if not result.ok:
            self._final[key] = result
            return
        self.runner.cache.put(
            key, model=endpoint.model, prompt_version=request.prompt_version, text=result.text,
            finish_reason=result.finish_reason, prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            cost_usd=result.cost_usd if result.cost_known else None, structured_mode=result.structured_mode,
        )  # fmt: skip
        self._fresh[key] = result

    # -- rounds --------------------------------------------------------------------------------
    async def _round(self, pending: dict[str, tuple]) -> None:
        self.runner.guard.raise_if_stopped()
        sent = {}
        for key, (request, _, _, _) in pending.items():
            call = self._calls.get(key) or self._calls.setdefault(key, self.runner.call(request, ROUNDS))
            sent[key] = (call, *self.runner.shaped(call))
        self._check_budget(sent)
        for key, (call, mode, raw, cap) in sent.items():
            call.start()
            self._sent[key] = (mode, raw, cap)
        number, folder = self._next, self.folder / f"round-{self._next:04d}"
        self._next += 1
        by_group: dict[tuple, list] = {}
        for key, (call, _, raw, _) in sent.items():
            group = (call.endpoint.base_url or "", call.endpoint.model)
            by_group.setdefault(group, []).append((key, call.endpoint, raw))
        rows = []
        for (_, model), entries in by_group.items():
            entries.sort(key=lambda entry: entry[0])
            targets = self._targets(entries[0][1])
            for i, (key, _, raw) in enumerate(entries):  # even blocks of the sorted lines per replica
                url = targets[i * len(targets) // len(entries)]
                rows.append(((url, model), key, batch_line(key, raw.decode("utf-8"))))
        rows.sort()
        lines = [(group, line) for group, _, line in rows]
        parts = split_parts(lines, self.spec.max_requests, self.spec.max_bytes)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "input.jsonl", "".join(line for _, line in lines))
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        state = {"round": number, "backend": self.name, "status": "open", "requests": len(rows),
                 "parts": parts, "started_at": started}  # fmt: skip
        write_state(folder, state)
        self.log(f"batch round {number}: {len(rows):,} request(s) in {len(parts)} batch(es) -> {folder}")
        await self._execute(folder, state)
        answers = self._answers(folder)
        missing = ("error", TransportFailure("no line in the batch output", retryable=True))
        for key, (request, endpoint, _, _) in pending.items():
            self._settle(key, request, endpoint, answers.get(key, missing))
        state["status"] = "applied"
        write_state(folder, state)

    async def _execute(self, folder: Path, state: dict) -> None:
        await self.backend.run(folder, state, lambda: write_state(folder, state), self._endpoint_of)
        self.stats["rounds"] += 1
        self.stats["batch_requests"] += state["requests"]
        state["status"] = "downloaded"
        write_state(folder, state)

    def _answers(self, folder: Path) -> dict[str, tuple[str, object]]:
        found: dict[str, tuple[str, object]] = {}
        for name in ("errors.jsonl", "output.jsonl"):  # an answered line wins over an error line
            path = folder / name
            if path.is_file():
                found.update(read_answers(path.read_bytes(), str(path)))
        return found

    async def _resume(self) -> None:
        """Finish and read what a killed run left (once per process)."""
        if self._resumed:
            return
        self._resumed = True
        folders = sorted(self.folder.glob("round-[0-9][0-9][0-9][0-9]")) if self.folder.is_dir() else []
        for folder in folders:
            self._next = max(self._next, int(folder.name[6:]) + 1)
            if not (folder / "state.json").is_file():
                continue  # killed before its state was written: nothing was sent
            state = read_state(folder)
            if state["status"] == "applied":
                continue
            if state["status"] == "open":
                self.log(f"batch round {state['round']}: resuming the round a stopped run left open")
                self._reroute(state)
                await self._execute(folder, state)
            # Read again on every start until applied: its answers are settled when asked for.
            self._raw.update(self._answers(folder))
            self._reread.append(folder)

    def _close_resumed(self) -> None:
        """Mark the rounds a stopped run left ``applied`` once all their answers are cached."""
        for folder in list(self._reread):
            answers = self._answers(folder)
            if all(
                kind != "ok" or self.runner.cache.get(key) is not None for key, (kind, _) in answers.items()
            ):
                state = read_state(folder)
                state["status"] = "applied"
                write_state(folder, state)
                self._reread.remove(folder)

    def _replicas(self, endpoint) -> list:
        """The pool replicas of ``endpoint`` when the back end splits rounds over them, else []."""
        if not getattr(self.backend, "splits", False):
            return []
        replicas = getattr(self.runner.transport, "replicas", None)
        return (replicas(endpoint) or []) if replicas is not None else []

    def _targets(self, endpoint) -> list[str]:
        """The base URLs a round's lines of ``endpoint`` are split over: its replicas that are not
        set aside (an unreachable one is set aside by the check before the run), or itself."""
        replicas = self._replicas(endpoint)
        up = [r for r in replicas if r.down_until <= time.monotonic()] or replicas
        return [r.base_url for r in up] or [endpoint.base_url or ""]

    def _reroute(self, state: dict) -> None:
        """Parts of an open round that were not uploaded and whose endpoint is set aside now (the
        check could not reach it) or no longer given go to an endpoint of the same pool that is up."""
        for part in state["parts"]:
            base_url, model = part["group"]
            if part.get("file_id") or part.get("downloaded"):
                continue
            pools = [(self._replicas(ep), ep) for _, ep in sorted(self.runner.endpoints.items())]
            pools = [(replicas, ep) for replicas, ep in pools if replicas and ep.model == model]
            # the pool that holds the part's endpoint, else (its URL no longer given) one of the model's
            pools.sort(key=lambda pool: all(r.base_url != base_url for r in pool[0]))
            if not pools:
                continue
            replicas, endpoint = pools[0]
            mine = [r for r in replicas if r.base_url == base_url]
            if mine and mine[0].down_until <= time.monotonic():
                continue  # still up: it goes where it was meant to
            target = self._targets(endpoint)[0]
            if target != base_url:
                self.log(f"batch round {state['round']} part {part['index']}: {base_url} is not "
                         f"reachable; sending the part to {target}")  # fmt: skip
                part["group"] = [target, model]

    def _endpoint_of(self, group: list) -> object:
        base_url, model = group
        for endpoint in self.runner.endpoints.values():
            if (endpoint.base_url or "") == base_url and endpoint.model == model:
                return endpoint
        for endpoint in self.runner.endpoints.values():
            for replica in self._replicas(endpoint) if endpoint.model == model else []:
                if replica.base_url == base_url:  # with that replica's own key
                    key = replica.api_key or endpoint.api_key
                    return endpoint.model_copy(update={"base_url": replica.base_url, "api_key": key})
        raise InputError(
            f"a batch round of this corpus was sent to {base_url or 'the OpenAI API'} with model {model!r}, "
            f"which no role uses now; rerun with the same --base-url and --model, or delete {self.folder} "
            "(its unfinished rounds are then sent, and paid for, again)"
        )

    def _check_budget(self, sent: dict[str, tuple]) -> None:
        budget = self.runner.budget_usd
        if budget is None:
            return
        worst = 0.0
        for call, _, raw, cap in sent.values():
            rule = self.runner.rules.rule(call.endpoint.model)
            worst += self._budget.worst_case(call.request, call.endpoint, len(raw),
                                             cap or rule.reserve_completion_tokens)  # fmt: skip
        spent = self.runner.stats.cost_usd
        if spent + worst > budget:
            raise BudgetExceeded(
                f"--budget-usd {budget:g}: spent {spent:.6g} USD and the next batch round ({len(sent):,} "
                f"requests) may cost up to {worst:.6g} USD; stopped before sending it (rerun with a larger "
                "budget: finished rounds replay from the cache)"
            )
