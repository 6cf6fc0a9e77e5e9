"""Batch annotate reads its plan lazily: the calls are fetched a chunk (at most the Batch API's
50,000 requests / 200 MB; smaller here) at a time as the pass reaches them, only two chunks'
answers are held, and the labels are those of a run with one chunk."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from batch_server import FakeBatchAPI
from recllmsim_hf.generation.llm import LLMRequest, LLMRunner, ResponseCache, endpoints_from_options
from recllmsim_hf.generation.llm.executors import ExecutorSpec, Prefetched, make_executor
from recllmsim_hf.generation.llm.options import runner_from_options

from recllmsim_hf.corpus import read_jsonl, write_jsonl
from recllmsim_hf.schema import Conversation, Profile

KEY = "sk-prefetch-0123"


def corpus(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    profiles = [Profile(profile_id=str(i), text=f"1. Age: {20 + i}") for i in range(3)]
    write_jsonl(folder / "profiles.jsonl", profiles)
    return folder


def spec(**kw) -> ExecutorSpec:
    return ExecutorSpec.parse("openai-batch", poll_interval=0.001, poll_max=0.01, **kw)


def ask(i: int) -> LLMRequest:
    messages = [{"role": "system", "content": "You judge."}, {"role": "user", "content": f"q {i}"}]
    return LLMRequest(role="annotator", messages=messages, prompt_version="prefetch-1", seed=i)


def test_the_plan_is_pulled_a_chunk_at_a_time(tmp_path):
    pulled: list[int] = []

    def plan():
        for i in range(10):
            pulled.append(i)
            yield ask(i)

    with FakeBatchAPI() as srv:
        runner = LLMRunner(endpoints_from_options(srv.base_url, KEY, "gpt-4o-mini", environ={}),
                           cache=ResponseCache(tmp_path / "cache.sqlite"))  # fmt: skip
        executor = make_executor(spec(), runner, tmp_path, "t")
        served = Prefetched(runner, executor, plan(), max_requests=3)

        async def main():
            seen, held = [], []
            try:
                for i in range(10):
                    result = await served.complete(ask(i))
                    assert result.ok and result.text, result.error
                    seen.append(len(pulled))
                    held.append(sum(map(len, served._chunks)))  # noqa: SLF001
                before = len(srv.batches)
                again = await served.complete(ask(0))  # long dropped: replayed, not sent again
                return seen, held, before, again
            finally:
                await runner.close()

        seen, held, before, again = asyncio.run(main())
        assert seen == [3, 3, 3, 6, 6, 6, 9, 9, 9, 10]
        assert max(held) <= 6 and held[-1] == 4  # the last two chunks (3 + 1)
        assert before == len(srv.batches) == 4 and srv.batch_lines == 10 and srv.count == 0
        assert again.ok and again.cached


def test_annotate_in_small_chunks_gives_the_labels_of_one_chunk(tmp_path):
    from fake_openai import FakeOpenAI, example_for
    from recllmsim_hf.generation.annotate.annotators import annotate_corpus
    from recllmsim_hf.generation.simulate.conversations import Settings, generate_conversations

    def replier(schema, messages, body):
        return example_for(schema)

    labels, rounds = {}, {}
    for name, chunk in (("one", 50_000), ("small", 4)):
        folder = corpus(tmp_path, name)
        with FakeOpenAI(end_after=2) as srv:
            make = lambda c: runner_from_options(c, base_url=srv.base_url, api_key=KEY, model="gpt-4o-mini")  # noqa: E731
            generate_conversations(folder, 5, make, settings=Settings(seed=2), progress=False)
        with FakeBatchAPI(end_after=2, json_replier=replier) as srv:
            make = lambda c: runner_from_options(c, base_url=srv.base_url, api_key=KEY, model="gpt-4o-mini")  # noqa: E731
            chunked = spec(max_requests=chunk)
            a = annotate_corpus(folder, "intent,quality", make, progress=False, executor=chunked)
            assert srv.count == 0 and a["annotators"]["intent"]["errors"] == 0
        convs = read_jsonl(folder / "conversations.jsonl", Conversation)
        intents = [t.intent for c in convs for t in c.turns if t.role == "user"]
        assert intents and None not in intents
        labels[name] = json.dumps([([t.intent for t in c.turns], c.ratings.model_dump()) for c in convs])
        rounds[name] = (a["executor"]["rounds"], a["estimate"]["requests"])
    assert labels["one"] == labels["small"]
    requests = rounds["one"][1]
    assert rounds["one"][0] == 1 and rounds["small"][0] == -(-requests // 4) and requests > 8
