"""Conversations (and profiles, the LLM filter, annotators) through each executor: online against
the fake OpenAI server, openai-batch against the local Batch API server, command through the
`vllm run-batch` stand-in. Same plan and records as online, batch prices, failed lines retried,
an expired batch, the budget checked before a round, batch files split at the limits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from batch_server import FakeBatchAPI
from fake_openai import FakeOpenAI
from recllmsim_hf.generation.llm import BudgetExceeded
from recllmsim_hf.generation.llm.cache import key_for_body
from recllmsim_hf.generation.llm.executors import ExecutorSpec
from recllmsim_hf.generation.llm.guard import RunStopped
from recllmsim_hf.generation.llm.options import runner_from_options
from recllmsim_hf.generation.simulate.conversations import Settings, generate_conversations, plan
from recllmsim_hf.generation.simulate.prompts import PROMPT_VERSION
from recllmsim_hf.generation.simulate.scenarios import load_scenarios

from recllmsim_hf.corpus import read_jsonl, write_jsonl
from recllmsim_hf.errors import ServiceError
from recllmsim_hf.schema import Conversation, Profile

STAND_IN = Path(__file__).resolve().parents[2] / "fake_run_batch.py"
PROFILES = [Profile(profile_id=str(i), text=f"1. Gender: Female\n2. Age: {30 + i}") for i in range(6)]
N = 8
VOLATILE = ("started_at", "duration_s", "cost_usd")


def corpus(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    write_jsonl(folder / "profiles.jsonl", PROFILES)
    return folder


def factory(srv=None, **kw):
    url = srv.base_url if srv is not None else None
    return lambda c: runner_from_options(
        c, base_url=url, api_key="sk-exec", model="gpt-4o-mini", backoff_base=0.001, backoff_max=0.01, **kw
    )


def batch_spec(**kw) -> ExecutorSpec:
    return ExecutorSpec.parse("openai-batch", poll_interval=0.001, poll_max=0.01, **kw)


def command_spec(*extra: str) -> ExecutorSpec:
    cmd = f"{sys.executable} {STAND_IN} -i {{input}} -o {{output}} --model {{model}} {' '.join(extra)}"
    return ExecutorSpec.parse("command", cmd)


def records(folder: Path) -> dict[str, dict]:
    out = {}
    for conv in read_jsonl(folder / "conversations.jsonl", Conversation):
        data = conv.model_dump(mode="json")
        for key in VOLATILE:
            data["generation"].pop(key)
        out[conv.conversation_id] = data
    return out


def round_inputs(folder: Path, run: str = "conversations") -> list[list[dict]]:
    rounds = sorted((folder / ".batch" / run).glob("round-*"))
    return [[json.loads(x) for x in (r / "input.jsonl").read_text().splitlines()] for r in rounds]


def test_the_same_conversations_through_every_executor(tmp_path):
    settings = Settings(seed=5)
    with FakeOpenAI(end_after=3) as srv:
        online = generate_conversations(corpus(tmp_path, "online"), N, factory(srv), settings=settings,
                                        progress=False)  # fmt: skip
        online_bodies = sorted(json.dumps(r["body"], sort_keys=True) for r in srv.requests)
    with FakeBatchAPI(end_after=3) as srv:
        batch = generate_conversations(corpus(tmp_path, "batch"), N, factory(srv), settings=settings,
                                       progress=False, executor=batch_spec())  # fmt: skip
        assert srv.count == 0 and srv.batch_lines == N * 7 and len(srv.batches) == 7
        batch_url = srv.base_url
    command = generate_conversations(corpus(tmp_path, "command"), N, factory(), settings=settings,
                                     progress=False, executor=command_spec())  # fmt: skip
    for s in (online, batch, command):
        assert (s["generated"], s["failed"], s["passed_filter"]) == (N, 0, N)
    # rounds = the longest conversation's requests (4 simulator + 3 assistant turns); 0 online requests
    assert batch["llm"]["rounds"] == command["llm"]["rounds"] == 7
    assert batch["llm"]["requests"] == command["llm"]["requests"] == 0 and online["llm"]["requests"] == N * 7
    assert batch["llm"]["batch_requests"] == N * 7
    by = {name: records(tmp_path / name) for name in ("online", "batch", "command")}
    assert list(by["batch"]) != [] and set(by["batch"]) == set(by["online"]) == set(by["command"])
    ids = [it.conversation_id for it in plan(load_scenarios(), PROFILES, N, 5)]
    assert sorted(by["online"]) == sorted(ids)
    for cid, rec in by["online"].items():
        for name in ("batch", "command"):
            other = by[name][cid]
            assert other["generation"]["extra"].pop("executor") == name.replace("batch", "openai-batch")
            assert rec["generation"]["extra"].get("executor") == "online"
            assert {
                **other["generation"],
                "extra": {**other["generation"]["extra"], "executor": "online"},
            } == rec["generation"]
            assert {k: v for k, v in other.items() if k != "generation"} == {
                k: v for k, v in rec.items() if k != "generation"
            }
    # cost at the batch price: half the online price for gpt-4o-mini, the same tokens
    assert batch["llm"]["prompt_tokens"] == online["llm"]["prompt_tokens"]
    assert batch["llm"]["cost_usd"] == pytest.approx(online["llm"]["cost_usd"] / 2)
    manifest = json.loads((tmp_path / "batch" / "manifest.json").read_text())
    assert manifest["generation"]["conversations"]["executor"] == "openai-batch"
    # each batch line is the online body, and its custom_id the request's cache key
    lines = [x for r in round_inputs(tmp_path / "batch") for x in r]
    assert sorted(json.dumps(x["body"], sort_keys=True) for x in lines) == online_bodies
    assert {x["url"] for x in lines} == {"/v1/chat/completions"} and {x["method"] for x in lines} == {"POST"}
    # the key names the endpoint too (issue 10): the batch server's base URL
    assert all(x["custom_id"] == key_for_body(x["body"], PROMPT_VERSION, batch_url) for x in lines)
    # a rerun replays everything from the cache: no round, no batch (the same endpoint: the key names it)
    with FakeBatchAPI(end_after=3, port=int(batch_url.rsplit(":", 1)[1].split("/")[0])) as srv:
        (tmp_path / "batch" / "conversations.jsonl").unlink()
        again = generate_conversations(tmp_path / "batch", N, factory(srv), settings=settings, progress=False,
                                       executor=batch_spec())  # fmt: skip
        assert again["generated"] == N and srv.batches == {} and again["llm"]["cache_hits"] == N * 7


def test_failed_lines_go_into_the_next_round(tmp_path):
    bad = set()

    def outcome(cid, body, nth):
        if nth == 0 and int(cid[:2], 16) % 3 == 0:
            bad.add(cid)
            return "500"
        return "ok"

    folder = corpus(tmp_path, "c")
    with FakeBatchAPI(end_after=3, line_outcome=outcome) as srv:
        s = generate_conversations(folder, N, factory(srv), settings=Settings(seed=5), progress=False,
                                   executor=batch_spec())  # fmt: skip
        assert srv.batch_lines == N * 7 + len(bad)
    assert bad and s["generated"] == N and s["failed"] == 0 and s["llm"]["failed_lines"] == len(bad)
    rounds = round_inputs(folder)
    for cid in bad:
        hits = [i for i, r in enumerate(rounds) if cid in {x["custom_id"] for x in r}]
        assert len(hits) == 2 and hits[1] == hits[0] + 1
    # which lines fail depends on their ids, which name the server's port: look in every round
    error_files = sorted((folder / ".batch/conversations").glob("round-*/errors.jsonl"))
    errors = "".join(p.read_text() for p in error_files)
    assert errors.count("injected 500") == len(bad)
    attempts = [
        c.generation.extra["attempts"] for c in read_jsonl(folder / "conversations.jsonl", Conversation)
    ]
    assert sum(attempts) == N * 7 + len(bad)


def test_a_line_that_keeps_failing_fails_only_its_conversation(tmp_path):
    first = []

    def outcome(cid, body, nth):
        if not first:
            first.append(cid)
        return "503" if cid == first[0] else "ok"

    folder = corpus(tmp_path, "c")
    with FakeBatchAPI(end_after=2, line_outcome=outcome) as srv:
        s = generate_conversations(folder, N, factory(srv, max_retries=2), settings=Settings(seed=1),
                                   progress=False, executor=batch_spec())  # fmt: skip
    assert (s["generated"], s["failed"]) == (N - 1, 1)
    assert "failed after 3 batch round(s): HTTP 503: injected 503" in s["first_error"]
    assert sum(first[0] in {x["custom_id"] for x in r} for r in round_inputs(folder)) == 3


def test_a_400_line_is_not_retried(tmp_path):
    with FakeBatchAPI(end_after=2, line_outcome=lambda cid, body, nth: "400") as srv:
        s = generate_conversations(corpus(tmp_path, "c"), 2, factory(srv), settings=Settings(seed=1),
                                   progress=False, executor=batch_spec())  # fmt: skip
        assert srv.batch_lines == 2 and len(srv.batches) == 1
    assert s["failed"] == 2 and "(not retried): HTTP 400: injected 400" in s["first_error"]


def test_identical_rejections_in_a_round_stop_the_batch_run(tmp_path):
    # issue 10's fail-fast rule: 3 identical 400s stop the run with one line, nothing more is sent
    folder = corpus(tmp_path, "c")
    with FakeBatchAPI(end_after=2, line_outcome=lambda cid, body, nth: "400") as srv:
        stop = r"gpt-4o-mini at http://127\.0\.0\.1:\d+/v1 rejected 3 identical"
        with pytest.raises(RunStopped, match=stop):
            generate_conversations(folder, 5, factory(srv), settings=Settings(seed=1), progress=False,
                                   executor=batch_spec())  # fmt: skip
        assert srv.batch_lines == 5 and len(srv.batches) == 1
    # nothing was generated or paid for (every line rejected): the run leaves no round files behind
    assert round_inputs(folder) == []


@pytest.mark.parametrize("end, code", [("expire", "batch_expired"), ("cancel", "batch_cancelled")])
def test_an_expired_or_cancelled_batch_keeps_its_finished_lines_and_sends_the_rest_again(tmp_path, end, code):
    folder = corpus(tmp_path, "c")
    with FakeBatchAPI(end_after=3, **{end: 1}) as srv:
        s = generate_conversations(folder, N, factory(srv), settings=Settings(seed=5), progress=False,
                                   executor=batch_spec())  # fmt: skip
        assert srv.batch_lines == N * 7  # the finished half was not sent again
        status = {"expire": "expired", "cancel": "cancelled"}[end]
        assert [b["status"] for b in srv.batches.values()][0] == status
    assert s["generated"] == N and s["failed"] == 0
    state = json.loads((folder / ".batch/conversations/round-0000/state.json").read_text())
    assert state["parts"][0]["status"] == status
    expired = [
        json.loads(x)
        for x in (folder / ".batch/conversations/round-0000/errors.jsonl").read_text().splitlines()
    ]
    assert len(expired) == N // 2 and {x["error"]["code"] for x in expired} == {code}
    assert {x["custom_id"] for x in expired} <= {x["custom_id"] for x in round_inputs(folder)[1]}


def test_the_budget_is_checked_before_each_round(tmp_path):
    folder = corpus(tmp_path, "c")
    with FakeBatchAPI(end_after=3) as srv:
        with pytest.raises(
            BudgetExceeded, match=r"next batch round \(8 requests\).*stopped before sending it"
        ):
            generate_conversations(folder, N, factory(srv, budget_usd=0.001), settings=Settings(
                seed=5, max_tokens=100), progress=False, executor=batch_spec())  # fmt: skip
        sent = len(srv.batches)
    rounds = sorted((folder / ".batch/conversations").glob("round-*"))
    assert 0 < sent == len(rounds) < 7  # the round that did not fit was never written nor sent
    spent = sum(json.loads(x)["response"]["body"]["usage"]["prompt_tokens"] * 0.075e-6
                + json.loads(x)["response"]["body"]["usage"]["completion_tokens"] * 0.3e-6
                for r in rounds for x in (r / "output.jsonl").read_text().splitlines())  # fmt: skip
    assert spent <= 0.001


def test_batch_files_are_split_at_the_limits(tmp_path):
    folder = corpus(tmp_path, "c")
    with FakeBatchAPI(end_after=2, max_requests=3) as srv:
        s = generate_conversations(folder, N, factory(srv), settings=Settings(seed=2), progress=False,
                                   executor=batch_spec(max_requests=3))  # fmt: skip
        assert len(srv.batches) == 5 * 3  # 5 rounds of 8 requests, 3 batches each
    assert s["generated"] == N and s["llm"]["rounds"] == 5
    state = json.loads((folder / ".batch/conversations/round-0000/state.json").read_text())
    assert [p["count"] for p in state["parts"]] == [3, 3, 2]


def test_failed_command_lines_are_retried_and_a_failing_command_is_one_line(tmp_path):
    memory = tmp_path / "failed.txt"
    folder = corpus(tmp_path, "c")
    spec = command_spec("--fail-rate", "0.3", "--memory", str(memory))
    s = generate_conversations(folder, N, factory(), settings=Settings(seed=5), progress=False, executor=spec)
    failed = memory.read_text().split()
    assert failed and s["generated"] == N and s["llm"]["failed_lines"] == len(failed)
    with pytest.raises(ServiceError) as e:
        generate_conversations(corpus(tmp_path, "d"), 2, factory(), progress=False,
                               executor=command_spec("--exit-status", "3"))  # fmt: skip
    message = str(e.value)
    assert "--batch-command exited with status 3" in message and "CUDA out of memory" in message
    assert "\n" not in message


def test_profiles_filter_and_annotators_through_batch_match_online(tmp_path):
    from fake_openai import example_for
    from test_generate_cli import profile_replier

    def replier(schema, messages, body):  # profiles get distinct drafts, the other schemas an example
        return (
            profile_replier(schema, messages, body)
            if "profiles" in schema["properties"]
            else example_for(schema)
        )

    from recllmsim_hf.generation.annotate.annotators import annotate_corpus
    from recllmsim_hf.generation.simulate.filters import filter_corpus
    from recllmsim_hf.generation.simulate.profiles import generate_profiles

    out = {}
    for name, server, spec in (("online", FakeOpenAI, None), ("batch", FakeBatchAPI, batch_spec())):
        folder = tmp_path / name
        with server(end_after=2, json_replier=replier) as srv:
            p = generate_profiles(folder, 6, factory(srv), seed=3, progress=False, executor=spec)
            generate_conversations(folder, 4, factory(srv), settings=Settings(seed=1), progress=False,
                                   executor=spec)  # fmt: skip
            f = filter_corpus(folder, runner_factory=factory(srv), progress=False, executor=spec)
            a = annotate_corpus(folder, "intent,quality", factory(srv), progress=False, executor=spec)
            out[name] = (p, f, a, records(folder), srv.count)
    (po, fo, ao, ro, _), (pb, fb, ab, rb, online_requests) = out["online"], out["batch"]
    assert online_requests == 0
    assert (pb["total"], pb["rounds"], pb["llm"]["executor"]) == (6, po["rounds"], "openai-batch")
    assert (tmp_path / "online/profiles.jsonl").read_text() == (tmp_path / "batch/profiles.jsonl").read_text()
    assert fb["filtered"] == fo["filtered"] and fb["llm_errors"] == fo["llm_errors"] == 0
    assert ab["annotators"] == ao["annotators"] and ab["executor"]["executor"] == "openai-batch"
    # the estimate printed before the run is at the batch price (gpt-4o-mini: half)
    assert ab["estimate"]["cost_usd"] == pytest.approx(ao["estimate"]["cost_usd"] / 2)
    assert ab["annotators"]["intent"]["annotated"] > 0 and ab["annotators"]["intent"]["cached"] == 0

    def labels(recs):
        return {cid: ([t["intent"] for t in r["turns"]], r["ratings"]) for cid, r in recs.items()}

    assert labels(rb) == labels(ro) and all(i for i, _ in labels(rb).values())
