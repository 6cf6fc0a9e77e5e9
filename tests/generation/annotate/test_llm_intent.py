"""Zero-/few-shot LLM intent classification against the local fake OpenAI-compatible server."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from recllmsim_hf.generation.annotate.llm_intent import LLMSettings, evaluate_llm, pick_examples

from recllmsim_hf.analysis.baselines import load_intent
from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import INTENT_LABELS

RECLLMSIM = str(Path(sys.executable).parent / "recllmsim")
KEY = "sk-llm-intent-secret-4242"
UTTERANCE = re.compile(r"<utterance>\n(.*)\n</utterance>", re.S)


@pytest.fixture(scope="module")
def data(built_release):
    return load_intent(built_release)


def oracle(data, right_every: int = 2):
    """A json_replier that answers the gold label for every other test utterance, else 'Others'."""
    test = data.splits["test"]
    gold = {text: data.labels[label] for text, label in zip(test.text, test.label, strict=True)}
    order = {text: i for i, text in enumerate(test.text)}

    def reply(schema, messages, body):
        text = UTTERANCE.search(messages[-1]["content"]).group(1)
        return {"intent": gold[text] if order[text] % right_every == 0 else "Others"}

    return reply


def expected_accuracy(data, n, right_every=2):
    test = data.splits["test"]
    others = data.labels.index("Others")
    hits = sum(1 for i in range(n) if i % right_every == 0 or test.label[i] == others)
    return hits / n


def test_zero_shot_scores_the_replies(data):
    with FakeOpenAI(json_replier=oracle(data)) as srv:
        settings = LLMSettings(model="gpt-4o-mini", base_url=srv.base_url, api_key=KEY, limit=40)
        result = evaluate_llm("llm-zero-shot", data, settings, progress=False)
        bodies = [r["body"] for r in srv.requests]
    assert result["accuracy"] == pytest.approx(expected_accuracy(data, 40))
    assert result["test_size"] == 40 and result["failed"] == 0 and result["shots_per_class"] == 0
    assert len(bodies) == 40 and result["prompt_tokens"] > 0
    body = bodies[0]
    assert body["temperature"] == 0 and body["model"] == "gpt-4o-mini"
    schema = body["response_format"]["json_schema"]
    assert body["response_format"]["type"] == "json_schema" and schema["strict"] is True
    enum = json.dumps(schema["schema"])
    assert all(json.dumps(label) in enum for label in INTENT_LABELS)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_few_shot_shows_labelled_examples(data):
    with FakeOpenAI(json_replier=oracle(data, right_every=1)) as srv:
        settings = LLMSettings(base_url=srv.base_url, api_key=KEY, limit=10, shots=1)
        result = evaluate_llm("llm-few-shot", data, settings, seed=7, progress=False)
        messages = srv.requests[0]["body"]["messages"]
    assert result["accuracy"] == 1.0 and result["macro_f1"] > 0 and result["shots_per_class"] == 1
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 5 + ["user"]
    shown = sorted(json.loads(m["content"])["intent"] for m in messages if m["role"] == "assistant")
    assert shown == sorted(INTENT_LABELS)
    train = data.splits["train"]
    picked = pick_examples(train, data.labels, 1, 7)
    assert picked == pick_examples(train, data.labels, 1, 7) != pick_examples(train, data.labels, 1, 8)
    assert UTTERANCE.search(messages[1]["content"]).group(1) == train.text[picked[0]]


def test_failed_requests_are_recorded_and_count_as_wrong(data):
    with FakeOpenAI(json_replier=oracle(data, right_every=1), script=["503", "400", "503"]) as srv:
        settings = LLMSettings(base_url=srv.base_url, api_key=KEY, limit=12, concurrency=1, max_retries=0)
        result = evaluate_llm("llm-zero-shot", data, settings, progress=False)
    assert result["failed"] == 3
    assert "HTTP 503" in result["first_error"] and KEY not in result["first_error"]
    assert result["accuracy"] == pytest.approx(9 / 12)


def test_cache_replays_without_requests(data, tmp_path):
    with FakeOpenAI(json_replier=oracle(data)) as srv:
        settings = LLMSettings(base_url=srv.base_url, api_key=KEY, limit=8, cache=tmp_path / "llm.sqlite")
        first = evaluate_llm("llm-zero-shot", data, settings, progress=False)
        second = evaluate_llm("llm-zero-shot", data, settings, progress=False)
        assert srv.count == 8
    assert second["cache_hits"] == 8 and second["accuracy"] == first["accuracy"]
    assert KEY.encode() not in (tmp_path / "llm.sqlite").read_bytes()


def test_cli_llm_rows_never_print_the_key(built_release, data):
    with FakeOpenAI(json_replier=oracle(data)) as srv:
        out = subprocess.run(
            [RECLLMSIM, "baseline", "intent", str(built_release), "--models", "llm-zero-shot,llm-few-shot",
             "--limit", "6", "--shots", "1", "--base-url", srv.base_url, "--llm-model", "gpt-4o", "--json"],
            capture_output=True, text=True, env={**os.environ, "OPENAI_API_KEY": KEY},
        )  # fmt: skip
        assert srv.count_key(KEY) == 12
    assert out.returncode == 0, out.stderr
    assert KEY not in out.stdout + out.stderr
    results = json.loads(out.stdout)["results"]
    assert [(r["model"], r["llm_model"], r["test_size"]) for r in results] == [
        ("llm-zero-shot", "gpt-4o", 6),
        ("llm-few-shot", "gpt-4o", 6),
    ]
    assert results[0]["accuracy"] == pytest.approx(expected_accuracy(data, 6))


def test_unreachable_endpoint_is_one_line(built_release):
    out = subprocess.run(
        [RECLLMSIM, "baseline", "intent", str(built_release), "--models", "llm-zero-shot", "--limit", "2",
         "--base-url", "http://127.0.0.1:9/v1", "--timeout", "2", "-q"],
        capture_output=True, text=True, env={**os.environ, "OPENAI_API_KEY": KEY},
    )  # fmt: skip
    lines = [line for line in out.stderr.splitlines() if not line.startswith("warning: ")]
    assert out.returncode == 3 and len(lines) == 1 and lines[0].startswith("recllmsim: error: ")
    assert "http://127.0.0.1:9/v1" in out.stderr and "Traceback" not in out.stderr


def test_bad_limit(data):
    with pytest.raises(InputError, match=r"--limit: must be 1 or more, but got 0"):
        evaluate_llm("llm-zero-shot", data, LLMSettings(base_url="http://127.0.0.1:9/v1", limit=0))
