"""Many endpoints per role: least-outstanding routing within per-endpoint limits, an endpoint
killed mid-run or answering a run of 5xx set aside while the run goes on, the endpoints file."""

from __future__ import annotations

import asyncio
import threading

import pytest
from capped_server import CappedOpenAI
from fake_openai import FakeOpenAI
from recllmsim_hf.generation.llm import Endpoint
from recllmsim_hf.generation.llm.options import runner_from_options
from recllmsim_hf.generation.llm.pool import PoolTransport, parse_pools
from recllmsim_hf.generation.llm.transport import OpenAITransport
from recllmsim_hf.generation.simulate.conversations import Settings, generate_conversations

from recllmsim_hf.corpus import read_jsonl, write_jsonl
from recllmsim_hf.errors import InputError, ServiceError
from recllmsim_hf.schema import Conversation, Profile

PROFILES = [Profile(profile_id=str(i), text=f"1. Gender: Female\n2. Age: {20 + i}") for i in range(4)]


def corpus(tmp_path):
    write_jsonl(tmp_path / "profiles.jsonl", PROFILES)
    return tmp_path


def factory(urls, made: list, **kw):
    def make(c):
        runner = runner_from_options(c, base_url=urls, api_key="sk-pool", model="gpt-4o-mini",
                                     backoff_base=0.001, backoff_max=0.01, **kw)  # fmt: skip
        made.append(runner)
        return runner

    return make


def test_requests_go_to_the_least_busy_endpoint_within_its_limit(tmp_path):
    made = []
    with CappedOpenAI(capacity=8, latency=0.01) as a, CappedOpenAI(capacity=8, latency=0.01) as b:
        make = factory([a.base_url, b.base_url], made, concurrency=8, endpoint_concurrency=3)
        s = generate_conversations(corpus(tmp_path), 12, make, settings=Settings(seed=1), progress=False)
        assert s["generated"] == 12 and a.count + b.count == 12 * 7
        assert a.max_in_flight <= 3 and b.max_in_flight <= 3  # each endpoint's own limit
        assert abs(a.count - b.count) <= 12  # the load is shared
    assert {r["base_url"] for r in made[0].transport.stats()} == {a.base_url, b.base_url}


def test_an_endpoint_killed_mid_run_is_set_aside_and_the_run_goes_on(tmp_path):
    made = []
    a, b = FakeOpenAI(latency=0.01), FakeOpenAI(latency=0.01)
    with a:
        b.__enter__()
        stopped = threading.Event()

        def kill_b_midway() -> None:
            while b.count < 20:
                threading.Event().wait(0.002)
            b.__exit__(None, None, None)
            stopped.set()

        threading.Thread(target=kill_b_midway, daemon=True).start()
        make = factory([a.base_url, b.base_url], made, concurrency=8)
        s = generate_conversations(corpus(tmp_path), 16, make, settings=Settings(seed=2), progress=False)
        assert stopped.is_set()
    assert s["generated"] == 16 and s["failed"] == 0
    stats = {r["base_url"]: r for r in made[0].transport.stats()}
    assert stats[b.base_url]["set_asides"] >= 1 and 20 <= b.count < 16 * 7
    assert a.count >= 16 * 7 - b.count  # A took over everything B could not answer
    assert len(list(read_jsonl(tmp_path / "conversations.jsonl", Conversation))) == 16


def test_a_role_pointed_elsewhere_by_its_environment_is_not_pooled(tmp_path, monkeypatch):
    made = []
    with FakeOpenAI() as a, FakeOpenAI() as b, FakeOpenAI() as c:
        monkeypatch.setenv("RECLLMSIM_ASSISTANT_BASE_URL", c.base_url)
        make = factory([a.base_url, b.base_url], made, concurrency=4)
        s = generate_conversations(corpus(tmp_path), 6, make, settings=Settings(seed=4), progress=False)
        assert s["generated"] == 6 and c.count == 6 * 3 and a.count + b.count == 6 * 4
        assert {r["body"]["messages"][0]["content"] for r in c.requests} == {"You are a helpful assistant."}


def test_a_run_of_5xx_sets_an_endpoint_aside(tmp_path):
    made = []
    with FakeOpenAI() as a, FakeOpenAI(rate_500=1.0) as b:
        make = factory([a.base_url, b.base_url], made, concurrency=2)
        s = generate_conversations(corpus(tmp_path), 8, make, settings=Settings(seed=3), progress=False)
        assert s["generated"] == 8 and b.count >= 3 and a.count == 8 * 7
    assert {r["base_url"]: r["set_asides"] for r in made[0].transport.stats()}[b.base_url] >= 1


