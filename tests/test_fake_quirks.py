"""The fake server's real-server behaviours: status codes and error bodies as the real servers send them."""

from __future__ import annotations

import http.client
import json

import pytest
from fake_openai import END_PROMPT_ZH, FakeOpenAI
from fake_quirks import REFUSAL, Quirks

SCHEMA = {"type": "object", "properties": {"intent": {"enum": ["Search", "Chitchat"]}}}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "A", "schema": SCHEMA, "strict": True}}


def ask(srv: FakeOpenAI, key: str = "sk-a", **body) -> tuple[int, dict]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}], **body}
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@pytest.mark.parametrize(
    ("body", "param", "code", "message"),
    [
        ({"temperature": 0}, "temperature", "unsupported_value",
         "Unsupported value: 'temperature' does not support 0 with this model. "
         "Only the default (1) value is supported."),
        ({"max_tokens": 40}, "max_tokens", "unsupported_parameter",
         "Unsupported parameter: 'max_tokens' is not supported with this model. "
         "Use 'max_completion_tokens' instead."),
        ({"top_p": 0.5}, "top_p", "unsupported_parameter",
         "Unsupported parameter: 'top_p' is not supported with this model."),
    ],
)  # fmt: skip
def test_reasoning_models_reject_what_openai_rejects(body, param, code, message):
    with FakeOpenAI(quirks="openai-reasoning") as srv:
        status, error = ask(srv, model="gpt-5-mini", **body)
        assert ask(srv, model="gpt-4o-mini", **body)[0] == 200  # other models are unaffected
        assert ask(srv, model="gpt-5-mini", temperature=1)[0] == 200
    assert status == 400
    expected = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    assert error == {"error": expected}


def test_o1_mini_rejects_the_system_and_developer_roles():
    with FakeOpenAI(quirks="openai-reasoning") as srv:
        for role in ("system", "developer"):
            messages = [{"role": role, "content": "Be brief."}, {"role": "user", "content": "Hi"}]
            status, error = ask(srv, model="o1-mini", messages=messages)
            assert status == 400 and error["error"]["param"] == "messages[0].role"
            assert error["error"]["message"] == (
                f"Unsupported value: 'messages[0].role' does not support '{role}' with this model."
            )
        assert ask(srv, model="o3-mini", messages=messages)[0] == 200


def test_reasoning_tokens_eat_the_cap():
    with FakeOpenAI(quirks=Quirks(reasoning=True, reasoning_tokens=100)) as srv:
        _, starved = ask(srv, model="o4-mini", max_completion_tokens=40)
        _, roomy = ask(srv, model="o4-mini", max_completion_tokens=1000)
    choice = starved["choices"][0]
    assert choice["message"]["content"] == "" and choice["finish_reason"] == "length"
    assert starved["usage"]["completion_tokens"] == 40
    assert starved["usage"]["completion_tokens_details"] == {"reasoning_tokens": 40}
    assert roomy["choices"][0]["finish_reason"] == "stop" and roomy["choices"][0]["message"]["content"]
    assert roomy["usage"]["completion_tokens_details"] == {"reasoning_tokens": 100}
    assert roomy["usage"]["completion_tokens"] > 100


@pytest.mark.parametrize(
    ("preset", "shape"),
    [
        ("vllm-no-json-schema", {"object": "error", "message": "response_format json_schema not supported",
                                 "type": "BadRequestError", "param": None, "code": 400}),
        ("ollama-no-structured", {"error": {"message": "response_format json_schema not supported",
                                            "type": "invalid_request_error", "param": None, "code": None}}),
    ],
)  # fmt: skip
def test_servers_without_json_schema_answer_400_in_their_own_shape(preset, shape):
    with FakeOpenAI(quirks=preset) as srv:
        status, error = ask(srv, response_format=JSON_SCHEMA)
        json_object = ask(srv, response_format={"type": "json_object"})[0]
    assert status == 400 and error == shape
    assert json_object == (200 if preset.startswith("vllm") else 400)


def test_unknown_model_and_bad_key():
    with FakeOpenAI(quirks="unknown-model") as srv:
        status, error = ask(srv, model="gpt-4o-mini-typo")
    assert status == 404 and error["error"]["code"] == "model_not_found"
    assert error["error"]["message"] == (
        "The model `gpt-4o-mini-typo` does not exist or you do not have access to it."
    )
    with FakeOpenAI(quirks="ollama-unknown-model") as srv:
        status, error = ask(srv, model="llama9")
    assert (status, error["error"]["type"]) == (404, "not_found_error")
    assert error["error"]["message"] == 'model "llama9" not found, try pulling it first'
    with FakeOpenAI(quirks="bad-key") as srv:
        status, error = ask(srv, key="sk-wrong-key-123456")
        assert ask(srv, key="sk-the-right-key")[0] == 200
    assert status == 401 and error["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-key-123456" not in error["error"]["message"] and "3456" in error["error"]["message"]


def test_usage_missing_or_partly_cached():
    with FakeOpenAI(quirks="no-usage") as srv:
        _, bare = ask(srv)
    with FakeOpenAI(quirks=Quirks(cached_share=0.5)) as srv:
        _, cached = ask(srv, messages=[{"role": "user", "content": "x" * 400}])
    assert "usage" not in bare and bare["choices"][0]["message"]["content"]
    assert cached["usage"]["prompt_tokens"] == 100
    assert cached["usage"]["prompt_tokens_details"] == {"cached_tokens": 50}


def test_truncated_refused_and_fenced_json():
    with FakeOpenAI(quirks="truncated-json") as srv:
        _, cut = ask(srv, response_format=JSON_SCHEMA)
    with FakeOpenAI(quirks="refusal") as srv:
        _, refused = ask(srv, response_format=JSON_SCHEMA)
        _, text = ask(srv)
    with FakeOpenAI(quirks="fenced-json") as srv:
        _, fenced = ask(srv, response_format={"type": "json_object"})
    assert cut["choices"][0]["finish_reason"] == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut["choices"][0]["message"]["content"])
    assert refused["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": REFUSAL}
    assert text["choices"][0]["message"]["refusal"] is None  # refusals come with structured outputs
    content = fenced["choices"][0]["message"]["content"]
    assert content.startswith("```json\n") and content.endswith("\n```")


def test_context_length_exceeded():
    with FakeOpenAI(quirks="small-context") as srv:
        status, error = ask(srv, messages=[{"role": "user", "content": "y" * 2000}], max_tokens=200)
        assert ask(srv, messages=[{"role": "user", "content": "y" * 400}], max_tokens=100)[0] == 200
    assert status == 400 and error["type"] == "BadRequestError"
    assert error["message"] == (
        "This model's maximum context length is 600 tokens. However, you requested 700 tokens "
        "(500 in the messages, 200 in the completion). "
        "Please reduce the length of the messages or completion."
    )


def test_goodbye_variant_and_chinese_end_prompt():
    messages = [{"role": "user", "content": "a\n" + END_PROMPT_ZH}]
    with FakeOpenAI(end_after=1, goodbye="谢谢，再见。") as srv:
        _, reply = ask(srv, messages=messages)
    assert reply["choices"][0]["message"]["content"] == "谢谢，再见。"
