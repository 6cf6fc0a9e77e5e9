"""Batch rounds, shards and many sources through the real `recllmsim` command: kill -9 between
rounds and while a batch is open, then the same command again (nothing sent twice); the command
executor with the `vllm run-batch` stand-in; `--shard` on N folders built back into one dataset;
one-line errors for bad flags and conflicting sources."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batch_server import FakeBatchAPI
from fake_openai import FakeOpenAI
from test_generate_cli import RECLLMSIM, assert_key_nowhere, conversation_lines, env, one_line_error, run

from recllmsim_hf.corpus import write_jsonl
from recllmsim_hf.schema import Profile

STAND_IN = Path(__file__).resolve().parent / "fake_run_batch.py"
PROFILES = [Profile(profile_id=str(i), text=f"1. Gender: Male\n2. Age: {40 + i}") for i in range(5)]
N = 10


def corpus(tmp_path: Path, name: str = "corpus") -> Path:
    out = tmp_path / name
    out.mkdir()
    write_jsonl(out / "profiles.jsonl", PROFILES)
    return out


def states(out: Path) -> list[dict]:
    found = []
    for path in sorted((out / ".batch" / "conversations").glob("round-*/state.json")):
        try:
            found.append(json.loads(path.read_text()))
        except ValueError:  # being replaced right now
            pass
    return found


def wait_until(check, proc, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.005)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("moment", ["between rounds", "while a batch is open"])
def test_kill_9_then_the_same_command_sends_nothing_twice(tmp_path, moment):
    out = corpus(tmp_path)
    with FakeBatchAPI(end_after=3, polls_per_state=2) as srv:
        args = ["generate", "conversations", "-n", N, "--out", out, "--base-url", srv.base_url, "--seed", 2]
        args += ["--executor", "openai-batch", "--batch-poll", 0.01, "-q"]
        proc = subprocess.Popen([RECLLMSIM, *map(str, args)], env=env(), stderr=subprocess.PIPE, text=True)
        if moment == "between rounds":
            wait_until(lambda: sum(s["status"] == "applied" for s in states(out)) >= 2, proc)
        else:
            wait_until(lambda: any(s["round"] >= 2 and s["status"] == "open" and
                                   s["parts"][0].get("batch_id") for s in states(out)), proc)  # fmt: skip
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        before = len(srv.batches)
        again = run(*args, "--json")
        assert again.returncode == 0, again.stderr
        summary = json.loads(again.stdout)
        # every request answered once: 10 conversations of 4 simulator + 3 assistant turns, 7 batches
        assert srv.batch_lines == N * 7 and len(srv.batches) == 7 and srv.count == 0
        assert before <= 7
    assert summary["generated"] == N and summary["failed"] == 0 and summary["llm"]["requests"] == 0
    lines = conversation_lines(out)
    assert len(lines) == N and len({c["conversation_id"] for c in lines}) == N
    assert {c["generation"]["extra"]["executor"] for c in lines} == {"openai-batch"}
    assert [s["status"] for s in states(out)] == ["applied"] * 7
    assert_key_nowhere(out, again.stdout, again.stderr)  # the key reached no round file
    if moment == "while a batch is open":  # the open batch was polled again, not sent again
        ids = [s["parts"][0]["batch_id"] for s in states(out)]
        assert sorted(ids) == sorted(srv.batches)


def test_an_open_batch_of_an_endpoint_no_role_uses_now_names_the_rounds_folder(tmp_path):
    out = corpus(tmp_path)
    with FakeBatchAPI(end_after=3, polls_per_state=10**6) as srv:  # the batch stays validating
        args = ["generate", "conversations", "-n", 2, "--out", out, "--executor", "openai-batch"]
        args += ["--batch-poll", 0.01, "-q"]
        proc = subprocess.Popen(
            [RECLLMSIM, *map(str, args), "--base-url", srv.base_url],
            env=env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: any(s["parts"][0].get("batch_id") for s in states(out)), proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        with FakeBatchAPI(end_after=3) as other:
            line = one_line_error(run(*args, "--base-url", other.base_url), 2)
            assert other.uploads == 0
    assert line == (
        f"recllmsim: error: a batch round of this corpus was sent to {srv.base_url} with model "
        "'gpt-4o-mini', which no role uses now; rerun with the same --base-url and --model, or delete "
        f"{out}/.batch/conversations (its unfinished rounds are then sent, and paid for, again)"
    )


def test_the_command_executor_through_the_cli(tmp_path):
    out = corpus(tmp_path)
    command = f"{sys.executable} {STAND_IN} -i {{input}} -o {{output}} --model {{model}}"
    args = ["generate", "conversations", "-n", 4, "--out", out, "--executor", "command"]
    result = run(*args, "--batch-command", command, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["generated"], summary["llm"]["rounds"], summary["llm"]["requests"]) == (4, 7, 0)
    assert "batch round 0: 4 request(s) in 1 batch(es)" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())["generation"]["conversations"]
    assert (manifest["executor"], manifest["batch_program"]) == ("command", Path(sys.executable).name)
    other = corpus(tmp_path, "d")
    failing = run("generate", "conversations", "-n", 2, "--out", other, "--executor", "command",
                  "--batch-command", f"{command} --exit-status 7", "-q")  # fmt: skip
    line = one_line_error(failing, 3)
    assert "--batch-command exited with status 7" in line and "CUDA out of memory (fake, exit 7)" in line


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--executor", "command"], "--executor command: needs --batch-command"),
        (["--executor", "command", "--batch-command", "vllm run-batch"], "must name the files as {input}"),
        (["--executor", "nope"], "--executor: must be one of online, openai-batch, command, but got 'nope'"),
        (["--batch-command", "x {input} {output}"], "--batch-command: only used with --executor command"),
        (["--shard", "3/3"], "--shard: K must be 0 .. N-1"),
        (["--shard", "two"], "--shard: must look like K/N"),
        (["--executor", "openai-batch", "--no-cache"], "--no-cache: the openai-batch executor keeps"),
    ],
)
def test_bad_executor_and_shard_flags_are_one_line(tmp_path, flags, message):
    out = corpus(tmp_path)
    result = run(
        "generate", "conversations", "-n", 2, "--out", out, "--base-url", "http://127.0.0.1:9/v1", *flags
    )
    assert message in one_line_error(result, 2)
    assert not (out / "conversations.jsonl").exists() or not (out / "conversations.jsonl").read_text()


def test_base_url_twice_shares_the_load(tmp_path):
    with FakeOpenAI(end_after=2, latency=0.01) as a, FakeOpenAI(end_after=2, latency=0.01) as b:
        urls = ["--base-url", a.base_url, "--base-url", b.base_url]
        limits = ["--endpoint-concurrency", 2, "--concurrency", 4]
        out = corpus(tmp_path)
        result = run("generate", "conversations", "-n", 6, "--out", out, *urls, *limits, "--json", "-q")
        assert result.returncode == 0, result.stderr
        assert a.count + b.count == 6 * 5 and a.count and b.count
        assert a.max_in_flight <= 2 and b.max_in_flight <= 2
    assert json.loads(result.stdout)["generated"] == 6


def test_shards_union_is_the_plan_and_build_merges_them(tmp_path):
    with FakeOpenAI(end_after=2) as srv:
        whole = corpus(tmp_path, "whole")
        assert (
            run(
                "generate", "conversations", "-n", 12, "--out", whole, "--base-url", srv.base_url, "-q"
            ).returncode
            == 0
        )
        shards = []
        for k in range(3):
            folder = corpus(tmp_path, f"shard-{k}")
            done = run("generate", "conversations", "-n", 12, "--out", folder, "--base-url", srv.base_url,
                       "--shard", f"{k}/3", "--json", "-q")  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["shard"] == f"{k}/3"
            shards.append(folder)
    ids = [{c["conversation_id"] for c in conversation_lines(s)} for s in shards]
    plan = {c["conversation_id"] for c in conversation_lines(whole)}
    assert all(ids) and sum(map(len, ids)) == 12 and set().union(*ids) == plan
    built = run(
        "build", *[a for s in shards for a in ("--source", s)], "--out", tmp_path / "ds", "--json", "-q"
    )
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["configs"]["conversations"] == {"train": 12}
    import pyarrow.parquet as pq

    table = pq.read_table(next((tmp_path / "ds" / "conversations").glob("*.parquet")))
    assert set(table.column("conversation_id").to_pylist()) == plan
    # a conversation that comes twice with other content is refused, naming it; nothing is built
    clash = tmp_path / "clash"
    shutil.copytree(shards[0], clash)
    first = conversation_lines(clash)[0]
    first["turns"][0]["content"] = "changed"
    (clash / "conversations.jsonl").write_text(json.dumps(first) + "\n")
    refused = run("build", "--source", shards[0], "--source", clash, "--out", tmp_path / "ds2", "-q")
    line = one_line_error(refused, 2)
    assert f"--source {clash}: 1 conversation with the same id but other content" in line
    assert first["conversation_id"] in line and not (tmp_path / "ds2").exists()
