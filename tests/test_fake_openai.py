"""The fake OpenAI server itself: deterministic faults, replies, limits, process mode."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai import END_PHRASE, END_PROMPT, FakeOpenAI, default_reply, example_for


def post(conn: http.client.HTTPConnection, body: dict, key: str = "sk-a") -> tuple[int, dict, bytes]:
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def body(i: int, **kw) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}], **kw}


def test_faults_are_deterministic_per_seed_and_body():
    runs = []
    for seed in (5, 5, 6):
        with FakeOpenAI(rate_429=0.3, rate_500=0.2, seed=seed) as srv:
            conn = http.client.HTTPConnection("127.0.0.1", srv.port)  # one keep-alive connection
            runs.append([post(conn, body(i % 10))[0] for i in range(40)])
            conn.close()
    assert runs[0] == runs[1] != runs[2]
    assert {429, 500, 200} == set(runs[0])


def test_429_carries_retry_after_in_seconds_and_ms():
    with FakeOpenAI(script=["429"], retry_after=0.05) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port)
        status, headers, _ = post(conn, body(1))
    assert status == 429 and headers["retry-after"] == "0.05" and headers["retry-after-ms"] == "50"


def test_bad_json_is_a_cut_200_body():
    with FakeOpenAI(script=["bad_json"]) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port)
        status, _, raw = post(conn, body(1))
    assert status == 200 and raw.startswith(b'{"id": "chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


def test_max_tokens_cuts_the_reply_and_usage_counts():
    with FakeOpenAI() as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port)
        _, _, raw = post(conn, body(1, max_tokens=3))
    reply = json.loads(raw)
    assert (
        reply["choices"][0]["finish_reason"] == "length"
        and len(reply["choices"][0]["message"]["content"]) == 12
    )
    assert reply["usage"]["completion_tokens"] == 3 and reply["usage"]["total_tokens"] == 4


def test_keys_are_counted_but_never_recorded():
    with FakeOpenAI() as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port)
        post(conn, body(1), key="sk-one")
        post(conn, body(2), key="sk-two")
        post(conn, body(3), key="sk-two")
    assert (srv.count_key("sk-one"), srv.count_key("sk-two"), srv.count_key("sk-three")) == (1, 2, 0)
    assert "sk-two" not in json.dumps(srv.requests)


def test_default_simulator_says_goodbye_after_end_after_prompts():
    messages = [{"role": "user", "content": "setup"}]
    assert not default_reply(messages, {}, end_after=2).startswith("Thank")
    messages += [{"role": "user", "content": "answer 1\n" + END_PROMPT}]
    assert default_reply(messages, {}, end_after=2).startswith("I would like more details on option 1")
    messages += [{"role": "user", "content": "answer 2\n" + END_PROMPT}]
    assert default_reply(messages, {}, end_after=2) == END_PHRASE


def test_example_for_follows_refs_enums_and_limits():
    schema = {
        "type": "object",
        "properties": {
            "label": {"$ref": "#/$defs/Label"},
            "items": {"type": "array", "items": {"type": "integer", "minimum": 2}, "minItems": 2},
            "note": {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 6}]},
            "ok": {"type": "boolean"},
        },
        "$defs": {"Label": {"enum": ["Search", "Planning"]}},
    }
    assert example_for(schema) == {"label": "Search", "items": [2, 2], "note": "xxxxxx", "ok": True}


def test_separate_process_prints_its_url_and_serves():
    script = Path(__file__).with_name("fake_openai.py")
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--end-after", "1"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0]), timeout=5)
        _, _, raw = post(conn, {"model": "m", "messages": [{"role": "user", "content": END_PROMPT}]})
        assert json.loads(raw)["choices"][0]["message"]["content"] == END_PHRASE
        conn.request("GET", "/_stats")
        assert json.loads(conn.getresponse().read())["count"] == 1
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize("name", ["fake_openai.py", "batch_server.py"])
def test_the_servers_run_on_their_own_serve_the_readme_commands(name, tmp_path):
    """As a user runs them (`python tests/fake_openai.py`, `python tests/batch_server.py`): the
    profiles they write are distinct and have dislikes, so `generate profiles` succeeds, and the
    batch server runs `--executor openai-batch`."""
    recllmsim = str(Path(sys.executable).parent / "recllmsim")
    script = Path(__file__).with_name(name)
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        flags = ["--base-url", url, "--api-key", "sk-local", "-q"]
        if name == "batch_server.py":
            flags += ["--executor", "openai-batch", "--batch-poll", "0.01"]
        out = tmp_path / "corpus"
        for command in (["profiles", "-n", "6"], ["conversations", "-n", "3"]):
            made = subprocess.run(
                [recllmsim, "generate", *command, "--out", str(out), *flags, "--json"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert made.returncode == 0, made.stderr
            assert json.loads(made.stdout)["generated"] == int(command[2])
        assert len((out / "profiles.jsonl").read_text().splitlines()) == 6
        assert (out / ".batch").is_dir() == (name == "batch_server.py")
    finally:
        proc.terminate()
        proc.wait(5)
