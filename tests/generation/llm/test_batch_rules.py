"""Batch rounds follow the online rules of issue 10: the line body is the online body (model rules,
structured-output mode, --param, declaration order), and answers read from batch output lines are
treated as online answers (refusals, cut replies, missing usage, cached tokens at the batch price).
A pool of endpoints keeps a structured-output mode per endpoint."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Literal

import pytest
from batch_server import FakeBatchAPI
from fake_openai import FakeOpenAI
from fake_quirks import REFUSAL, Quirks
from pydantic import BaseModel
from recllmsim_hf.generation.annotate.prompts import QualityAnnotation
from recllmsim_hf.generation.llm import LLMRequest, LLMRunner, ResponseCache, endpoints_from_options
from recllmsim_hf.generation.llm.executors import ExecutorSpec, make_executor
from recllmsim_hf.generation.llm.executors.roundfiles import batch_line
from recllmsim_hf.generation.llm.options import runner_from_options

from recllmsim_hf.errors import ServiceError

KEY = "sk-batch-rules-0123"


class Intent(BaseModel):
    intent: Literal["Search", "Recommendation", "Planning"]


def ask(i: int = 0, **kw) -> LLMRequest:
    messages = [{"role": "system", "content": "You judge."}, {"role": "user", "content": f"q {i}"}]
    return LLMRequest(role="annotator", messages=messages, prompt_version="rules-1", **kw)


def runner(srv, model: str, tmp_path: Path, **kw) -> LLMRunner:
    kw = {"backoff_base": 0.001, "backoff_max": 0.01, "timeout": 5.0, "warn": lambda line: None} | kw
    cache = ResponseCache(tmp_path / f"cache-{srv.port}.sqlite")
    return LLMRunner(endpoints_from_options(srv.base_url, KEY, model, environ={}), cache=cache, **kw)


def online(r: LLMRunner, requests: list[LLMRequest]) -> list:
    async def main():
        try:
            return await asyncio.gather(*(r.complete(q) for q in requests))
        finally:
            await r.close()

    return asyncio.run(main())


def batched(r: LLMRunner, folder: Path, requests: list[LLMRequest]) -> list:
    spec = ExecutorSpec.parse("openai-batch", poll_interval=0.001, poll_max=0.01)

    async def main():
        try:
            return await make_executor(spec, r, folder, "t").complete_all(requests)
        finally:
            await r.close()

    return asyncio.run(main())


def inputs(folder: Path) -> list[list[str]]:
    rounds = sorted((folder / ".batch" / "t").glob("round-*"))
    return [(r / "input.jsonl").read_text(encoding="utf-8").splitlines(keepends=True) for r in rounds]


def test_a_batch_line_body_is_byte_for_byte_the_online_body_for_a_reasoning_model(tmp_path):
    request = ask(temperature=0, max_tokens=40, seed=7, response_model=QualityAnnotation)
    params = {"annotator": {"top_k": 40}}
    with FakeOpenAI(quirks="openai-reasoning") as srv:
        (on,) = online(runner(srv, "gpt-5-mini", tmp_path, params=params), [request])
        sent_online = srv.requests[0]["raw"]
    with FakeBatchAPI(quirks="openai-reasoning") as srv:
        r = runner(srv, "gpt-5-mini", tmp_path, params=params)
        key = r.cache_key(request)
        (off,) = batched(r, tmp_path, [request])
        assert srv.count == 0 and srv.batch_lines == 1
    assert on.ok and off.ok, (on.error, off.error)
    (round0,) = inputs(tmp_path)
    assert round0 == [batch_line(key, sent_online)]  # the online body, embedded as it was sent
    body = json.loads(round0[0])["body"]
    assert "temperature" not in body and "max_tokens" not in body and body["max_completion_tokens"] == 4096
    assert body["messages"][0]["role"] == "developer" and body["top_k"] == 40
    assert body["response_format"]["type"] == "json_schema"
    assert list(body["response_format"]["json_schema"]["schema"]["properties"])[0] == "notes"
    assert off.parsed == on.parsed and off.structured_mode == on.structured_mode == "json_schema"
    assert off.usage == on.usage and off.cost_usd == on.cost_usd / 2  # gpt-5-mini's batch price


def test_a_refusal_in_a_batch_output_line_is_recorded_not_retried(tmp_path):
    with FakeBatchAPI(quirks="refusal") as srv:
        r = runner(srv, "gpt-4o-mini", tmp_path)
        (result,) = batched(r, tmp_path, [ask(temperature=0, response_model=Intent)])
        assert srv.batch_lines == 1 and len(srv.batches) == 1
    assert not result.ok and result.error_kind == "refusal" and result.refusal == REFUSAL
    assert result.error == f"annotator call: refused: {REFUSAL}"
    assert result.attempts == 1 and r.stats.retries == 0 and r.stats.errors == 1
    assert len(inputs(tmp_path)) == 1
    assert result.cost_usd == 0.0 and r.stats.cost_usd > 0  # the refusal's tokens were billed


def test_a_batch_reply_cut_at_the_cap_goes_into_one_more_round_with_the_cap_doubled(tmp_path):
    with FakeBatchAPI(quirks=Quirks(truncate_json=True)) as srv:
        r = runner(srv, "gpt-4o-mini", tmp_path)
        (result,) = batched(r, tmp_path, [ask(temperature=0, max_tokens=50, response_model=Intent)])
        assert srv.batch_lines == 2
    caps = [json.loads(lines[0])["body"]["max_tokens"] for lines in inputs(tmp_path)]
    assert caps == [50, 100]
    assert result.error_kind == "length" and "cut at max_tokens=100" in result.error


def test_batch_lines_without_usage_are_estimated_and_cached_tokens_priced_at_the_batch_rate(tmp_path):
    with FakeBatchAPI(quirks=Quirks(usage=False)) as srv:
        r = runner(srv, "gpt-4o-mini", tmp_path)
        (result,) = batched(r, tmp_path, [ask(temperature=0, response_model=Intent)])
    assert result.ok and result.usage_estimated and result.usage.prompt_tokens > 0 and result.cost_usd > 0
    with FakeBatchAPI(quirks=Quirks(cached_share=0.5)) as srv:
        r = runner(srv, "gpt-4o-mini", tmp_path / "b")
        (result,) = batched(r, tmp_path / "b", [ask(temperature=0, response_model=Intent)])
    prompt, completion = result.usage.prompt_tokens, result.usage.completion_tokens
    cached = int(prompt * 0.5)
    # batch rates of gpt-4o-mini: 0.075 input, 0.0375 cached input, 0.30 output (USD per 1M)
    expected = ((prompt - cached) * 0.075 + cached * 0.0375 + completion * 0.30) / 1_000_000
    assert abs(result.cost_usd - expected) < 1e-12


def test_each_endpoint_of_a_pool_keeps_its_own_structured_output_mode(tmp_path):
    warnings = []
    with FakeOpenAI() as full, FakeOpenAI(quirks=Quirks(structured="json_object")) as plain:
        r = runner_from_options(
            tmp_path, base_url=[full.base_url, plain.base_url], api_key=KEY, model="gpt-4o-mini",
            concurrency=4, endpoint_concurrency=1, warn=warnings.append, backoff_base=0.001,
        )  # fmt: skip
        results = online(r, [ask(i, temperature=0, response_model=Intent) for i in range(12)])
    assert all(x.ok for x in results), [x.error for x in results if not x.ok]
    kinds = {name: [q["body"].get("response_format", {}).get("type") for q in srv.requests]
             for name, srv in (("full", full), ("plain", plain))}  # fmt: skip
    assert kinds["full"] and set(kinds["full"]) == {"json_schema"}  # never fell back
    assert kinds["plain"][0] == "json_schema" and set(kinds["plain"][1:]) == {"json_object"}
    assert len(warnings) == 1 and plain.base_url in warnings[0] and full.base_url not in warnings[0]


@pytest.mark.parametrize("status", ["404", "422"])
def test_rejected_batch_lines_are_not_retried(tmp_path, status):
    with FakeBatchAPI(line_outcome=lambda cid, body, nth: status) as srv:
        r = runner(srv, "gpt-4o-mini", tmp_path)
        results = batched(r, tmp_path, [ask(i, temperature=0, response_model=Intent) for i in range(2)])
        assert srv.batch_lines == 2 and len(srv.batches) == 1
    expected = f"(not retried): HTTP {status}: injected"
    assert all(x.error_kind == "rejected" and expected in x.error for x in results)


@pytest.mark.parametrize("status", ["401", "403"])
def test_a_refused_key_in_a_batch_line_stops_the_run(tmp_path, status):
    with FakeBatchAPI(line_outcome=lambda cid, body, nth: status) as srv:
        r = runner(srv, "gpt-4o-mini", tmp_path)
        with pytest.raises(ServiceError, match=f"refused the request \\(HTTP {status}: injected {status}"):
            batched(r, tmp_path, [ask(i, temperature=0, response_model=Intent) for i in range(3)])
        assert srv.batch_lines == 3 and len(inputs(tmp_path)) == 1
