"""Conversations against the local fake OpenAI server: assignment, the two-LLM loop and its end
prompt, what is stored, resume, failures and bad input."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from fake_openai import END_PROMPT, FakeOpenAI
from recllmsim_hf.generation.llm.options import runner_from_options
from recllmsim_hf.generation.simulate import prompts
from recllmsim_hf.generation.simulate.conversations import (
    Settings,
    conversation_id,
    generate_conversations,
    plan,
)
from recllmsim_hf.generation.simulate.scenarios import load_scenarios

from recllmsim_hf.corpus import Corpus, read_jsonl, write_jsonl
from recllmsim_hf.errors import InputError, ValidationFailed
from recllmsim_hf.schema import Conversation, Profile

PROFILES = [
    Profile(
        profile_id=str(i),
        text=f"1. Gender: {['Female', 'Male'][i % 2]}\n2. Age: {30 + i}\n4. Occupation: job {i}",
    )
    for i in range(6)
]


def corpus_with_profiles(tmp_path):
    write_jsonl(tmp_path / "profiles.jsonl", PROFILES)
    return tmp_path


def factory(srv, key="sk-conv-secret", **kw):
    return lambda corpus: runner_from_options(
        corpus, base_url=srv.base_url, api_key=key, model="sim-1", assistant_model="asst-1",
        backoff_base=0.001, backoff_max=0.01, **kw,
    )  # fmt: skip


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_plan_balances_scenarios_and_profiles_and_is_prefix_stable():
    scenarios = load_scenarios()
    items = plan(scenarios, PROFILES, 66, seed=3)
    assert Counter(it.scenario.scenario_id for it in items) == {s.scenario_id: 3 for s in scenarios}
    assert Counter(it.profile.profile_id for it in items) == {p.profile_id: 11 for p in PROFILES}
    assert [it.conversation_id for it in plan(scenarios, PROFILES, 10, seed=3)] == [
        it.conversation_id for it in items[:10]
    ]
    assert len({it.conversation_id for it in items}) == 66
    assert items[5].conversation_id == conversation_id(
        3, 5, items[5].scenario.scenario_id, items[5].profile.profile_id
    )
    other = plan(scenarios, PROFILES, 66, seed=4)
    assert [it.profile.profile_id for it in other] != [it.profile.profile_id for it in items]


def test_plan_needs_scenarios_and_profiles():
    with pytest.raises(InputError, match="no profiles"):
        plan(load_scenarios(), [], 3, 0)
    with pytest.raises(InputError, match="no scenarios"):
        plan([], PROFILES, 3, 0)


def test_conversations_follow_the_paper_loop(tmp_path):
    corpus = corpus_with_profiles(tmp_path)
    with FakeOpenAI(end_after=3) as srv:
        summary = generate_conversations(corpus, 8, factory(srv), settings=Settings(seed=5), progress=False)
        requests = [r["body"] for r in srv.requests]
    assert summary["generated"] == 8 and summary["failed"] == 0 and summary["in_file"] == 8
    assert summary["passed_filter"] == 8
    assert len(requests) == 8 * 7  # 4 simulator + 3 assistant calls each

    convs = list(read_jsonl(corpus / "conversations.jsonl", Conversation))
    items = plan(load_scenarios(), PROFILES, 8, seed=5)
    assert [c.conversation_id for c in sorted(convs, key=lambda c: c.conversation_id)] == [
        it.conversation_id for it in items
    ]
    for c in convs:
        assert [t.role for t in c.turns] == ["user", "assistant"] * 3
        assert c.end_reason == "goodbye"
        assert all(END_PROMPT not in t.content and "[System]" not in t.content for t in c.turns)
        g = c.generation
        assert (g.simulator_model, g.assistant_model, g.seed, g.max_turns) == ("sim-1", "asst-1", 5, 10)
        assert g.prompt_version == prompts.PROMPT_VERSION
        assert g.simulator_temperature == 1.0 and g.assistant_temperature == 1.0
        assert g.usage.prompt_tokens > 0 and g.usage.completion_tokens > 0
        assert g.started_at.endswith("Z") and g.duration_s >= 0
        assert g.extra["closing_message"] == "Thank you, goodbye."
        assert g.extra["requests"] == 7
        assert c.extra["filter"]["passed"] is True

    # The simulator: setup prompt with profile and scenario, opens the chat, and sees every
    # assistant reply with the end prompt appended.
    sims = [b for b in requests if b["model"] == "sim-1"]
    assistants = [b for b in requests if b["model"] == "asst-1"]
    assert len(sims) == 32 and len(assistants) == 24
    conv0 = next(c for c in convs if c.conversation_id == items[0].conversation_id)
    last_sim = max(
        (b for b in sims if items[0].profile.text in b["messages"][0]["content"]
         and items[0].scenario.text in b["messages"][0]["content"]),
        key=lambda b: len(b["messages"]),
    )  # fmt: skip
    msgs = last_sim["messages"]
    assert msgs[0]["role"] == "system" and msgs[1] == {"role": "user", "content": prompts.SIMULATOR_KICKOFF}
    assert [m["role"] for m in msgs[2:]] == ["assistant", "user"] * 3
    assert [m["content"] for m in msgs[2::2]] == [t.content for t in conv0.turns if t.role == "user"]
    assert [m["content"] for m in msgs[3::2]] == [
        f"{t.content}\n\n{END_PROMPT}" for t in conv0.turns if t.role == "assistant"
    ]
    # The assistant: a plain assistant that sees only the user/assistant turns.
    for b in assistants:
        assert b["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
        text = json.dumps(b["messages"])
        assert END_PROMPT not in text and "Occupation" not in text and "role-play" not in text
    longest = max(assistants, key=lambda b: len(b["messages"]))
    assert [m["role"] for m in longest["messages"][1:]] == ["user", "assistant"] * 2 + ["user"]

    # The corpus builds into what `recllmsim build` reads.
    corpus_obj = Corpus(corpus)
    assert len(corpus_obj.scenarios) == 22 and len(corpus_obj.profiles) == 6
    assert len(list(corpus_obj.iter_conversations())) == 8
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["counts"] == {
        "conversations": 8,
        "conversations_passed": 8,
        "profiles": 6,
        "scenarios": 22,
    }
    assert manifest["generation"]["conversations"]["settings"]["seed"] == 5


def test_max_turns_ends_the_conversation(tmp_path):
    corpus = corpus_with_profiles(tmp_path)
    with FakeOpenAI(end_after=50) as srv:
        summary = generate_conversations(
            corpus, 3, factory(srv), settings=Settings(max_turns=2), tasks=["recipe planning"], progress=False
        )
    assert summary["passed_filter"] == 0
    for c in read_jsonl(corpus / "conversations.jsonl", Conversation):
        assert c.task == "recipe planning" and len(c.turns) == 4 and c.end_reason == "max_turns"
        assert c.extra["filter"]["reasons"] == ["not_ended"]
        assert c.generation.extra["closing_message"].startswith("I would like more details on option 2")


def test_goodbye_at_once_is_kept_and_filtered(tmp_path):
    corpus = corpus_with_profiles(tmp_path)
    with FakeOpenAI(replier=lambda messages, body: "Thank you, goodbye!") as srv:
        generate_conversations(corpus, 2, factory(srv), progress=False)
    for c in read_jsonl(corpus / "conversations.jsonl", Conversation):
        assert [t.role for t in c.turns] == ["user"] and c.end_reason == "goodbye"
        assert c.extra["filter"]["reasons"] == ["no_exchange"]


def test_a_cut_off_turn_is_marked_and_ends_the_conversation(tmp_path):
    corpus = corpus_with_profiles(tmp_path)
    with FakeOpenAI(end_after=3) as srv:
        generate_conversations(corpus, 1, factory(srv), settings=Settings(max_tokens=5), progress=False)
    (c,) = read_jsonl(corpus / "conversations.jsonl", Conversation)
    # The simulator's first message is cut: no assistant reply or later turn is paid for.
    assert [t.extra for t in c.turns] == [{"finish_reason": "length"}] and c.end_reason == "cut_off"
    assert srv.count == 1 and c.generation.extra["requests"] == 1
    assert "cut_off_turn" in c.extra["filter"]["reasons"] and not c.extra["filter"]["passed"]


def test_resume_skips_finished_ids_and_repairs_a_cut_line(tmp_path):
    corpus = corpus_with_profiles(tmp_path)
    with FakeOpenAI(end_after=2) as srv:
        generate_conversations(corpus, 5, factory(srv), progress=False)
        first = (corpus / "conversations.jsonl").read_bytes()
        # A killed writer leaves a cut last line.
        with open(corpus / "conversations.jsonl", "ab") as f:
            f.write(b'{"conversation_id": "c000005-')
        summary = generate_conversations(corpus, 9, factory(srv, no_cache=True), progress=False)
        assert summary["already_done"] == 5 and summary["generated"] == 4
        assert (corpus / "conversations.jsonl").read_bytes().startswith(first)
        ids = [r["conversation_id"] for r in lines(corpus / "conversations.jsonl")]
        assert len(ids) == 9 == len(set(ids))
        # The same command again: nothing to do, no request, no runner.
        count = srv.count
        again = generate_conversations(corpus, 9, None, progress=False)
        assert again["generated"] == 0 and again["already_done"] == 9 and srv.count == count


def test_the_cache_replays_a_deleted_corpus_file_at_zero_cost(tmp_path):
    corpus = corpus_with_profiles(tmp_path)
    with FakeOpenAI(end_after=2) as srv:
        generate_conversations(corpus, 4, factory(srv), progress=False)
        before = [
            {k: v for k, v in r.items() if k != "generation"} for r in lines(corpus / "conversations.jsonl")
        ]
        (corpus / "conversations.jsonl").unlink()
        count = srv.count
        summary = generate_conversations(corpus, 4, factory(srv), progress=False)
        assert srv.count == count and summary["llm"]["cache_hits"] == 4 * 5
    after = [{k: v for k, v in r.items() if k != "generation"} for r in lines(corpus / "conversations.jsonl")]
    assert sorted(after, key=str) == sorted(before, key=str)


def test_failed_conversations_are_not_written_and_a_rerun_redoes_them(tmp_path):
    corpus = corpus_with_profiles(tmp_path)
    with FakeOpenAI(end_after=1, rate_500=1.0) as srv:
        summary = generate_conversations(corpus, 3, factory(srv, max_retries=1), progress=False)
    assert summary["failed"] == 3 and summary["generated"] == 0
    assert "HTTP 500" in summary["first_error"] and "sk-conv-secret" not in summary["first_error"]
    assert (corpus / "conversations.jsonl").read_bytes() == b""
    with FakeOpenAI(end_after=1) as srv:
        summary = generate_conversations(corpus, 3, factory(srv), progress=False)
    assert summary["generated"] == 3 and len(lines(corpus / "conversations.jsonl")) == 3


def test_lines_of_another_plan_are_kept_and_counted(tmp_path):
    corpus = corpus_with_profiles(tmp_path)
    with FakeOpenAI(end_after=1) as srv:
        generate_conversations(corpus, 2, factory(srv), settings=Settings(seed=1), progress=False)
        summary = generate_conversations(corpus, 2, factory(srv), settings=Settings(seed=2), progress=False)
    assert summary["generated"] == 2 and summary["in_file"] == 4 and summary["not_in_plan"] == 2


def test_profiles_file_is_copied_in_and_must_not_change(tmp_path):
    source = tmp_path / "mine.jsonl"
    write_jsonl(source, PROFILES[:2])
    corpus = tmp_path / "corpus"
    with FakeOpenAI(end_after=1) as srv:
        generate_conversations(corpus, 2, factory(srv), profiles_file=source, progress=False)
        assert (corpus / "profiles.jsonl").read_bytes() == source.read_bytes()
        write_jsonl(source, PROFILES[:3])
        with pytest.raises(InputError, match=r"--profiles .*mine\.jsonl: differs from .*profiles\.jsonl"):
            generate_conversations(corpus, 2, factory(srv), profiles_file=source, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": -3}, InputError, r"^-n: must be 0 or more, but got -3$"),
        ({"settings": Settings(max_turns=0)}, InputError, r"^--max-turns: must be at least 1, but got 0$"),
        ({"tasks": ["cooking"]}, InputError, r"^--tasks: unknown task 'cooking'"),
        (
            {"settings": Settings(assistant_temperature=3)},
            InputError,
            r"^--assistant-temperature: must be between",
        ),
        ({"settings": Settings(max_tokens=0)}, InputError, r"^--max-tokens: must be at least 1, but got 0$"),
        (
            {"settings": Settings(language="fr")},
            InputError,
            r"^--language: must be one of \['en', 'zh', 'any'\]",
        ),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, message):
    corpus = corpus_with_profiles(tmp_path)
    args = {"n": 3, **kwargs}
    with pytest.raises(error, match=message):
        generate_conversations(corpus, args.pop("n"), None, progress=False, **args)
    assert not (corpus / "conversations.jsonl").exists()


def test_missing_and_broken_profiles(tmp_path):
    with pytest.raises(InputError, match=r"profiles\.jsonl: missing; run `recllmsim generate profiles"):
        generate_conversations(tmp_path, 3, None, progress=False)
    (tmp_path / "profiles.jsonl").write_text('{"profile_id": "0", "text": ""}\n')
    with pytest.raises(
        ValidationFailed, match=r"profiles\.jsonl:1: text: String should have at least 1 character"
    ):
        generate_conversations(tmp_path, 3, None, progress=False)


def test_a_damaged_middle_line_stops_the_run_without_touching_the_file(tmp_path):
    corpus = corpus_with_profiles(tmp_path)
    with FakeOpenAI(end_after=1) as srv:
        generate_conversations(corpus, 2, factory(srv), progress=False)
    path = corpus / "conversations.jsonl"
    damaged = b"not json\n" + path.read_bytes()
    path.write_bytes(damaged)
    with pytest.raises(InputError, match=r"conversations\.jsonl:1: not a conversation record"):
        generate_conversations(corpus, 3, None, progress=False)
    assert path.read_bytes() == damaged
