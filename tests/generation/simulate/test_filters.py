"""Basic filtering: one test per rule, the raw/filtered table, and `filter_corpus` with the LLM check
against the local fake OpenAI server."""

from __future__ import annotations

import json

import pytest
from fake_openai import FakeOpenAI
from recllmsim_hf.generation.llm.options import runner_from_options
from recllmsim_hf.generation.simulate.filters import check_rules, filter_corpus, table

from recllmsim_hf.corpus import read_jsonl, write_corpus
from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import Conversation, Profile, Scenario, Turn

GOOD_USER = "I am planning a weekend trip and I would like to stay somewhere quiet."
GOOD_ASSISTANT = "Sure. Here are three quiet towns within two hours by train, with a small inn in each."


def conv(
    *texts: str, end_reason: str = "goodbye", cid: str = "c1", extra: dict | None = None
) -> Conversation:
    turns = [
        Turn(role="user" if i % 2 == 0 else "assistant", content=t, extra=(extra or {}).get(i, {}))
        for i, t in enumerate(texts)
    ]
    return Conversation(
        conversation_id=cid,
        task="travel planning",
        profile_id="0",
        scenario_id="s1",
        turns=turns,
        end_reason=end_reason,
    )


def test_a_clean_conversation_passes():
    verdict = check_rules(conv(GOOD_USER, GOOD_ASSISTANT))
    assert verdict == {
        "passed": True,
        "reasons": [],
        "turns": {},
        "rules": "rules-1",
        "language": "en",
        "llm": None,
    }


def test_not_ended():
    assert check_rules(conv(GOOD_USER, GOOD_ASSISTANT, end_reason="max_turns"))["reasons"] == ["not_ended"]


def test_no_exchange():
    assert check_rules(conv("Thank you, goodbye."))["reasons"] == ["no_exchange"]


def test_empty_turn():
    verdict = check_rules(conv(GOOD_USER, "   "))
    assert verdict["reasons"] == ["empty_turn"] and verdict["turns"] == {"empty_turn": [1]}


def test_cut_off_turn():
    verdict = check_rules(conv(GOOD_USER, GOOD_ASSISTANT, extra={1: {"finish_reason": "length"}}))
    assert verdict["reasons"] == ["cut_off_turn"] and verdict["turns"] == {"cut_off_turn": [1]}


def test_prompt_leak():
    leaked = GOOD_USER + " [System]: If you wish to conclude this conversation, please reply"
    assert check_rules(conv(GOOD_USER, GOOD_ASSISTANT, leaked, GOOD_ASSISTANT))["turns"] == {
        "prompt_leak": [2]
    }


@pytest.mark.parametrize(
    "text",
    [
        "How can I help you plan your trip today?",
        "As an AI, I do not travel, but I can suggest places.",
        "Here's a detailed itinerary for your weekend: day one, the old town.",
        "I'd be happy to help with your recipe!",
    ],
)
def test_simulator_acting_as_the_assistant(text):
    verdict = check_rules(conv(GOOD_USER, GOOD_ASSISTANT, text, GOOD_ASSISTANT))
    assert verdict["reasons"] == ["simulator_as_assistant"] and verdict["turns"] == {
        "simulator_as_assistant": [2]
    }


def test_simulator_writing_a_long_list_answer():
    answer = "\n".join(
        f"{i}. Visit the museum number {i} and have lunch at the market nearby. " * 4 for i in range(1, 7)
    )
    assert len(answer) > 1200
    assert check_rules(conv(answer, GOOD_ASSISTANT))["reasons"] == ["simulator_as_assistant"]
    # The same list from the assistant is what assistants do.
    assert check_rules(conv(GOOD_USER, answer))["passed"]


def test_wrong_language():
    chinese = "我想计划一次周末旅行，希望住在安静的地方，预算不要太高，谢谢你的帮助。"
    verdict = check_rules(conv(GOOD_USER, chinese))
    assert verdict["reasons"] == ["wrong_language"] and verdict["turns"] == {"wrong_language": [1]}
    assert check_rules(conv(chinese, chinese + chinese), language="zh")["passed"]
    assert check_rules(conv(GOOD_USER, GOOD_ASSISTANT), language="zh")["reasons"] == ["wrong_language"]
    assert check_rules(conv(GOOD_USER, chinese), language="any")["passed"]
    # Accented Latin letters and a few foreign words are still English.
    assert check_rules(conv("I love crème brûlée and the café near the Musée d'Orsay.", GOOD_ASSISTANT))[
        "passed"
    ]


def test_several_reasons_are_all_listed():
    verdict = check_rules(conv("How can I help you?", "", end_reason="max_turns"))
    assert verdict["reasons"] == ["not_ended", "simulator_as_assistant", "empty_turn"]
    assert not verdict["passed"]


