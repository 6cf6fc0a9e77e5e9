"""The runner against the behaviours of real servers (tests/fake_quirks.py): model rules, structured-output
fallback, answers that cannot improve, rejections that stop the run, missing usage, cached tokens, the
body's field order, the endpoint in the cache key, keys and the User-Agent."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest
from fake_openai import FakeOpenAI
from fake_quirks import REFUSAL, Quirks
from pydantic import BaseModel
from recllmsim_hf.generation.annotate.prompts import QualityAnnotation
from recllmsim_hf.generation.llm import (
    LLMRequest,
    LLMRunner,
    PriceTable,
    ResponseCache,
    endpoints_from_options,
)
from recllmsim_hf.generation.llm.guard import RunStopped
from recllmsim_hf.generation.llm.params import parse_key_envs, parse_params
from recllmsim_hf.generation.llm.rules import ModelRules

from recllmsim_hf import __version__
from recllmsim_hf.errors import InputError

KEY = "sk-test-0123456789abcdef"


class Intent(BaseModel):
    intent: Literal["Search", "Recommendation", "Planning"]


def ask(i: int = 0, role: str = "annotator", **kw) -> LLMRequest:
    messages = [{"role": "system", "content": "You label intents."}, {"role": "user", "content": f"q {i}"}]
    return LLMRequest(role=role, messages=messages, **kw)


def runner(srv: FakeOpenAI, model: str = "gpt-4o-mini", **kw) -> LLMRunner:
    kw = {"backoff_base": 0.001, "backoff_max": 0.01, "timeout": 5.0, "warn": lambda line: None} | kw
    return LLMRunner(endpoints_from_options(srv.base_url, KEY, model, environ={}), **kw)


def complete(r: LLMRunner, requests: list[LLMRequest]) -> list:
    async def main():
        try:
            return await asyncio.gather(*(r.complete(q) for q in requests))
        finally:
            await r.close()

    return asyncio.run(main())


# -- model rules --


def test_reasoning_models_get_their_rules_and_complete():
    with FakeOpenAI(quirks="openai-reasoning") as srv:
        results = complete(
            runner(srv, "gpt-5-mini"),
            [ask(i, temperature=0, max_tokens=40, response_model=Intent) for i in range(4)],
        )
    assert all(r.ok and r.parsed.intent == "Search" for r in results), results[0].error
    body = srv.requests[0]["body"]
    assert "temperature" not in body and "max_tokens" not in body
    assert body["max_completion_tokens"] == 4096  # room for the hidden reasoning (256 tokens here)
    assert body["messages"][0]["role"] == "developer" and srv.count == 4
    assert results[0].usage.completion_tokens > 256  # reasoning tokens are billed as completion


def test_o1_mini_gets_its_system_prompt_as_a_user_message():
    with FakeOpenAI(quirks="openai-reasoning") as srv:
        (result,) = complete(runner(srv, "o1-mini"), [ask(temperature=0, response_model=Intent)])
    assert result.ok and srv.requests[0]["body"]["messages"][0] == {
        "role": "user",
        "content": "You label intents.",
    }


def test_without_the_rules_the_reasoning_model_rejects_and_the_run_stops_after_three(tmp_path):
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - match: gpt-5*\n    drop: []\n    max_tokens_field: max_tokens\n    system_role: system\n"
    )
    rules = ModelRules.load(tmp_path / "rules.yaml")
    with FakeOpenAI(quirks="openai-reasoning") as srv:
        r = runner(srv, "gpt-5-mini", rules=rules, concurrency=16)
        with pytest.raises(RunStopped) as info:
            complete(r, [ask(i, temperature=0, max_tokens=40) for i in range(20)])
    assert srv.count == 3  # the first requests go alone: 3 identical 400s, then nothing more is sent
    assert str(info.value).startswith(
        f"gpt-5-mini at {srv.base_url} rejected 3 identical requests (HTTP 400: "
    )
    assert "'max_tokens' is not supported with this model" in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_a_user_rule_is_laid_over_the_builtin_one(tmp_path):
    (tmp_path / "rules.yaml").write_text("rules:\n  - match: [gpt-5*]\n    reasoning_effort: low\n")
    rule = ModelRules.load(tmp_path / "rules.yaml").rule("gpt-5-nano")
    assert rule.reasoning_effort == "low" and rule.max_tokens_field == "max_completion_tokens"
    assert "temperature" in rule.drop and ModelRules.load().rule("gpt-4o").drop == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules:\n  - match: [x]\n    system_role: boss\n",
            r"rules\[0\]\.system_role: Input should be 'system'",
        ),
        ("rules:\n  - match: []\n", r"rules\[0\]\.match: give at least one model pattern"),
        ("rules:\n  - match: [x]\n    colour: red\n", r"rules\[0\]\.colour: Extra inputs are not permitted"),
        ("default: {}\n", r"unknown key 'default'; a rules file holds `rules:` only"),
        ("- a\n", r"a rules file must be a mapping"),
    ],
)
def test_bad_rules_files_are_one_line_errors(tmp_path, text, message):
    (tmp_path / "rules.yaml").write_text(text)
    with pytest.raises(InputError, match=message):
        ModelRules.load(tmp_path / "rules.yaml")


def test_params_reach_the_body_per_role():
    params = parse_params(
        [
            "top_k=40",
            "annotator:repetition_penalty=1.1",
            'chat_template_kwargs={"x": false}',
            "reasoning_effort=low",
        ],
        ("annotator", "assistant"),
    )
    with FakeOpenAI() as srv:
        complete(runner(srv, params=params), [ask()])
    body = srv.requests[0]["body"]
    assert (body["top_k"], body["repetition_penalty"], body["chat_template_kwargs"]) == (
        40,
        1.1,
        {"x": False},
    )
    assert body["reasoning_effort"] == "low" and "repetition_penalty" not in params["assistant"]
    for bad, message in (("top_k", "expected \\[ROLE:\\]KEY=VALUE"), ("model=x", "'model' cannot be set")):
        with pytest.raises(InputError, match=f"--param: {message}"):
            parse_params([bad], ("annotator",))
    with pytest.raises(InputError, match="--api-key-env: unknown role 'judge'"):
        parse_key_envs(["judge:KEY"], ("annotator",))


# -- structured outputs --


@pytest.mark.parametrize(
    ("preset", "mode"), [("vllm-no-json-schema", "json_object"), ("ollama-no-structured", "prompt")]
)
def test_without_json_schema_the_runner_falls_back_once_per_endpoint(preset, mode):
    warnings = []
    with FakeOpenAI(quirks=preset) as srv:
        results = complete(
            runner(srv, warn=warnings.append), [ask(i, response_model=Intent) for i in range(5)]
        )
    assert all(r.ok and r.parsed == Intent(intent="Search") and r.structured_mode == mode for r in results)
    refused = 1 if mode == "json_object" else 2
    assert srv.count == 5 + refused  # the fallback is found by the first call alone
    sent = srv.requests[-1]["body"]
    assert "JSON schema" in sent["messages"][0]["content"] and '"intent"' in sent["messages"][0]["content"]
    assert sent.get("response_format") == ({"type": "json_object"} if mode == "json_object" else None)
    assert len(warnings) == refused and f"using {mode} for the rest of the run" in warnings[-1]


def test_forced_modes_and_fenced_replies():
    with FakeOpenAI(quirks="fenced-json") as srv:
        results = complete(
            runner(srv, structured_output="json_object"), [ask(i, response_model=Intent) for i in range(3)]
        )
    assert all(r.ok and r.structured_mode == "json_object" for r in results) and srv.count == 3
    assert json.loads(srv.requests[0]["raw"])["response_format"] == {"type": "json_object"}
    with FakeOpenAI(quirks="vllm-no-json-schema") as srv:  # forced json_schema: no fallback, the run stops
        with pytest.raises(RunStopped, match="response_format json_schema not supported"):
            complete(
                runner(srv, structured_output="json_schema"),
                [ask(i, response_model=Intent) for i in range(9)],
            )
    assert srv.count == 3
    with pytest.raises(InputError, match="--structured-output: must be one of auto, json_schema"):
        runner(srv, structured_output="xml")


def test_the_body_keeps_declaration_order_and_the_key_stays_canonical():
    with FakeOpenAI() as srv:
        r = runner(srv)
        request = ask(response_model=QualityAnnotation)
        key = r.cache_key(request)
        complete(r, [request])
    raw = srv.requests[0]["raw"]
    assert list(json.loads(raw)) == ["model", "messages", "response_format"]
    schema = json.loads(raw)["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"])[0] == "notes"  # notes first, then the scores, as designed
    assert raw.index('"notes"') < raw.index('"preference_alignment"')
    assert len(key) == 64


def test_the_cache_key_names_the_endpoint(tmp_path):
    cache_file = tmp_path / "llm.sqlite"
    with FakeOpenAI() as first, FakeOpenAI() as second:
        complete(runner(first, cache=ResponseCache(cache_file)), [ask(1)])
        (again,) = complete(runner(first, cache=ResponseCache(cache_file)), [ask(1)])
        (other,) = complete(runner(second, cache=ResponseCache(cache_file)), [ask(1)])
    assert again.cached and first.count == 1
    assert not other.cached and second.count == 1  # the same model name on another server is asked anew


# -- answers that cannot improve --


def test_a_reply_cut_at_the_cap_is_asked_again_once_with_the_cap_doubled():
    with FakeOpenAI(quirks="truncated-json") as srv:
        (result,) = complete(runner(srv), [ask(max_tokens=40, response_model=Intent)])
    assert [q["body"]["max_tokens"] for q in srv.requests] == [40, 80]
    assert result.error_kind == "length" and "the reply was cut at max_tokens=80 (cut JSON)" in result.error
    with FakeOpenAI(quirks=Quirks(reasoning=True, reasoning_tokens=5000)) as srv:  # reasoning eats the cap
        (result,) = complete(runner(srv, "o4-mini"), [ask(max_tokens=40, response_model=Intent)])
    assert [q["body"]["max_completion_tokens"] for q in srv.requests] == [4096, 8192]
    assert result.ok and result.attempts == 2


def test_a_refusal_is_recorded_with_its_text_and_not_retried():
    with FakeOpenAI(quirks="refusal") as srv:
        (result,) = complete(runner(srv), [ask(response_model=Intent)])
    assert srv.count == 1 and result.error_kind == "refusal" and result.refusal == REFUSAL
    assert result.error.endswith(f"annotator call: refused: {REFUSAL}")


def test_unknown_model_stops_within_five_requests_whatever_the_concurrency():
    with FakeOpenAI(quirks="unknown-model") as srv:
        with pytest.raises(RunStopped) as info:
            complete(runner(srv, "gpt-4o-mini-typo", concurrency=32), [ask(i) for i in range(64)])
    assert srv.count <= 5 and srv.max_in_flight == 1
    assert "The model `gpt-4o-mini-typo` does not exist or you do not have access to it." in str(info.value)


def test_a_rejected_request_says_so_and_is_not_retried():
    with FakeOpenAI(script=["422"]) as srv:
        (result,) = complete(runner(srv, max_retries=8), [ask()])
    assert srv.count == 1 and result.error_kind == "rejected"
    assert (
        f"annotator call rejected by {srv.base_url} for gpt-4o-mini (not retried): HTTP 422" in result.error
    )


# -- money --


def test_without_usage_the_estimate_is_charged_and_the_budget_still_stops_the_run():
    warnings = []
    with FakeOpenAI(quirks="no-usage") as srv:
        r = runner(srv, budget_usd=0.0002, warn=warnings.append, concurrency=1)

        async def main():
            done = 0
            try:
                for i in range(1000):
                    await r.complete(ask(i, max_tokens=50))
                    done += 1
            finally:
                await r.close()
            return done

        from recllmsim_hf.generation.llm import BudgetExceeded

        with pytest.raises(BudgetExceeded):
            asyncio.run(main())
    assert 0 < srv.count < 1000 and 0 < r.stats.cost_usd <= 0.0002
    assert len(warnings) == 1 and "sent no token usage" in warnings[0]


def test_cached_prompt_tokens_are_priced_at_the_cached_rate():
    with FakeOpenAI(quirks=Quirks(cached_share=0.5)) as srv:
        r = runner(srv)
        (result,) = complete(
            r, [LLMRequest(role="annotator", messages=[{"role": "user", "content": "x" * 4000}])]
        )
    prompt, completion = result.usage.prompt_tokens, result.usage.completion_tokens
    assert prompt == 1000
    assert result.cost_usd == pytest.approx((500 * 0.15 + 500 * 0.075 + completion * 0.6) / 1e6)
    assert PriceTable.load().lookup("gpt-5-mini").cached_input == 0.025


def test_a_model_rule_reserves_room_for_reasoning_in_the_budget():
    with FakeOpenAI(quirks="openai-reasoning") as srv:
        r = runner(srv, "gpt-5", budget_usd=0.5)
        complete(r, [ask()])
        raw = srv.requests[0]["raw"].encode()
    assert (
        r.budget.worst_case(ask(), r.endpoints["annotator"], len(raw), 32768) > 0.32
    )  # 32,768 x 10 USD / 1M
    assert 0 < r.stats.cost_usd < 0.01
    with FakeOpenAI(quirks="openai-reasoning") as srv:  # the worst case of one call is above the budget
        from recllmsim_hf.generation.llm import BudgetExceeded

        with pytest.raises(BudgetExceeded, match="may cost up to 0.3"):
            complete(runner(srv, "gpt-5", budget_usd=0.05), [ask()])
    assert srv.count == 0


# -- keys and identity --


def test_the_key_goes_where_the_user_meant_and_the_user_agent_names_the_project(monkeypatch):
    warnings = []
    env = {"OPENAI_API_KEY": "sk-openai-only", "VLLM_KEY": "vllm-secret"}
    endpoints_from_options("http://10.0.0.5:8000/v1", None, "m", environ=env, warn=warnings.append)
    assert warnings == [
        "warning: sending the key from OPENAI_API_KEY to 10.0.0.5, which is not an OpenAI host; pass "
        "--api-key-env NAME (or --api-key) to choose the key for that server"
    ]
    assert "sk-openai-only" not in warnings[0]
    warnings.clear()
    endpoints_from_options(None, None, "m", environ=env, warn=warnings.append)
    endpoints_from_options("http://h/v1", "sk-given", "m", environ=env, warn=warnings.append)
    assert warnings == []  # OpenAI's own host, or a key given for this run
    eps = endpoints_from_options(
        "http://h/v1", None, "m", environ=env, api_key_env={"assistant": "VLLM_KEY"}, warn=warnings.append
    )
    assert eps["assistant"].api_key == "vllm-secret" and eps["simulator"].api_key == "sk-openai-only"
    with pytest.raises(InputError, match="--api-key-env NOPE: the variable NOPE is not set or empty"):
        endpoints_from_options("http://h/v1", None, "m", environ=env, api_key_env={"annotator": "NOPE"})
    with FakeOpenAI() as srv:
        complete(runner(srv), [ask()])
    assert srv.requests[0]["headers"]["user-agent"] == f"recllmsim/{__version__}"


def test_with_no_retries_an_answer_that_cannot_improve_still_says_what_was_wrong():
    with FakeOpenAI(quirks="truncated-json") as srv:
        (cut,) = complete(runner(srv, max_retries=0), [ask(max_tokens=40, response_model=Intent)])
    with FakeOpenAI(json_replier=lambda schema, messages, body: {"intent": "Shopping"}) as srv:
        (invalid,) = complete(runner(srv, max_retries=0), [ask(response_model=Intent)])
    assert cut.error_kind == "length" and "the reply was cut at max_tokens=40 (cut JSON)" in cut.error
    assert invalid.error_kind == "invalid_output"
    assert "failed after 1 attempt(s): structured output" in invalid.error
    assert srv.count == 1
