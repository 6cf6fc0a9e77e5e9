"""End to end through the real `recllmsim` command in a subprocess, against the local fake OpenAI
server: profiles -> conversations -> filter -> build -> load; injected faults; kill -9 and rerun;
Ctrl-C; the budget; bad input with one-line errors and nothing damaged; the key never written."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from procs import sigint_default

RECLLMSIM = str(Path(sys.executable).with_name("recllmsim"))
KEY = "sk-NEVER-WRITE-ME-4f2a9c"
OCCUPATIONS = "nurse welder teacher pilot chef lawyer farmer editor plumber dentist architect baker".split()


def env(**extra) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RECLLMSIM_"))}
    return {**clean, "OPENAI_API_KEY": KEY, **extra}


def run(*args, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RECLLMSIM, *map(str, args)], capture_output=True, text=True, env=env(), timeout=timeout, **kw
    )


def one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, result.stderr
    # The fake server is not an OpenAI host: the key from OPENAI_API_KEY gets its one warning line.
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning: ")]
    assert result.stderr.count("warning: sending the key from OPENAI_API_KEY") <= 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("recllmsim: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def profile_replier(schema, messages, body):
    rng = random.Random(body["seed"])
    out = []
    for _ in range(5):
        j = rng.randrange(10**6)
        out.append({
            "gender": rng.choice(["Female", "Male"]), "age": str(18 + j % 60),
            "personality": [f"trait{j}", "dislikes noise"], "occupation": f"{rng.choice(OCCUPATIONS)} {j}",
            "daily_interests_and_hobbies": [f"hobby{j}", f"club{j}"], "travel_habits": [f"trips to place{j}"],
            "dining_preferences": [f"dish{j}", f"avoids food{j}"], "spending_habits": [f"saves{j}"],
            "other_aspects": [f"pet{j}"],
        })  # fmt: skip
    return {"profiles": out}


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "generate.lock"
    }


def assert_key_nowhere(folder: Path, *outputs: str) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            assert KEY.encode() not in p.read_bytes(), p
            assert KEY[8:].encode() not in p.read_bytes(), p
    for text in outputs:
        assert KEY not in text


def conversation_lines(corpus: Path) -> list[dict]:
    data = (corpus / "conversations.jsonl").read_bytes()
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI(json_replier=profile_replier, end_after=3) as srv:
        yield srv


@pytest.fixture(scope="module")
def corpus(server, tmp_path_factory) -> Path:
    """A corpus with 6 generated profiles and 12 conversations, made through the CLI."""
    out = tmp_path_factory.mktemp("gen") / "corpus"
    made = run("generate", "profiles", "-n", 6, "--out", out, "--base-url", server.base_url, "--json", "-q")
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["total"] == 6 and summary["generated"] == 6
    conv = run(
        "generate", "conversations", "-n", 12, "--out", out, "--base-url", server.base_url, "--api-key", KEY,
        "--concurrency", 8, "--seed", 3, "--json",
    )  # fmt: skip
    assert conv.returncode == 0, conv.stderr
    summary = json.loads(conv.stdout)
    assert (summary["generated"], summary["failed"], summary["in_file"]) == (12, 0, 12)
    assert "conversations" in conv.stderr and "12/12" in conv.stderr  # the progress bar, on stderr
    assert_key_nowhere(out, made.stdout, made.stderr, conv.stdout, conv.stderr)
    assert server.count_key(KEY) >= 6 * 7
    return out


def test_scenarios_list(tmp_path):
    listed = run("scenarios", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 22
    text = run("scenarios", "list", "--tasks", "recipe planning,preparing gifts")
    assert text.stdout.strip().splitlines()[-1] == "9 scenario(s) in 2 task(s)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  - task: t\n    template: 'Go {where}.'\n    variables: {wher: [home]}\n")
    line = one_line_error(run("scenarios", "list", "--catalog", bad), 2)
    assert line == (
        f"recllmsim: error: {bad}:3: tasks.0.template: unknown variable (declared: ['wher']), "
        "but got '{where}'; fix the catalog file"
    )


def test_generated_corpus_filters_builds_and_loads(corpus, tmp_path):
    lines = conversation_lines(corpus)
    assert len(lines) == 12 and len({c["conversation_id"] for c in lines}) == 12
    assert all(c["end_reason"] == "goodbye" and len(c["turns"]) == 6 for c in lines)
    profiles = [json.loads(x) for x in (corpus / "profiles.jsonl").read_text().splitlines()]
    assert profiles[0]["text"].startswith("1. Gender: ") and len(profiles[0]["text"].splitlines()) == 9

    before = (corpus / "conversations.jsonl").read_bytes()
    for flags in (["--annotator-base-url", "http://127.0.0.1:9/v1"], ["--executor", "openai-batch"]):
        unused = run("generate", "filter", "--corpus", corpus, *flags)  # an LLM flag without --llm-check
        expected = f"recllmsim: error: {flags[0]}: only used with --llm-check (the rule filters ask no LLM)"
        assert one_line_error(unused, 2) == expected
    assert (corpus / "conversations.jsonl").read_bytes() == before
    filtered = run("generate", "filter", "--corpus", corpus, "--json")
    assert filtered.returncode == 0, filtered.stderr
    counts = json.loads(filtered.stdout)
    assert counts["raw"]["conversations"] == 12 and counts["filtered"]["conversations"] == 12
    assert counts["raw"]["avg_utterances"] == 6.0

    built = run("build", "--source", corpus, "--out", tmp_path / "built", "--json", "-q")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["configs"]["conversations"] == {"train": 12}
    import recllmsim_hf

    ds = recllmsim_hf.load("conversations", tmp_path / "built", build=False)
    assert ds["train"].num_rows == 12
    row = ds["train"][0]
    assert row["end_reason"] == "goodbye" and row["filter_passed"] is True
    assert [t["role"] for t in row["turns"]] == ["user", "assistant"] * 3


def test_faults_every_conversation_completes_without_duplicates(tmp_path):
    faults = dict(rate_429=0.08, rate_500=0.06, rate_503=0.06, rate_hang=0.02, rate_bad_json=0.02)
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "profiles.jsonl").write_text(
        "".join(
            json.dumps({"profile_id": str(i), "text": f"1. Gender: Female\n2. Age: {20 + i}"}) + "\n"
            for i in range(5)
        )
    )
    with FakeOpenAI(end_after=3, hang_seconds=20, seed=11, **faults) as srv:
        args = ["generate", "conversations", "-n", 30, "--out", out, "--base-url", srv.base_url, "-q"]
        result = run(*args, "--concurrency", 16, "--timeout", 2, "--max-retries", 10, "--json")
        outcomes = dict(srv.outcomes)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["generated"] == 30 and summary["failed"] == 0
    assert all(outcomes.get(k, 0) > 0 for k in ("429", "500", "503", "hang", "bad_json")), outcomes
    # every injected fault was retried (a slow "ok" on a busy machine may add a timeout retry)
    assert summary["llm"]["retries"] >= sum(v for k, v in outcomes.items() if k != "ok")
    lines = conversation_lines(out)
    assert len(lines) == 30 and len({c["conversation_id"] for c in lines}) == 30
    assert all(c["end_reason"] == "goodbye" and len(c["turns"]) == 6 for c in lines)
    assert_key_nowhere(out, result.stdout, result.stderr)


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} lines in {path} after {limit} s")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_then_the_same_command_gives_exactly_n(corpus, tmp_path, sig):
    N = 30
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "profiles.jsonl").write_bytes((corpus / "profiles.jsonl").read_bytes())
    with FakeOpenAI(end_after=3, latency=0.03) as srv:
        args = ["generate", "conversations", "-n", N, "--out", out, "--base-url", srv.base_url]
        args += ["--concurrency", 4, "-q"]
        proc = subprocess.Popen(
            [RECLLMSIM, *map(str, args)],
            env=env(),
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=sigint_default,
        )
        wait_for_lines(out / "conversations.jsonl", 6, proc)
        proc.send_signal(sig)
        proc.wait(30)
        stderr = proc.stderr.read()
        if sig == signal.SIGINT:
            # typer turns KeyboardInterrupt into a silent exit 130: no traceback, nothing half-written
            assert proc.returncode == 130 and "Traceback" not in stderr, stderr
        else:
            assert proc.returncode == -signal.SIGKILL
        partial = conversation_lines(out)
        assert 6 <= len(partial) < N
        if sig == signal.SIGKILL:  # as if the kill had cut the last write
            with open(out / "conversations.jsonl", "ab") as f:
                f.write(b'{"conversation_id": "c0000')
        again = run(*args, "--json")
        assert again.returncode == 0, again.stderr
        summary = json.loads(again.stdout)
    assert summary["already_done"] == len(partial) and summary["generated"] == N - len(partial)
    lines = conversation_lines(out)
    assert len(lines) == N and len({c["conversation_id"] for c in lines}) == N
    assert lines[: len(partial)] == partial
    assert json.loads((out / "manifest.json").read_text())["counts"]["conversations"] == N


def test_budget_stops_before_exceeding_and_keeps_what_is_done(corpus, tmp_path):
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "profiles.jsonl").write_bytes((corpus / "profiles.jsonl").read_bytes())
    with FakeOpenAI(end_after=3) as srv:
        args = ["generate", "conversations", "-n", 40, "--out", out, "--base-url", srv.base_url, "-q"]
        result = run(
            *args, "--model", "gpt-4o-mini", "--max-tokens", 200, "--budget-usd", 0.004, "--concurrency", 2
        )
    line = one_line_error(result, 4)
    assert "--budget-usd 0.004: spent" in line and "stopped before exceeding it" in line
    lines = conversation_lines(out)
    assert 0 < len(lines) < 40
    cost = sum(c["generation"]["cost_usd"] for c in lines)
    assert cost <= 0.004


def test_bad_input_gets_one_line_and_damages_nothing(corpus, server, tmp_path):
    before = snapshot(corpus)
    common = ["--out", corpus, "--base-url", server.base_url, "-q"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  - task: t\n    template: 'Go {somewhere}.'\n    variables: {where: [home]}\n")
    line = one_line_error(run("generate", "conversations", "-n", 3, "--catalog", bad, *common), 2)
    assert f"{bad}:3: tasks.0.template: unknown variable" in line

    broken = tmp_path / "profiles.jsonl"
    broken.write_text('{"profile_id": "0", "text": "1. Gender: Male"}\n{"profile_id": "1", "te\n')
    line = one_line_error(run("generate", "conversations", "-n", 3, "--profiles", broken, *common), 2)
    assert line.startswith(f"recllmsim: error: {broken}:2: not valid JSON")

    line = one_line_error(run("generate", "conversations", "-n", -3, *common), 2)
    assert line == "recllmsim: error: -n: must be at least 1, but got -3"
    line = one_line_error(run("generate", "profiles", "-n", -3, *common), 2)
    assert line == "recllmsim: error: -n: must be at least 1, but got -3"

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    line = one_line_error(
        run("generate", "conversations", "-n", 20, "--out", corpus, "--base-url", dead, "-q"), 3
    )
    assert line.startswith(f"recllmsim: error: {dead} (") and "check --base-url and --api-key" in line
    assert KEY not in line
    assert snapshot(corpus) == before


def test_a_second_writer_is_refused(corpus, tmp_path):
    from recllmsim_hf.generation.simulate.runfolder import corpus_lock

    with corpus_lock(corpus):
        line = one_line_error(
            run("generate", "conversations", "-n", 13, "--out", corpus, "--base-url", "http://x/v1"), 2
        )
    assert "another `recllmsim generate` is writing this corpus" in line


@pytest.mark.parametrize(
    "value, message",
    [
        (
            "chat_template_kwargs={bad",
            "--param: chat_template_kwargs: not valid JSON (Expecting property name",
        ),
        ('stop=["END"', "--param: stop: not valid JSON (Expecting ',' delimiter"),
        ('assistant:stop="END', "--param: stop: not valid JSON (Unterminated string"),
    ],
)
def test_param_that_starts_like_json_must_be_json(server, tmp_path, value, message):
    before = server.count
    out = tmp_path / "corpus"
    result = run(
        "generate", "profiles", "-n", 2, "--out", out, "--base-url", server.base_url, "--param", value, "-q"
    )
    line = one_line_error(result, 2)
    assert line.startswith(f"recllmsim: error: {message}") and repr(value.partition("=")[2]) in line
    assert server.count == before  # nothing was sent


@pytest.mark.parametrize(
    "flag, content, message",
    [
        ("--model-rules", b"rules: 5\n", "rules.yaml: rules: must be a list of rules, but got 5"),
        (
            "--model-rules",
            b"rules: {match: x}\n",
            "rules.yaml: rules: must be a list of rules, but got {'match': 'x'}",
        ),
        ("--model-rules", b"\xff\xfe rules: []\n", "rules.yaml: not UTF-8 text (byte 0xff at offset 0)"),
        (
            "--prices",
            b"models:\n  m: {input: 1, output: 2}  # caf\xe9\n",
            "rules.yaml: not UTF-8 text (byte 0xe9 at offset",
        ),
    ],
)
def test_rules_and_price_files_that_are_not_a_list_or_not_utf8(server, tmp_path, flag, content, message):
    (tmp_path / "rules.yaml").write_bytes(content)
    before = server.count
    out = tmp_path / "corpus"
    result = run(
        "generate", "profiles", "-n", 2, "--out", out, "--base-url", server.base_url, flag, "rules.yaml",
        "-q", cwd=tmp_path,
    )  # fmt: skip
    assert one_line_error(result, 2).startswith(f"recllmsim: error: {message}")
    assert server.count == before  # nothing was sent