def test_table_counts_raw_and_filtered_like_table_1():
    convs = [
        conv(GOOD_USER, GOOD_ASSISTANT, cid="a"),
        conv(GOOD_USER, GOOD_ASSISTANT, GOOD_USER, GOOD_ASSISTANT, cid="b"),
        conv(GOOD_USER, GOOD_ASSISTANT, end_reason="max_turns", cid="c"),
    ]
    for c in convs:
        c.extra["filter"] = check_rules(c)
    result = table(convs)
    words = len(GOOD_USER.split()) + len(GOOD_ASSISTANT.split())
    assert result["raw"] == {
        "scenarios": 1,
        "conversations": 3,
        "avg_utterances": round(8 / 3, 2),
        "avg_words": round(4 * words / 3, 2),
    }
    assert result["filtered"] == {
        "scenarios": 1,
        "conversations": 2,
        "avg_utterances": 3.0,
        "avg_words": 1.5 * words,
    }
    assert result["reasons"] == {"not_ended": 1}
    assert result["by_task"] == {"travel planning": {"raw": 3, "filtered": 2}}


# -- filter_corpus ---------------------------------------------------------------------------------------


def factory(srv, **kw):
    def make(corpus):
        return runner_from_options(
            corpus, base_url=srv.base_url, api_key="sk-filter", model="judge-1",
            backoff_base=0.001, backoff_max=0.002, **kw,
        )  # fmt: skip

    return make


def small_corpus(tmp_path):
    convs = [
        conv(GOOD_USER, GOOD_ASSISTANT, cid="a"),
        conv(GOOD_USER + " Also, museums please.", GOOD_ASSISTANT, cid="b"),
        conv("How can I help you?", GOOD_ASSISTANT, cid="c"),
    ]
    scen = Scenario(scenario_id="s1", task="travel planning", text="You plan a weekend trip.")
    write_corpus(tmp_path, [Profile(profile_id="0", text="1. Gender: Female")], [scen], convs)
    return tmp_path


def test_filter_corpus_writes_verdicts_and_counts(tmp_path):
    corpus = small_corpus(tmp_path)
    summary = filter_corpus(corpus, progress=False)
    assert summary["raw"]["conversations"] == 3 and summary["filtered"]["conversations"] == 2
    assert summary["reasons"] == {"simulator_as_assistant": 1} and summary["llm_errors"] == 0
    stored = {
        c.conversation_id: c.extra["filter"]["passed"]
        for c in read_jsonl(corpus / "conversations.jsonl", Conversation)
    }
    assert stored == {"a": True, "b": True, "c": False}
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["counts"]["conversations"] == 3 and manifest["counts"]["conversations_passed"] == 2
    # Same input, same bytes.
    before = (corpus / "conversations.jsonl").read_bytes()
    filter_corpus(corpus, progress=False)
    assert (corpus / "conversations.jsonl").read_bytes() == before


def test_filter_corpus_with_the_llm_check(tmp_path):
    corpus = small_corpus(tmp_path)

    def judge(schema, messages, body):
        text = messages[-1]["content"]
        on_task = "museums" not in text  # the fake judge dislikes conversation b
        return {
            "user_stays_user": True,
            "assistant_stays_assistant": True,
            "on_task": on_task,
            "complete": True,
            "reason": "fine" if on_task else "drifts to museums",
        }

    with FakeOpenAI(json_replier=judge) as srv:
        summary = filter_corpus(corpus, runner_factory=factory(srv), progress=False)
        sent = srv.count
    assert sent == 2  # conversation c fails the rules and is not sent
    assert summary["filtered"]["conversations"] == 1
    assert summary["reasons"] == {"llm:on_task": 1, "simulator_as_assistant": 1}
    stored = {
        c.conversation_id: c.extra["filter"] for c in read_jsonl(corpus / "conversations.jsonl", Conversation)
    }
    assert stored["b"]["llm"] == {
        "model": "judge-1",
        "passed": False,
        "failed": ["on_task"],
        "reason": "drifts to museums",
        "structured_output": "json_schema",
    }
    assert stored["a"]["passed"] and stored["a"]["llm"]["passed"]
    assert stored["c"]["llm"] is None


def test_filter_corpus_records_llm_errors_and_keeps_the_rule_verdict(tmp_path):
    corpus = small_corpus(tmp_path)
    with FakeOpenAI(rate_500=1.0) as srv:
        summary = filter_corpus(corpus, runner_factory=factory(srv, max_retries=1), progress=False)
    assert summary["llm_errors"] == 2 and summary["filtered"]["conversations"] == 2
    stored = {
        c.conversation_id: c.extra["filter"] for c in read_jsonl(corpus / "conversations.jsonl", Conversation)
    }
    assert stored["a"]["passed"] and "HTTP 500" in stored["a"]["llm"]["error"]


def test_filter_corpus_bad_inputs(tmp_path):
    with pytest.raises(InputError, match=r"conversations\.jsonl: missing; pass a corpus folder"):
        filter_corpus(tmp_path, progress=False)
    with pytest.raises(InputError, match=r"--language: must be one of \['en', 'zh', 'any'\], but got 'fr'"):
        filter_corpus(small_corpus(tmp_path), language="fr", progress=False)