def test_check_sets_aside_a_dead_endpoint_and_fails_only_when_all_are(tmp_path):
    dead = "http://127.0.0.1:9/v1"
    with FakeOpenAI() as a:
        pools = parse_pools([a.base_url, dead], ["sk"], per_endpoint=4, environ={})
        ep = Endpoint(base_url=a.base_url, api_key="sk", model="m")
        pool = PoolTransport(OpenAITransport(timeout=2), pools, {(ep.base_url, ep.api_key, ep.model): "*"})
        warned = []
        pool.warn = warned.append

        async def go():
            try:
                await pool.check(ep)
                assert [r["set_asides"] for r in pool.stats()] == [0, 1]
                assert len(warned) == 1 and warned[0].startswith(f"warning: {dead}: ")
                assert "going on with the other 1 endpoint(s) of the pool" in warned[0]
                body = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
                assert (await pool.complete(ep, body))["choices"]  # the dead one is skipped
            finally:
                await pool.close()

        asyncio.run(go())
    both_dead = parse_pools([dead, "http://127.0.0.1:7/v1"], [], per_endpoint=1, environ={})
    pool = PoolTransport(OpenAITransport(timeout=2), both_dead, {(dead, "x", "m"): "*"})
    with pytest.raises(ServiceError, match="no endpoint of the pool answers"):
        asyncio.run(pool.check(Endpoint(base_url=dead, api_key="x", model="m")))


def test_the_endpoints_file(tmp_path):
    path = tmp_path / "endpoints.yaml"
    path.write_text(
        "endpoints:\n  - {base_url: http://a:1/v1, concurrency: 2}\n"
        "  - {base_url: http://b:1/v1, api_key_env: B_KEY, roles: [assistant]}\n"
    )
    pools = parse_pools([], [], per_endpoint=5, endpoints_file=path, environ={"B_KEY": "kb"})
    assert [(r.base_url, r.limit) for r in pools["*"]] == [("http://a:1/v1", 2)]
    assert [(r.base_url, r.api_key, r.limit) for r in pools["assistant"]] == [("http://b:1/v1", "kb", 5)]
    for text, message in (
        ("endpoints: []", "must be a non-empty list"),
        ("endpoints:\n  - {base_url: ftp://x}", r"endpoints\[0\].base_url"),
        ("endpoints:\n  - {base_url: http://x, colour: red}", r"endpoints\[0\].colour"),
        ("endpoints:\n  - {base_url: http://x, roles: [critic]}", "unknown role 'critic'"),
        ("endpoints:\n  - {base_url: http://x, api_key_env: NOPE}", r"\$NOPE is not set"),
    ):
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            parse_pools([], [], per_endpoint=1, endpoints_file=path, environ={})
    with pytest.raises(InputError, match="--api-key: give one key for all 3 --base-url or one per"):
        parse_pools(["http://a/v1", "http://b/v1", "http://c/v1"], ["k1", "k2"], per_endpoint=1, environ={})


def test_role_flags_make_that_roles_pool_and_replace_the_files(tmp_path):
    path = tmp_path / "endpoints.yaml"
    path.write_text("endpoints:\n  - {base_url: http://b:1/v1, roles: [assistant, simulator]}\n")
    runner = runner_from_options(
        None, api_key="sk-all", model="m", endpoints_file=path, roles=("simulator", "assistant"),
        role_base_urls={"simulator": ["http://s1:1/v1", "http://s2:1/v1"], "assistant": "http://c:1/v1"},
        role_api_keys={"simulator": ["k1", "k2"]},
    )  # fmt: skip
    assert sorted(runner.endpoints) == ["assistant", "simulator"]
    assert runner.endpoints["assistant"].base_url == "http://c:1/v1"
    assert runner.endpoints["assistant"].api_key == "sk-all"
    simulator = runner.endpoints["simulator"]
    assert (simulator.base_url, simulator.api_key) == ("http://s1:1/v1", "k1")
    pools = runner.transport.pools
    assert sorted(pools) == ["simulator"]  # the file's pool of both roles is replaced by their flags
    replicas = [(r.base_url, r.api_key) for r in pools["simulator"]]
    assert replicas == [("http://s1:1/v1", "k1"), ("http://s2:1/v1", "k2")]
    assert runner.transport.replicas(runner.endpoints["assistant"]) is None
