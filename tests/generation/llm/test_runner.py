"""LLMRunner against the real local fake OpenAI server (tests/fake_openai.py): retries,
timeouts, structured outputs, budget, cache replay, concurrency, keys."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fake_openai import END_PHRASE, END_PROMPT, FakeOpenAI  # noqa: E402
from recllmsim_hf.generation.llm import (  # noqa: E402
    BudgetExceeded,
    Endpoint,
    LLMRequest,
    LLMRunner,
    PriceTable,
    ResponseCache,
    cache_key,
    endpoints_from_options,
    strict_schema,
)
from recllmsim_hf.generation.llm.options import runner_from_options  # noqa: E402

from recllmsim_hf.errors import InputError, ServiceError  # noqa: E402

KEY = "sk-test-0123456789abcdef"


class Intent(BaseModel):
    intent: Literal["Search", "Recommendation", "Planning"]
    confidence: int


def ask(i: int = 0, role: str = "assistant", **kw) -> LLMRequest:
    return LLMRequest(role=role, messages=[{"role": "user", "content": f"question {i}"}], **kw)


def runner(srv: FakeOpenAI, **kw) -> LLMRunner:
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("backoff_max", 0.01)
    kw.setdefault("timeout", 2.0)
    return LLMRunner(endpoints_from_options(srv.base_url, KEY, "gpt-4o-mini", environ={}), **kw)


def run(coro_fn, *args):
    """Run ``coro_fn(runner...)`` and always close what it opened."""
    return asyncio.run(coro_fn(*args))


async def one(r: LLMRunner, request: LLMRequest):
    try:
        return await r.complete(request)
    finally:
        await r.close()


async def many(r: LLMRunner, requests: list[LLMRequest]):
    try:
        return await asyncio.gather(*(r.complete(q) for q in requests))
    finally:
        await r.close()


# -- retries ------------------------------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds():
    with FakeOpenAI(script=["429", "ok"], retry_after=0.25) as srv:
        r = runner(srv, backoff_base=0.0001)
        result = run(one, r, ask())
    assert result.ok and result.attempts == 2 and srv.count == 2
    assert 0.25 <= result.latency < 3.0  # honoured the server's 250 ms, not the 0.1 ms backoff
    assert r.stats.retries == 1 and r.stats.requests == 2


@pytest.mark.parametrize("fault", ["500", "503", "bad_json"])
def test_transient_faults_are_retried(fault):
    with FakeOpenAI(script=[fault, fault, "ok"]) as srv:
        r = runner(srv)
        result = run(one, r, ask())
    assert result.ok and result.attempts == 3 and srv.count == 3
    assert result.text.startswith("Here is suggestion 1") and result.usage.completion_tokens > 0
    assert srv.outcomes[fault] == 2


def test_hang_times_out_and_is_retried():
    with FakeOpenAI(script=["hang", "ok"], hang_seconds=10) as srv:
        r = runner(srv, timeout=0.3)
        result = run(one, r, ask())
    assert result.ok and result.attempts == 2 and srv.count == 2
    assert 0.3 <= result.latency < 5.0


def test_give_up_records_the_error_and_does_not_raise():
    with FakeOpenAI(rate_500=1.0) as srv:
        r = runner(srv, max_retries=2)
        result = run(one, r, ask(tag="conv-7"))
    assert not result.ok and result.attempts == 3 and srv.count == 3
    assert result.error.startswith("conv-7: assistant call failed after 3 attempt(s): HTTP 500")
    assert r.stats.errors == 1 and r.stats.retries == 2


def test_client_error_is_not_retried():
    with FakeOpenAI(script=["400"]) as srv:
        r = runner(srv)
        result = run(one, r, ask())
    assert result.error.endswith("HTTP 400: injected 400") and result.attempts == 1 and srv.count == 1


def test_refused_key_raises_one_line_service_error_without_the_key():
    with FakeOpenAI(script=["401"]) as srv:
        r = runner(srv)
        with pytest.raises(ServiceError, match=r"refused the request \(HTTP 401") as info:
            run(one, r, ask())
    assert KEY not in str(info.value) and "\n" not in str(info.value)


def test_check_fails_fast_on_an_unreachable_endpoint():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    eps = endpoints_from_options(f"http://127.0.0.1:{port}/v1", KEY, "gpt-4o-mini", environ={})

    async def go():
        r = LLMRunner(eps, timeout=2)
        try:
            await r.check()
        finally:
            await r.close()

    with pytest.raises(ServiceError, match=rf"127.0.0.1:{port}/v1 \(annotator role\): cannot connect"):
        asyncio.run(go())


def test_check_passes_on_a_live_endpoint():
    with FakeOpenAI() as srv:

        async def go():
            r = runner(srv)
            await r.check()
            await r.close()

        asyncio.run(go())
    assert srv.count == 0  # GET /models only, no completion


# -- structured outputs --------------------------------------------------------------------------------


def test_structured_output_is_sent_as_strict_json_schema_and_parsed():
    with FakeOpenAI() as srv:
        r = runner(srv)
        result = run(one, r, ask(role="annotator", response_model=Intent))
    assert result.parsed == Intent(intent="Search", confidence=0)
    fmt = srv.requests[0]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Intent"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert fmt["json_schema"]["schema"]["required"] == ["intent", "confidence"]


def test_strict_schema_drops_defaults_but_keeps_a_field_named_default():
    class Choice(BaseModel):
        default: str = "none"
        note: str | None = None

    schema = strict_schema(Choice)
    assert list(schema["properties"]) == ["default", "note"] and schema["required"] == ["default", "note"]
    assert "default" not in schema["properties"]["default"] and "default" not in schema["properties"]["note"]


def test_invalid_structured_output_is_retried_once_then_recorded():
    replies = iter([{"intent": "Shopping", "confidence": 1}, {"intent": "Planning", "confidence": 2}])
    with FakeOpenAI(json_replier=lambda schema, messages, body: next(replies)) as srv:
        r = runner(srv)
        result = run(one, r, ask(role="annotator", response_model=Intent))
    assert result.parsed == Intent(intent="Planning", confidence=2) and result.attempts == 2

    # The same wrong answer comes back at temperature 0: one more attempt, not eight.
    with FakeOpenAI(
        json_replier=lambda schema, messages, body: {"intent": "Shopping", "confidence": 1}
    ) as srv:
        r = runner(srv, max_retries=8)
        result = run(one, r, ask(role="annotator", response_model=Intent))
    assert result.parsed is None and srv.count == 2 and result.error_kind == "invalid_output"
    assert "structured output does not fit Intent (intent: Input should be 'Search'" in result.error
    assert 'reply began \'{"intent": "Shopping"' in result.error
    assert r.stats.completion_tokens > 0  # the invalid replies were billed and are counted


# -- budget and cost ----------------------------------------------------------------------------------


def test_cost_comes_from_the_price_table():
    with FakeOpenAI() as srv:
        r = runner(srv)
        result = run(one, r, ask())
    usage = result.usage
    assert result.cost_usd == pytest.approx(
        (usage.prompt_tokens * 0.15 + usage.completion_tokens * 0.60) / 1e6
    )
    assert r.stats.cost_usd == pytest.approx(result.cost_usd) and result.cost_known


def test_unknown_model_has_unknown_cost_and_refuses_a_budget():
    with FakeOpenAI() as srv:
        eps = endpoints_from_options(srv.base_url, KEY, "my-local-llama", environ={})
        r = LLMRunner(eps)
        result = run(one, r, ask())
        assert result.ok and result.cost_usd == 0 and not result.cost_known and r.stats.unpriced_calls == 1
        with pytest.raises(InputError, match="no price for model 'my-local-llama'.*--prices FILE"):
            LLMRunner(eps, budget_usd=1.0)


def test_a_reply_without_usage_is_charged_by_the_local_estimate_and_warned_once():
    class NoUsage:  # a Transport (the runner's one injection point) whose server omits `usage`
        async def complete(self, endpoint, body):
            return {"choices": [{"message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}]}

        async def close(self):
            pass

    eps = endpoints_from_options("http://unused/v1", KEY, "gpt-4o-mini", environ={})
    warnings = []
    r = LLMRunner(eps, transport=NoUsage(), warn=warnings.append)
    result = run(many, r, [ask(1), ask(2)])[0]
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": ask(1).messages}, ensure_ascii=False, separators=(",", ":")
    ).encode()
    assert result.text == "Hi" and result.usage_estimated and result.cost_known
    assert result.usage.prompt_tokens == -(-len(body) // 3) and result.usage.completion_tokens == 1
    assert result.cost_usd == pytest.approx((result.usage.prompt_tokens * 0.15 + 0.6) / 1e6)
    assert len(warnings) == 1 and "sent no token usage for gpt-4o-mini" in warnings[0]


def test_budget_stops_before_it_would_be_exceeded():
    budget = 0.0002
    with FakeOpenAI() as srv:
        r = runner(srv, budget_usd=budget)

        async def go():
            done = 0
            try:
                for i in range(100):
                    await r.complete(ask(i, max_tokens=50))
                    done += 1
            except BudgetExceeded as e:
                return done, str(e)
            finally:
                await r.close()
            return done, None

        done, message = asyncio.run(go())
    assert message and message.startswith("--budget-usd 0.0002: spent")
    assert 0 < done < 100 and srv.count == done
    assert r.stats.cost_usd <= budget
    worst_next = (len(srv.requests[-1]["body"]["messages"][0]["content"]) + 60) / 3 * 0.15e-6 + 50 * 0.6e-6
    assert r.stats.cost_usd + worst_next > budget * 0.9  # it did not stop far too early


def test_budget_holds_under_concurrency_and_stops_everything_after():
    budget = 0.0003
    with FakeOpenAI(latency=0.02) as srv:
        r = runner(srv, budget_usd=budget, concurrency=16)

        async def go():
            results = await asyncio.gather(*(r.complete(ask(i, max_tokens=40)) for i in range(200)),
                                           return_exceptions=True)  # fmt: skip
            with pytest.raises(BudgetExceeded):
                await r.complete(ask(999, max_tokens=1))
            await r.close()
            return results

        results = asyncio.run(go())
    stopped = [x for x in results if isinstance(x, BudgetExceeded)]
    finished = [x for x in results if not isinstance(x, BaseException)]
    assert stopped and finished and len(stopped) + len(finished) == 200
    assert srv.count == len(finished) and r.stats.cost_usd <= budget


# -- cache --------------------------------------------------------------------------------------------


def test_rerun_replays_from_the_cache_with_zero_requests(tmp_path):
    requests = [ask(i, seed=3, temperature=0.7) for i in range(12)] + [
        ask(0, role="annotator", response_model=Intent)
    ]
    with FakeOpenAI() as srv:
        first = run(many, runner(srv, cache=ResponseCache.for_corpus(tmp_path)), requests)
        assert srv.count == 13
        r2 = runner(srv, cache=ResponseCache.for_corpus(tmp_path))
        second = run(many, r2, requests)
        assert srv.count == 13  # nothing sent
        r3 = runner(srv, cache=None)  # --no-cache
        third = run(many, r3, requests)
        assert srv.count == 26
    assert [x.text for x in second] == [x.text for x in first] == [x.text for x in third]
    assert all(x.cached and x.cost_usd == 0 for x in second) and second[-1].parsed == first[-1].parsed
    assert r2.stats.cache_hits == 13 and r2.stats.requests == 0 and r2.stats.cost_usd == 0
    assert not any(x.cached for x in third)


def test_identical_requests_in_flight_are_sent_once(tmp_path):
    with FakeOpenAI(latency=0.05) as srv:
        results = run(many, runner(srv, cache=ResponseCache.for_corpus(tmp_path)), [ask(1)] * 5)
    assert srv.count == 1 and len({x.text for x in results}) == 1
    assert sum(x.cached for x in results) == 4


def test_failed_calls_are_not_cached(tmp_path):
    with FakeOpenAI(script=["500", "500"]) as srv:
        failed = run(one, runner(srv, max_retries=1, cache=ResponseCache.for_corpus(tmp_path)), ask())
        again = run(one, runner(srv, cache=ResponseCache.for_corpus(tmp_path)), ask())
    assert failed.error and again.ok and not again.cached and srv.count == 3


def test_api_key_never_reaches_the_cache_or_results(tmp_path):
    with FakeOpenAI(rate_429=0.3, seed=2) as srv:
        r = runner_from_options(
            tmp_path, base_url=srv.base_url, api_key=KEY, backoff_base=0.001, backoff_max=0.01
        )
        results = run(many, r, [ask(i, response_model=Intent if i % 2 else None) for i in range(20)])
        assert srv.count_key(KEY) == srv.count > 20
    files = list((tmp_path / ".cache").iterdir())
    assert files and all(KEY.encode() not in f.read_bytes() for f in files)
    assert all(KEY not in x.model_dump_json() for x in results)
    assert KEY not in repr(r.endpoints) and KEY not in str(r.endpoints["assistant"].model_dump())


def test_cache_key_names_the_endpoint_and_the_model_but_not_the_key():
    request = ask(1, seed=1)
    a = Endpoint(base_url="http://a/v1", api_key="k1", model="gpt-4o")
    b = Endpoint(base_url="http://b/v1", api_key="k1", model="gpt-4o")
    c = Endpoint(base_url="http://a/v1", api_key="k1", model="gpt-4o-mini")
    a2 = Endpoint(base_url="http://a/v1/", api_key="k2", model="gpt-4o")
    assert cache_key(request, a) == cache_key(request, a2)
    assert cache_key(request, a) != cache_key(request, b) and cache_key(request, a) != cache_key(request, c)
    assert cache_key(request, a) != cache_key(ask(1, seed=2), a)
    assert cache_key(request, a) != cache_key(ask(1, seed=1, prompt_version="v2"), a)
    assert cache_key(request, a) != cache_key(ask(1, seed=1, response_model=Intent), a)


# -- concurrency and keys --------------------------------------------------------------------------------


def test_concurrency_limit_is_respected():
    with FakeOpenAI(latency=0.05) as srv:
        results = run(many, runner(srv, concurrency=5), [ask(i) for i in range(40)])
    assert all(x.ok for x in results) and srv.max_in_flight == 5


def test_each_role_sends_its_own_key():
    with FakeOpenAI() as srv:
        env = {"OPENAI_API_KEY": "sk-main", "RECLLMSIM_ASSISTANT_API_KEY": "sk-assistant"}
        eps = endpoints_from_options(srv.base_url, None, "gpt-4o", assistant_model="gpt-4o-mini", environ=env)

        async def go():
            r = LLMRunner(eps)
            await r.complete(ask(1, role="simulator"))
            await r.complete(ask(2, role="assistant"))
            await r.complete(ask(3, role="assistant"))
            await r.close()

        asyncio.run(go())
    assert srv.count_key("sk-main") == 1 and srv.count_key("sk-assistant") == 2
    assert [q["body"]["model"] for q in srv.requests] == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    assert all(q["headers"]["authorization"] == "Bearer <redacted>" for q in srv.requests)


def test_faulty_server_every_call_completes(tmp_path):
    """Acceptance mix: 20 % 429/500/503, 2 % hangs, 2 % non-JSON bodies."""
    with FakeOpenAI(rate_429=0.08, rate_500=0.06, rate_503=0.06, rate_hang=0.02, rate_bad_json=0.02,
                    hang_seconds=10, seed=11) as srv:  # fmt: skip
        r = runner(srv, concurrency=32, timeout=0.4, max_retries=10, cache=ResponseCache.for_corpus(tmp_path))
        results = run(many, r, [ask(i) for i in range(150)])
    assert all(x.ok for x in results) and r.stats.errors == 0
    assert len({x.text for x in results}) == 150
    assert srv.outcomes["hang"] > 0 and srv.outcomes["bad_json"] > 0 and srv.outcomes["429"] > 0
    # A timed-out attempt may never have reached the server (a busy machine): at most, not exactly.
    assert r.stats.requests == 150 + r.stats.retries and 150 < srv.count <= r.stats.requests


def test_simulator_script_says_goodbye_after_n_end_prompts():
    with FakeOpenAI(end_after=2) as srv:

        async def go():
            r = runner(srv)
            history = [{"role": "user", "content": "setup"}]
            replies = []
            for _ in range(5):
                result = await r.complete(LLMRequest(role="simulator", messages=list(history)))
                replies.append(result.text)
                if result.text == END_PHRASE:
                    break
                history += [{"role": "assistant", "content": result.text}]
                history += [{"role": "user", "content": "An answer.\n" + END_PROMPT}]
            await r.close()
            return replies

        replies = asyncio.run(go())
    assert len(replies) == 3 and replies[-1] == END_PHRASE


# -- endpoints ----------------------------------------------------------------------------------------


def test_endpoints_resolve_flags_then_environment():
    env = {"OPENAI_BASE_URL": "http://env:1/v1", "OPENAI_API_KEY": "sk-env"}
    eps = endpoints_from_options(None, None, "gpt-4o", simulator_model="gpt-4o-mini", environ=env)
    assert eps["simulator"].model == "gpt-4o-mini" and eps["assistant"].model == "gpt-4o"
    assert eps["profile"].base_url == "http://env:1/v1" and eps["profile"].api_key == "sk-env"
    eps = endpoints_from_options("http://flag:2/v1", "sk-flag", "m", environ=env)
    assert eps["annotator"].base_url == "http://flag:2/v1" and eps["annotator"].api_key == "sk-flag"
    assert (
        endpoints_from_options("http://local:8000/v1", None, "m", environ={})["assistant"].api_key
        == "not-needed"
    )
    assert "sk-flag" not in repr(eps) and "api_key" not in eps["profile"].model_dump()


def test_endpoints_need_a_model():
    with pytest.raises(InputError, match="no model for the profile role: pass --model"):
        endpoints_from_options("http://x/v1", "k", None, environ={})


def test_endpoints_need_a_key_for_the_openai_api():
    with pytest.raises(
        InputError, match="no API key for the OpenAI API: pass --api-key or set OPENAI_API_KEY"
    ):
        endpoints_from_options(None, None, "gpt-4o", environ={})


def test_endpoints_reject_a_base_url_without_scheme():
    with pytest.raises(
        InputError, match=r"--base-url: must start with http:// or https://, but got 'localhost:8000'"
    ):
        endpoints_from_options("localhost:8000", "k", "m", environ={})


def test_runner_rejects_bad_limits():
    eps = endpoints_from_options("http://x/v1", "k", "gpt-4o", environ={})
    with pytest.raises(InputError, match="--concurrency: must be positive, but got 0"):
        LLMRunner(eps, concurrency=0)
    with pytest.raises(InputError, match="--max-retries: must be 0 or more, but got -1"):
        LLMRunner(eps, max_retries=-1)
    with pytest.raises(InputError, match="--budget-usd: must be positive, but got 0"):
        LLMRunner(eps, budget_usd=0)


def test_unknown_role_is_an_input_error():
    eps = endpoints_from_options("http://x/v1", "k", "gpt-4o", environ={})
    with pytest.raises(InputError, match="no endpoint for role 'critic'"):
        asyncio.run(LLMRunner(eps, prices=PriceTable.load()).complete(ask(role="critic")))


def test_a_full_replay_never_loads_the_openai_client(tmp_path):
    with FakeOpenAI() as srv:
        run(many, runner(srv, cache=ResponseCache.for_corpus(tmp_path)), [ask(i) for i in range(3)])
    code = f"""
import asyncio, sys
from recllmsim_hf.generation.llm import LLMRequest
from recllmsim_hf.generation.llm.options import runner_from_options
async def main():
    r = runner_from_options({str(tmp_path)!r}, base_url={srv.base_url!r}, api_key="k")
    msgs = [[{{"role": "user", "content": f"question {{i}}"}}] for i in range(3)]
    reqs = [LLMRequest(role="assistant", messages=m) for m in msgs]
    out = [await r.complete(q) for q in reqs]
    await r.close()
    print(all(x.cached for x in out), "openai" in sys.modules)
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]
