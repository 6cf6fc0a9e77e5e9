"""openai-batch with several endpoints per role: each round's lines are split over the role's
endpoints (one upload and one batch per endpoint, each with its own key), an endpoint that
cannot be reached at the start is left out, and the records are those of a one-endpoint run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batch_server import FakeBatchAPI, _error
from fake_quirks import Quirks
from recllmsim_hf.generation.llm.executors import ExecutorSpec
from recllmsim_hf.generation.llm.options import runner_from_options
from recllmsim_hf.generation.simulate.conversations import Settings, generate_conversations

from recllmsim_hf.corpus import read_jsonl, write_jsonl
from recllmsim_hf.schema import Conversation, Profile

N = 8
PROFILES = [Profile(profile_id=str(i), text=f"1. Gender: Female\n2. Age: {30 + i}") for i in range(6)]
SPEC = ExecutorSpec.parse("openai-batch", poll_interval=0.001, poll_max=0.01)


def corpus(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    write_jsonl(folder / "profiles.jsonl", PROFILES)
    return folder


def texts(folder: Path) -> dict[str, list[str]]:
    convs = read_jsonl(folder / "conversations.jsonl", Conversation)
    return {c.conversation_id: [t.content for t in c.turns] for c in convs}


def parts(folder: Path) -> list[list]:
    found = []
    for path in sorted((folder / ".batch/conversations").glob("round-*/state.json")):
        found.append(sorted(tuple(p["group"]) + (p["count"],) for p in json.loads(path.read_text())["parts"]))
    return found


def test_each_round_is_split_over_the_endpoints_with_their_own_keys(tmp_path):
    one = corpus(tmp_path, "one")
    with FakeBatchAPI(end_after=3) as srv:
        url = srv.base_url
        make = lambda c: runner_from_options(c, base_url=url, api_key="sk-a", model="gpt-4o-mini")  # noqa: E731
        generate_conversations(one, N, make, settings=Settings(seed=5), progress=False, executor=SPEC)
    two = corpus(tmp_path, "two")
    with FakeBatchAPI(end_after=3, quirks=Quirks(api_keys=("sk-a",))) as a, \
            FakeBatchAPI(end_after=3, quirks=Quirks(api_keys=("sk-b",))) as b:  # fmt: skip
        urls, keys = [a.base_url, b.base_url], ["sk-a", "sk-b"]
        make = lambda c: runner_from_options(c, base_url=urls, api_key=keys, model="gpt-4o-mini")  # noqa: E731
        s = generate_conversations(two, N, make, settings=Settings(seed=5), progress=False, executor=SPEC)
        # 7 rounds; each goes to both servers as one upload + one batch each while it has >= 2 lines
        assert a.count == b.count == 0 and a.batch_lines + b.batch_lines == N * 7
        assert len(a.batches) == a.uploads == 7 and len(b.batches) == b.uploads == 7
        assert abs(a.batch_lines - b.batch_lines) <= 7
    assert s["generated"] == N and s["llm"]["batch_requests"] == N * 7 and s["llm"]["rounds"] == 7
    assert parts(two)[0] == sorted([(a.base_url, "gpt-4o-mini", N // 2), (b.base_url, "gpt-4o-mini", N // 2)])
    assert texts(two) == texts(one)


def test_a_role_pool_from_the_flags_and_an_endpoint_down_at_the_start(tmp_path):
    folder = corpus(tmp_path, "c")
    with FakeBatchAPI(end_after=2) as a, FakeBatchAPI(end_after=2) as c:
        dead = "http://127.0.0.1:9/v1"
        make = lambda f: runner_from_options(  # noqa: E731
            f, api_key="sk-x", model="gpt-4o-mini",
            role_base_urls={"simulator": [dead, a.base_url], "assistant": c.base_url},
            roles=("simulator", "assistant"),
        )  # fmt: skip
        s = generate_conversations(folder, 4, make, settings=Settings(seed=1), progress=False, executor=SPEC)
        # the simulator's dead endpoint was set aside by the check: every simulator line went to a
        assert s["generated"] == 4 and a.batch_lines == 4 * 3 and c.batch_lines == 4 * 2
    groups = {g[0] for rnd in parts(folder) for g in rnd}
    assert groups == {a.base_url, c.base_url}


class SlowRefusingUploads(FakeBatchAPI):
    """Refuses every upload (400), after a moment: the other endpoint's batch is made meanwhile."""

    async def _respond(self, method, path, headers, raw):
        if path == "/v1/files" and method == "POST":
            import asyncio

            await asyncio.sleep(0.3)
            return _error(400, "Upload refused (test).", "file")
        return await super()._respond(method, path, headers, raw)


def test_a_part_for_an_endpoint_that_died_goes_to_one_that_is_up_on_the_rerun(tmp_path):
    from recllmsim_hf.errors import ServiceError

    folder = corpus(tmp_path, "c")
    with FakeBatchAPI(end_after=2) as a:
        with SlowRefusingUploads(end_after=2) as b:
            urls = [a.base_url, b.base_url]
            make = lambda c: runner_from_options(c, base_url=urls, api_key="sk-x", model="gpt-4o-mini")  # noqa: E731
            with pytest.raises(ServiceError) as stop:
                generate_conversations(folder, 4, make, settings=Settings(seed=1), progress=False,
                                       executor=SPEC)  # fmt: skip
            assert f"{b.base_url}: uploading the batch file failed (HTTP 400: Upload refused (test).)" in str(
                stop.value
            )
        # a's batch was made (its id is kept: the round stays); b's part never got uploaded; b is gone now
        assert (len(a.batches), a.uploads) == (1, 1)
        lines: list[str] = []
        s = generate_conversations(folder, 4, make, settings=Settings(seed=1), progress=False, executor=SPEC,
                                   log=lines.append)  # fmt: skip
        assert s["generated"] == 4 and a.count == 0 and a.batch_lines == 4 * 5
        moved = f"{b.base_url} is not reachable; sending the part to {a.base_url}"
        assert len([x for x in lines if x.startswith("batch round 0 part ") and x.endswith(moved)]) == 1
        assert a.uploads == len(a.batches) == 1 + 1 + 4  # its part, b's part again, then 4 rounds alone
