"""Every LLM-calling command against the behaviours of real servers (tests/fake_quirks.py), through the
`recllmsim` entry point with its error boundary: generate profiles, generate conversations, generate filter
--llm-check, annotate (all five annotators), baseline intent (LLM rows)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click
import pytest
import typer
from batch_server import FakeBatchAPI
from fake_openai import FakeOpenAI
from fake_quirks import REFUSAL, Quirks
from recllmsim_hf.generation.llm.options import BATCH_SHARED, SHARED
from tiny_corpus import write_tiny_corpus

from recllmsim_hf.cli import app, main
from recllmsim_hf.corpus import read_jsonl
from recllmsim_hf.schema import Conversation

KEY = "sk-real-servers-test-7f3e"
ALL = "intent,hallucination,quality,summary,translation"
TASK = "recipe planning"


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `recllmsim ARGS` in this process: (exit code, stdout, stderr)."""

    def run(*args, env: dict | None = None) -> tuple[int, str, str]:
        for name in list(os.environ):
            if name.startswith(("OPENAI_", "RECLLMSIM_")) or name == "FAKE_KEY":
                monkeypatch.delenv(name)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "argv", ["recllmsim", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code or 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny_corpus(tmp_path / "tiny")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    from recllmsim_hf.dataset.build import build_dataset

    root = tmp_path_factory.mktemp("built")
    return Path(build_dataset(write_tiny_corpus(root / "tiny"), root / "out", progress=False)["out"])


def llm(srv: FakeOpenAI, model: str = "gpt-4o-mini", *more) -> list:
    return ["--base-url", srv.base_url, "--api-key", KEY, "--model", model, "--max-retries", "2", "-q", *more]


def profile_replier(schema, messages, body):
    seed = body.get("seed", 0)
    base = {
        k: [f"{k} {seed}-{i}", "dislikes noise"]
        for i, k in enumerate(
            (
                "personality",
                "daily_interests_and_hobbies",
                "travel_habits",
                "dining_preferences",
                "spending_habits",
                "other_aspects",
            )
        )
    }
    drafts = [
        {
            "gender": "Female",
            "age": str(20 + j),
            "occupation": f"job {seed}-{j}",
            **{k: [f"{v[0]} {j}", v[1]] for k, v in base.items()},
        }
        for j in range(5)
    ]
    return {"profiles": drafts}


COMMANDS = {
    "profiles": lambda d, t, b: [
        "generate",
        "profiles",
        "-n",
        "3",
        "--out",
        d / "p",
        "--batch-size",
        "3",
        "--chains",
        "1",
    ],
    "conversations": lambda d, t, b: [
        "generate",
        "conversations",
        "-n",
        "2",
        "--out",
        d / "c",
        "--profiles",
        t / "profiles.jsonl",
        "--tasks",
        TASK,
        "--max-turns",
        "3",
    ],
    "filter": lambda d, t, b: ["generate", "filter", "--corpus", t, "--llm-check"],
    "annotate": lambda d, t, b: ["annotate", "--corpus", t, "--what", ALL, "--overwrite"],
    "baseline": lambda d, t, b: ["baseline", "intent", b, "--models", "llm-zero-shot"],
}


def bodies(srv: FakeOpenAI) -> list[dict]:
    return [r["body"] for r in srv.requests]


# -- one flag set --


def test_every_llm_command_takes_the_same_llm_flags_with_the_same_defaults():
    from recllmsim_hf.cli import _register_subcommands

    _register_subcommands()
    root = typer.main.get_command(app)
    ctx = click.Context(root)
    paths = [
        ("generate", "profiles"),
        ("generate", "conversations"),
        ("generate", "filter"),
        ("annotate",),
        ("baseline", "intent"),
    ]
    seen, batch = {}, {}
    for path in paths:
        command = root
        for name in path:
            command = command.get_command(ctx, name)
        options = {opt: p for p in command.params for opt in p.opts}
        seen[path] = {flag: (options[flag].default, options[flag].multiple) for flag in SHARED}
        if path != ("baseline", "intent"):
            batch[path] = {flag: options[flag].default for flag in BATCH_SHARED}
    first = seen[paths[0]]
    assert all(flags == first for flags in seen.values()), seen
    assert first["--concurrency"] == (32, False) and first["--max-retries"] == (8, False)
    assert first["--model"] == ("gpt-4o-mini", False) and first["--param"][1] and first["--api-key-env"][1]
    assert first["--structured-output"] == ("auto", False)
    # issue 12's flags: many endpoints everywhere, batch rounds on all but baseline intent
    assert first["--base-url"][1] and first["--api-key"][1] and first["--endpoints"] == (None, False)
    assert len(batch) == 4 and all(flags == {"--executor": "online", "--batch-command": None,
                                             "--batch-poll": 5.0} for flags in batch.values())  # fmt: skip


# -- reasoning models --


@pytest.mark.parametrize("command", list(COMMANDS))
def test_reasoning_model_rules_let_every_command_complete(command, cli, tmp_path, tiny, built):
    extra = ["--max-tokens", "400"] if command == "conversations" else []
    with FakeOpenAI(
        quirks="openai-reasoning",
        json_replier=profile_replier if command == "profiles" else None,
        end_after=1,
    ) as srv:
        code, out, err = cli(*COMMANDS[command](tmp_path, tiny, built), *llm(srv, "gpt-5-mini"), *extra)
    assert code == 0, err
    assert srv.count > 0 and set(srv.outcomes) == {"ok"}  # not one 400
    for body in bodies(srv):
        assert "temperature" not in body and "max_tokens" not in body
        assert all(m["role"] != "system" for m in body["messages"])
    if command == "conversations":
        assert {b["max_completion_tokens"] for b in bodies(srv)} == {4096}  # 400 leaves no room to reason
        convs = list(read_jsonl(tmp_path / "c" / "conversations.jsonl", Conversation))
        assert len(convs) == 2 and all(c.end_reason == "goodbye" for c in convs)


# -- servers without json_schema --


@pytest.mark.parametrize("command", ["profiles", "filter", "annotate", "baseline"])
@pytest.mark.parametrize(
    ("quirks", "mode"),
    [
        ("vllm-no-json-schema", "json_object"),
        (Quirks(flavour="ollama", structured="none", fence_json=True), "prompt"),
    ],
)
def test_without_json_schema_structured_commands_complete_and_record_the_mode(
    command, quirks, mode, cli, tmp_path, tiny, built
):
    replier = profile_replier if command == "profiles" else None
    with FakeOpenAI(quirks=quirks, json_replier=replier) as srv:
        code, out, err = cli(*COMMANDS[command](tmp_path, tiny, built), *llm(srv), "--json")
    assert code == 0, err
    assert srv.outcomes["400"] == (1 if mode == "json_object" else 2)  # found out once, by the first call
    assert f"using {mode} for the rest of the run" in err
    summary = json.loads(out)
    if command == "profiles":
        manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
        assert manifest["generation"]["profiles"]["structured_output"] == mode
    elif command == "annotate":
        assert summary["structured_output"] == mode and summary["missing"] == dict.fromkeys(ALL.split(","), 0)
        conv = next(read_jsonl(tiny / "conversations.jsonl", Conversation))
        assert conv.extra["annotation"]["summary"]["structured_output"] == mode
    elif command == "filter":
        conv = next(read_jsonl(tiny / "conversations.jsonl", Conversation))
        assert conv.extra["filter"]["llm"]["structured_output"] == mode and summary["llm_errors"] == 0
    else:
        assert summary["results"][0]["structured_output"] == mode and summary["results"][0]["failed"] == 0


# -- unknown model, bad key --


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_unknown_model_stops_every_command_within_five_requests_with_one_line(
    command, cli, tmp_path, tiny, built
):
    before = (tiny / "conversations.jsonl").read_bytes()
    args = COMMANDS[command](tmp_path, tiny, built)
    if command == "conversations":
        args = [*args[:3], "12", *args[4:]]
    with FakeOpenAI(quirks="unknown-model") as srv:
        code, out, err = cli(*args, *llm(srv, "gpt-4o-mini-typo"))
    assert code == 3 and srv.count <= 5
    lines = [line for line in err.strip().splitlines() if not line.startswith("estimate: ")]
    assert len(lines) == 1 and "Traceback" not in err and lines[0].startswith("recllmsim: error: ")
    assert "The model `gpt-4o-mini-typo` does not exist or you do not have access to it." in lines[0]
    if command == "baseline":  # one test utterance: one rejected call, named with its endpoint
        assert f"rejected by {srv.base_url} for gpt-4o-mini-typo (not retried): HTTP 404" in lines[0]
    else:
        assert lines[0].startswith(
            f"recllmsim: error: gpt-4o-mini-typo at {srv.base_url} rejected 3 identical requests (HTTP 404: "
        )
    assert (tiny / "conversations.jsonl").read_bytes() == before  # what was there is kept as it was


def test_a_bad_key_stops_at_the_first_request_without_showing_it(cli, tiny):
    with FakeOpenAI(quirks="bad-key") as srv:
        code, out, err = cli("annotate", "--corpus", tiny, "--what", "summary", "--overwrite", *llm(srv))
    assert code == 3 and srv.count == 1 and KEY not in err
    assert "refused the request (HTTP 401: Incorrect API key provided: sk-*7f3e." in err


# -- answers that cannot improve --


@pytest.mark.parametrize("command", ["profiles", "filter", "annotate", "baseline"])
def test_truncated_json_is_asked_again_once_with_a_doubled_cap_then_fails_the_command(
    command, cli, tmp_path, tiny, built
):
    what = ["--what", "summary"] if command == "annotate" else []
    with FakeOpenAI(quirks="truncated-json") as srv:
        code, out, err = cli(*COMMANDS[command](tmp_path, tiny, built), *llm(srv), *what)
    assert code == 3, err
    if command in ("annotate", "baseline"):  # calls with a cap: asked twice, the second time with it doubled
        cap = 200 if command == "annotate" else 40
        caps = [b["max_tokens"] for b in bodies(srv)]
        assert (
            sorted(set(caps)) == [cap, 2 * cap] and caps.count(cap) == caps.count(2 * cap) == srv.count // 2
        )
        assert f"the reply was cut at max_tokens={2 * cap} (cut JSON)" in err
    else:  # no cap sent: the server's own limit cut the reply; recorded at once
        assert "the server's own limit (no cap sent)" in err
    assert "failed" in err.strip().splitlines()[-1]


@pytest.mark.parametrize("command", ["filter", "annotate", "baseline"])
def test_a_refusal_is_recorded_with_its_text_and_not_retried(command, cli, tmp_path, tiny, built):
    what = ["--what", "summary"] if command == "annotate" else []
    with FakeOpenAI(quirks="refusal") as srv:
        code, out, err = cli(*COMMANDS[command](tmp_path, tiny, built), *llm(srv), *what)
    assert code == 3 and f"refused: {REFUSAL}" in err
    calls = {"filter": 5, "annotate": 4, "baseline": 1}[command]
    assert srv.count == calls  # one request per call: a refusal is not asked again
    if command == "annotate":
        conv = next(read_jsonl(tiny / "conversations.jsonl", Conversation))
        assert REFUSAL in conv.extra["annotation"]["summary"]["errors"][0]["error"]


# -- money --


@pytest.mark.parametrize("command", ["profiles", "conversations"])
def test_without_usage_the_budget_still_stops_the_run(command, cli, tmp_path, tiny, built):
    replier = profile_replier if command == "profiles" else None
    args = COMMANDS[command](tmp_path, tiny, built)
    args = [*args[:3], "200" if command == "profiles" else "40", *args[4:]]
    with FakeOpenAI(quirks="no-usage", json_replier=replier, end_after=3) as srv:
        code, out, err = cli(*args, *llm(srv), "--budget-usd", "0.01", "--concurrency", "2")
    assert code == 4 and "--budget-usd 0.01: spent" in err, err
    needed = 67 if command == "profiles" else 40 * 7  # what the run would have sent without the budget
    assert 0 < srv.count < needed and err.count("sent no token usage") == 1


def test_cached_prompt_tokens_make_a_conversation_cheaper(cli, tmp_path, tiny):
    costs = []
    for share in (0.0, 0.5):
        with FakeOpenAI(quirks=Quirks(cached_share=share), end_after=2) as srv:
            out = tmp_path / f"c{share}"
            code, _, err = cli(
                "generate",
                "conversations",
                "-n",
                "1",
                "--out",
                out,
                "--profiles",
                tiny / "profiles.jsonl",
                "--tasks",
                TASK,
                *llm(srv),
            )
        assert code == 0, err
        (conv,) = read_jsonl(out / "conversations.jsonl", Conversation)
        costs.append((conv.generation.cost_usd, conv.generation.usage.prompt_tokens))
    (full, prompt), (half, same_prompt) = costs
    assert prompt == same_prompt and half < full
    assert full - half == pytest.approx(sum(int(p * 0.5) for p in [prompt]) * 0.075 / 1e6, rel=0.2)


# -- conversations: goodbye variants, cut turns, the context limit --


@pytest.mark.parametrize(
    ("goodbye", "language", "ends"),
    [
        ("Thanks, goodbye.", "en", True),
        ("Thank you so much, goodbye!", "en", True),
        ("Thank you, bye!", "en", True),
        ("谢谢，再见。", "zh", True),
        ("Thank you, goodbye. Actually, one more question...", "en", False),
        ("谢谢，再见。", "en", False),
    ],
)
def test_goodbye_variants_end_the_conversation(goodbye, language, ends, cli, tmp_path, tiny):
    with FakeOpenAI(goodbye=goodbye, end_after=2) as srv:
        code, _, err = cli(
            "generate",
            "conversations",
            "-n",
            "1",
            "--out",
            tmp_path / "c",
            "--profiles",
            tiny / "profiles.jsonl",
            "--tasks",
            TASK,
            "--max-turns",
            "4",
            "--language",
            language,
            *llm(srv),
        )
    assert code == 0, err
    (conv,) = read_jsonl(tmp_path / "c" / "conversations.jsonl", Conversation)
    if ends:
        assert conv.end_reason == "goodbye" and conv.generation.extra["closing_phrase"] == goodbye
        assert srv.count == 5 and conv.num_turns == 4  # 2 exchanges, then the goodbye: no request more
    else:
        assert conv.end_reason == "max_turns" and conv.generation.extra["closing_phrase"] is None
        assert srv.count == 9 and "not_ended" in conv.extra["filter"]["reasons"]
    end_prompt = "[System]：如果你想结束这次对话" if language == "zh" else "[System]: If you wish to conclude"
    assert end_prompt in json.dumps(bodies(srv)[-1], ensure_ascii=False)


def test_the_context_limit_keeps_the_paid_turns(cli, tmp_path, tiny):
    with FakeOpenAI(quirks=Quirks(flavour="vllm", context_tokens=900), end_after=9) as srv:
        code, _, err = cli(
            "generate",
            "conversations",
            "-n",
            "1",
            "--out",
            tmp_path / "c",
            "--profiles",
            tiny / "profiles.jsonl",
            "--tasks",
            TASK,
            "--max-turns",
            "10",
            *llm(srv),
        )
    assert code == 0, err
    (conv,) = read_jsonl(tmp_path / "c" / "conversations.jsonl", Conversation)
    assert conv.end_reason == "context_limit" and conv.num_turns >= 2
    assert "maximum context length is 900 tokens" in conv.generation.extra["context_error"]
    assert conv.generation.extra["requests"] == srv.count - 1  # every paid turn is in the record
    assert not conv.extra["filter"]["passed"] and "not_ended" in conv.extra["filter"]["reasons"]
    assert "lower --max-turns or use a longer-context model" in err


# -- the same end-of-conversation rules in batch rounds (issue 12's executors) --


def batch_conversations(cli, srv, out: Path, tiny: Path, *more) -> tuple[int, str]:
    code, _, err = cli(
        "generate", "conversations", "-n", "1", "--out", out, "--profiles", tiny / "profiles.jsonl",
        "--tasks", TASK, *more, *llm(srv), "--executor", "openai-batch", "--batch-poll", "0.001",
    )  # fmt: skip
    return code, err


def batch_bodies(out: Path) -> list[dict]:
    rounds = sorted((out / ".batch" / "conversations").glob("round-*"))
    return [json.loads(x)["body"] for r in rounds for x in (r / "input.jsonl").read_text().splitlines()]


def test_in_batch_rounds_the_chinese_goodbye_ends_the_conversation_with_its_text(cli, tmp_path, tiny):
    with FakeBatchAPI(goodbye="谢谢，再见。", end_after=2) as srv:
        more = ("--max-turns", "4", "--language", "zh")
        code, err = batch_conversations(cli, srv, tmp_path / "c", tiny, *more)
        assert srv.count == 0 and srv.batch_lines == 5  # 2 exchanges, then the goodbye: one round each
    assert code == 0, err
    (conv,) = read_jsonl(tmp_path / "c" / "conversations.jsonl", Conversation)
    assert conv.end_reason == "goodbye" and conv.generation.extra["closing_phrase"] == "谢谢，再见。"
    assert conv.generation.extra["executor"] == "openai-batch" and conv.num_turns == 4
    last = json.dumps(batch_bodies(tmp_path / "c")[-1], ensure_ascii=False)
    assert "[System]：如果你想结束这次对话" in last


def test_in_batch_rounds_the_context_limit_keeps_the_paid_turns(cli, tmp_path, tiny):
    with FakeBatchAPI(quirks=Quirks(flavour="vllm", context_tokens=900), end_after=9) as srv:
        code, err = batch_conversations(cli, srv, tmp_path / "c", tiny, "--max-turns", "10")
        lines = srv.batch_lines
    assert code == 0, err
    (conv,) = read_jsonl(tmp_path / "c" / "conversations.jsonl", Conversation)
    assert conv.end_reason == "context_limit" and conv.num_turns >= 2
    assert "maximum context length is 900 tokens" in conv.generation.extra["context_error"]
    assert conv.generation.extra["requests"] == lines - 1  # the rejected line was not sent again
    assert "lower --max-turns or use a longer-context model" in err


def test_in_batch_rounds_a_text_turn_cut_at_the_cap_ends_the_conversation(cli, tmp_path, tiny):
    with FakeBatchAPI(end_after=3) as srv:
        code, err = batch_conversations(cli, srv, tmp_path / "c", tiny, "--max-tokens", "5")
        assert srv.batch_lines == 1
    assert code == 0, err
    (conv,) = read_jsonl(tmp_path / "c" / "conversations.jsonl", Conversation)
    assert conv.end_reason == "cut_off" and [t.extra for t in conv.turns] == [{"finish_reason": "length"}]


# -- keys --


def test_api_key_env_picks_the_key_and_openai_api_key_to_another_host_is_said_once(cli, tmp_path, tiny):
    args = ["generate", "conversations", "-n", "1", "--profiles", tiny / "profiles.jsonl", "--tasks", TASK]
    with FakeOpenAI(end_after=1) as srv:
        base = ["--base-url", srv.base_url, "-q"]
        env = {"OPENAI_API_KEY": "sk-for-openai-only-123", "FAKE_KEY": "local-key-456"}
        code, _, err = cli(*args, "--out", tmp_path / "a", *base, "--api-key-env", "FAKE_KEY", env=env)
        assert code == 0 and "warning" not in err
        assert (
            srv.count_key("local-key-456") == srv.count == 3 and srv.count_key("sk-for-openai-only-123") == 0
        )
        code, _, err = cli(*args, "--out", tmp_path / "b", *base, env=env)
    assert code == 0 and err.count("warning: sending the key from OPENAI_API_KEY to 127.0.0.1") == 1
    assert "sk-for-openai-only-123" not in err and srv.count_key("sk-for-openai-only-123") == 3
    for folder in (tmp_path / "a", tmp_path / "b"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert b"local-key-456" not in path.read_bytes() and b"sk-for-openai" not in path.read_bytes()
    shutil.rmtree(tmp_path / "a")


# -- --param, --model-rules, --structured-output ----------------------------------------------------------


def test_params_rules_and_a_forced_mode_reach_the_bodies(cli, tmp_path, tiny, built):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - match: [gpt-5*]\n    reasoning_effort: low\n")
    with FakeOpenAI(quirks="openai-reasoning", end_after=1) as srv:
        code, _, err = cli(
            "generate",
            "conversations",
            "-n",
            "1",
            "--out",
            tmp_path / "c",
            "--profiles",
            tiny / "profiles.jsonl",
            "--tasks",
            TASK,
            *llm(srv, "gpt-5-nano"),
            "--model-rules",
            rules,
            "--param",
            "top_k=40",
            "--param",
            'assistant:chat_template_kwargs={"enable_thinking": false}',
        )
    assert code == 0, err
    simulator, assistant, _ = bodies(srv)
    assert simulator["reasoning_effort"] == assistant["reasoning_effort"] == "low"
    assert simulator["top_k"] == assistant["top_k"] == 40
    assert (
        assistant["chat_template_kwargs"] == {"enable_thinking": False}
        and "chat_template_kwargs" not in simulator
    )
    with FakeOpenAI() as srv:
        code, out, err = cli(
            "baseline",
            "intent",
            built,
            "--models",
            "llm-zero-shot",
            "--llm-model",
            "gpt-4o",
            "--base-url",
            srv.base_url,
            "--api-key",
            KEY,
            "--structured-output",
            "prompt",
            "--json",
            "-q",
        )
    assert code == 0, err
    assert "response_format" not in bodies(srv)[0] and bodies(srv)[0]["model"] == "gpt-4o"
    assert json.loads(out)["results"][0]["structured_output"] == "prompt"
    code, _, err = cli("annotate", "--corpus", tiny, "--structured-output", "xml", "--api-key", KEY)
    assert code == 2 and "--structured-output: must be one of auto, json_schema, json_object, prompt" in err
