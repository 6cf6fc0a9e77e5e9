"""`annotate`: the LLM annotators against the local fake OpenAI server (tests/fake_openai.py).

The server's structured-output replier is scripted from the request text: it answers every
annotator validly, except for planted items ("Shopping" as an intent, 7 as a rating) that
must be retried, then recorded as errors.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fake_openai import FakeOpenAI
from procs import sigint_default
from pydantic import ValidationError
from recllmsim_hf.generation.annotate.annotators import annotate_corpus
from recllmsim_hf.generation.annotate.jobs import parse_what
from recllmsim_hf.generation.annotate.prompts import (
    HallucinationAnnotation,
    IntentAnnotation,
    PreferenceSummary,
    QualityAnnotation,
    Translation,
)
from recllmsim_hf.generation.llm import BudgetExceeded
from recllmsim_hf.generation.llm.options import runner_from_options

from recllmsim_hf.corpus import CONVERSATIONS, Corpus, write_corpus
from recllmsim_hf.errors import InputError, ServiceError
from recllmsim_hf.schema import INTENT_LABELS, RATING_METRICS, Conversation, Profile, Ratings, Scenario, Turn

KEY = "sk-annotate-test-5f3c9a1e77"
ALL = "intent,hallucination,quality,summary,translation"
FALSE_FACT = "The Eiffel Tower is in Rome."


def between(text: str, tag: str) -> str:
    return re.search(rf"<{tag}>\n(.*)\n</{tag}>", text, re.S).group(1)


def label_for(utterance: str) -> str:
    return INTENT_LABELS[hashlib.sha256(utterance.encode()).digest()[0] % len(INTENT_LABELS)]


def scripted(schema: dict, messages: list[dict], body: dict):
    """A valid answer for every annotator; planted invalid ones for 'INVALID' and 'BADRATING'."""
    prompt = messages[-1]["content"]
    kind = schema["title"]
    if kind == "IntentAnnotation":
        utterance = between(prompt, "utterance")
        return {"intent": "Shopping" if "INVALID" in utterance else label_for(utterance)}
    if kind == "HallucinationAnnotation":
        wrong = FALSE_FACT in between(prompt, "reply")
        return {"hallucination": wrong, "reason": "The Eiffel Tower is in Paris." if wrong else ""}
    if kind == "QualityAnnotation":
        ratings = {m: min(top, 1) for m, (_, top) in RATING_METRICS.items()}
        if "BADRATING" in prompt:
            ratings["diversity"] = 7
        return {"notes": "fine", **ratings}
    if kind == "PreferenceSummary":
        return {"phrases": ["vegetarian dishes", "small budget", "quick recipes"]}
    if kind == "Translation":
        return {"translation": "译文：" + between(prompt, "text")[:12]}
    raise AssertionError(kind)


CLI = [sys.executable, "-c", "from recllmsim_hf.cli import main; main()"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def cli_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default
    )


def make_corpus(root: Path, invalid: bool = True) -> Path:
    """Two profiles, two scenarios, four conversations (one failed by the filters)."""
    profiles = [
        Profile(profile_id="1", text="1. Gender: Female\n2. Age: 31\n7. Dining Preferences: Vegetarian"),
        Profile(profile_id="2", text="1. Gender: Male\n2. Age: 58", text_zh="1. 性别：男\n2. 年龄：58"),
    ]
    scenarios = [
        Scenario(
            scenario_id="recipe_planning-0", task="recipe planning", text="Cook dinner for three friends."
        ),
        Scenario(scenario_id="travel_planning-1", task="travel planning", text="Plan three days in Paris."),
    ]

    def conv(cid, pid, sid, *texts, **kw):
        turns = [Turn(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(texts)]
        task = "recipe planning" if sid.startswith("recipe") else "travel planning"
        return Conversation(
            conversation_id=cid, task=task, profile_id=pid, scenario_id=sid, turns=turns, **kw
        )

    bad = "INVALID " if invalid else ""
    c1 = conv("c1", "1", "recipe_planning-0", "Hi! Please help me plan a dinner.",
              "Sure: a lentil curry and rice.", f"{bad}Which spices do I need?",
              "Cumin, turmeric and garam masala.", "Thank you, goodbye.")  # fmt: skip
    c2 = conv("c2", "2", "travel_planning-1", "I want three days in Paris.",
              f"Day one: the Louvre. {FALSE_FACT}", "Thank you, goodbye.")  # fmt: skip
    c2.turns[0].intent = "Planning"  # a human label: kept, not asked again
    c2.ratings = Ratings(diversity=2)  # one human rating: kept, the other six are filled
    c3 = conv("c3", "1", "travel_planning-1", "Plan Paris for me." + (" BADRATING" if invalid else ""),
              "Day one: Montmartre.", "Thank you, goodbye.")  # fmt: skip
    c4 = conv("c4", "2", "recipe_planning-0", "Hello", "Hi", extra={"filter": {"passed": False}})
    return write_corpus(root, profiles, scenarios, [c1, c2, c3, c4])


def runner_factory(srv: FakeOpenAI, **kw):
    kw = {"max_retries": 2, "backoff_base": 0.001, "backoff_max": 0.005, "timeout": 5.0} | kw
    return partial(runner_from_options, base_url=srv.base_url, api_key=KEY, model="gpt-4o-mini", **kw)


def read(corpus: Path) -> dict[str, Conversation]:
    return {c.conversation_id: c for c in Corpus(corpus).iter_conversations()}


def corpus_bytes(corpus: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in corpus.iterdir() if p.is_file()}


@pytest.fixture
def annotated(tmp_path):
    """The corpus after one full pass, with the server and the summary."""
    corpus = make_corpus(tmp_path / "corpus")
    with FakeOpenAI(json_replier=scripted) as srv:
        summary = annotate_corpus(corpus, ALL, runner_factory(srv), progress=False)
        bodies = [r["body"] for r in srv.requests]
    return corpus, summary, bodies


def test_every_item_gets_an_annotation_or_a_recorded_error(annotated):
    corpus, summary, _ = annotated
    convs = read(corpus)
    c1, c2, c3 = convs["c1"], convs["c2"], convs["c3"]
    assert [t.intent for t in c1.turns if t.role == "user"] == [
        label_for("Hi! Please help me plan a dinner."), None, label_for("Thank you, goodbye.")
    ]  # fmt: skip
    assert c1.extra["annotation"]["intent"]["errors"][0]["turn"] == 2
    assert "IntentAnnotation" in c1.extra["annotation"]["intent"]["errors"][0]["error"]
    assert c1.extra["annotation"]["intent"]["model"] == "gpt-4o-mini"
    # provenance names the items the annotator answered (c2's first intent and diversity are human)
    assert c1.extra["annotation"]["intent"]["turns"] == [0, 4] and c2.extra["annotation"]["intent"][
        "turns"
    ] == [2]
    assert c2.extra["annotation"]["quality"]["metrics"] == [m for m in RATING_METRICS if m != "diversity"]
    # every assistant reply judged; the reason only where a hallucination was found
    judged = [(t.hallucination, t.reason) for c in (c1, c2, c3) for t in c.turns if t.role == "assistant"]
    assert judged == [(False, None), (False, None), (True, "The Eiffel Tower is in Paris."), (False, None)]
    assert c1.ratings == Ratings(**{m: min(top, 1) for m, (_, top) in RATING_METRICS.items()})
    assert c2.ratings.diversity == 2 and c2.ratings.memorization == 1  # human rating kept, the rest filled
    assert (
        c3.ratings is None and "QualityAnnotation" in c3.extra["annotation"]["quality"]["errors"][0]["error"]
    )
    assert c1.preference_summary == ["vegetarian dishes", "small budget", "quick recipes"]
    assert all(t.content_zh.startswith("译文：") for c in (c1, c2, c3) for t in c.turns)
    assert c1.profile_zh == "译文：1. Gender: F" and c2.profile_zh == "1. 性别：男\n2. 年龄：58"
    assert c2.scenario_zh == "译文：Plan three d"
    assert summary["missing"] == {
        "intent": 1,
        "hallucination": 0,
        "quality": 1,
        "summary": 0,
        "translation": 0,
    }
    assert summary["annotators"]["intent"]["errors"] == 1 and summary["annotators"]["quality"]["errors"] == 1
    profiles = {p.profile_id: p for p in Corpus(corpus).profiles.values()}
    assert (
        profiles["1"].text_zh == "译文：1. Gender: F" and profiles["2"].text_zh == "1. 性别：男\n2. 年龄：58"
    )


def test_human_labels_and_filtered_conversations_are_not_asked(annotated):
    corpus, _, bodies = annotated
    prompts = [b["messages"][-1]["content"] for b in bodies]
    assert not any("<utterance>\nI want three days in Paris.\n</utterance>" in p for p in prompts)
    assert not any("Hello" in p and "Hi" in p and "<text>" not in p for p in prompts)
    c4 = read(corpus)["c4"]
    assert c4.turns[0].intent is None and c4.ratings is None and "annotation" not in c4.extra


def test_invalid_outputs_are_retried_then_recorded(annotated):
    _, summary, bodies = annotated
    invalid = [b for b in bodies if "INVALID" in b["messages"][-1]["content"] and "<utterance>" in str(b)]
    assert len(invalid) == 2  # an answer that cannot improve gets one more try, then its error is recorded
    assert summary["usage"]["retries"] == 2 and summary["usage"]["errors"] == 2
    assert "reply began" in summary["first_error"]


def test_rerun_asks_only_for_what_is_missing_and_replays_the_rest(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", invalid=False)
    with FakeOpenAI(json_replier=scripted) as srv:
        first = annotate_corpus(corpus, ALL, runner_factory(srv), progress=False)
        sent = srv.count
        again = annotate_corpus(corpus, ALL, runner_factory(srv), progress=False)
        assert srv.count == sent  # nothing missing: zero HTTP requests
        redo = annotate_corpus(corpus, ALL, runner_factory(srv), progress=False, overwrite=True)
        # only the two items that had human labels (c2's first intent, profile 2's translation) are new
        assert srv.count == sent + 2
        after_redo = corpus_bytes(corpus)
        annotate_corpus(corpus, ALL, runner_factory(srv), progress=False, overwrite=True)
        assert srv.count == sent + 2  # everything from the cache
    assert first["missing"] == dict.fromkeys(first["what"], 0)
    assert again["estimate"]["requests"] == 0
    assert redo["estimate"]["cached"] == redo["estimate"]["requests"] - 2
    assert corpus_bytes(corpus) == after_redo  # same input, same bytes


def test_rerun_asks_again_only_for_the_items_that_failed(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    with FakeOpenAI(json_replier=scripted) as srv:
        annotate_corpus(corpus, ALL, runner_factory(srv), progress=False)

    def fixed(schema, messages, body):  # the planted items now get valid answers
        text = messages[-1]["content"].replace("INVALID ", "").replace(" BADRATING", "")
        return scripted(schema, [{"role": "user", "content": text}], body)

    with FakeOpenAI(json_replier=fixed) as srv:
        summary = annotate_corpus(corpus, ALL, runner_factory(srv), progress=False)
        assert srv.count == 2  # c1's third intent and c3's ratings; nothing else is asked again
    c1, c3 = read(corpus)["c1"], read(corpus)["c3"]
    assert c1.turns[2].intent == label_for("Which spices do I need?")
    assert c1.extra["annotation"]["intent"] == {
        "model": "gpt-4o-mini", "prompt_version": "recllmsim-annotate-1", "errors": [], "turns": [0, 2, 4],
        "structured_output": "json_schema",
    }  # fmt: skip
    assert c3.ratings.preference_alignment == 1 and c3.extra["annotation"]["quality"]["errors"] == []
    assert summary["missing"] == dict.fromkeys(summary["what"], 0)


def test_budget_refuses_before_any_call_when_the_estimate_is_above_it(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", invalid=False)
    with FakeOpenAI(json_replier=scripted) as srv:
        with pytest.raises(
            InputError, match=r"^--budget-usd 1e-06: the estimated cost is 0\.00\d+ USD for 30 calls"
        ):
            annotate_corpus(corpus, ALL, runner_factory(srv, budget_usd=1e-6), progress=False)
        assert srv.count == 0


def test_budget_stop_leaves_the_corpus_untouched_and_the_rerun_resumes(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", invalid=False)
    before = corpus_bytes(corpus)
    # output tokens at 1000 USD per 1M: the estimate (6 intents x 8 tokens) is 0.048 USD and fits the
    # budget, but the runner reserves the worst case (40 tokens) per call and stops part-way
    prices = tmp_path / "prices.yaml"
    prices.write_text("gpt-4o-mini: {input: 0, output: 1000}\n")
    lines = []
    with FakeOpenAI(json_replier=scripted) as srv:
        factory = runner_factory(srv, budget_usd=0.048, prices=prices, concurrency=1)
        with pytest.raises(BudgetExceeded, match="rerun with a larger budget"):
            annotate_corpus(corpus, "intent", factory, progress=False, log=lines.append)
        stopped_after = srv.count
        assert lines[0].startswith("estimate: 6 calls (0 cached, free; 6 to send)")
        assert lines[0].endswith(
            "~0.0480 USD with gpt-4o-mini (prices as of 2026-06; at most 0.5280 USD if every call needs its "
            "one retry)"
        )
        assert 0 < stopped_after < 6
        assert corpus_bytes(corpus) == before  # nothing written
        summary = annotate_corpus(corpus, "intent", runner_factory(srv), progress=False)
    assert summary["estimate"]["cached"] == stopped_after
    assert summary["usage"]["cache_hits"] == stopped_after
    assert srv.count == 6
    assert summary["missing"] == {"intent": 0}


def test_ctrl_c_leaves_the_corpus_untouched_and_the_rerun_resumes(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", invalid=False)
    before = corpus_bytes(corpus)
    with FakeOpenAI(json_replier=scripted, latency=0.15) as srv:
        args = ["annotate", "--corpus", str(corpus), "--base-url", srv.base_url, "--api-key", KEY]
        proc = cli_process(*args, "--concurrency", "1", "--quiet")
        deadline = time.monotonic() + 60
        while srv.count < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        interrupted_after = srv.count
        assert proc.returncode == 130, err
        assert corpus_bytes(corpus) == before
        assert not [p for p in corpus.iterdir() if p.name.startswith(".conversations")]  # no temp file left
        summary = annotate_corpus(corpus, ALL, runner_factory(srv), progress=False)
    assert summary["usage"]["cache_hits"] >= 3 and interrupted_after < 28
    assert summary["missing"] == dict.fromkeys(summary["what"], 0)


def test_refused_key_leaves_the_corpus_untouched(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    before = corpus_bytes(corpus)
    with FakeOpenAI(json_replier=scripted, script=["401"]) as srv:
        with pytest.raises(ServiceError, match="refused the request"):
            annotate_corpus(corpus, "intent", runner_factory(srv, concurrency=1), progress=False)
    assert corpus_bytes(corpus) == before


def test_build_fills_intent_hallucination_and_quality_tables(annotated, tmp_path):
    from recllmsim_hf.dataset.build import build_dataset

    corpus, _, _ = annotated
    out = tmp_path / "built"
    build_dataset(corpus, out, progress=False)
    intents = [r for p in (out / "intent_utterances").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    assert sorted(r["utterance_id"] for r in intents) == ["c1-0", "c1-4", "c2-0", "c2-2", "c3-0", "c3-2"]
    hall = pq.read_table(out / "hallucinations").to_pylist()
    assert [(r["utterance_id"], r["hallucination"]) for r in hall] == [
        ("c1-1", False), ("c1-3", False), ("c2-1", True), ("c3-1", False)
    ]  # fmt: skip
    quality = {r["conversation_id"]: r for r in pq.read_table(out / "quality_scores").to_pylist()}
    assert quality["c2"]["diversity"] == 2 and quality["c1"]["preference_alignment"] == 1
    assert "c3" not in quality  # its rating failed: no row, never a default score


def test_api_key_is_written_nowhere(annotated):
    corpus, summary, _ = annotated
    assert KEY not in json.dumps(summary)
    for path in corpus.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


# -- the answer models: each invalid case -------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "payload", "message"),
    [
        (IntentAnnotation, {"intent": "Shopping"}, "Input should be 'Search'"),
        (HallucinationAnnotation, {"hallucination": True, "reason": " "}, "needs its reason"),
        (QualityAnnotation, {"notes": "", **dict.fromkeys(RATING_METRICS, 1), "diversity": 7}, "diversity"),
        (
            QualityAnnotation,
            {"notes": "", **dict.fromkeys(RATING_METRICS, 1), "memorization": 2},
            "memorization",
        ),
        (PreferenceSummary, {"phrases": ["a", "b"]}, "at least 3 items"),
        (PreferenceSummary, {"phrases": list("abcdef")}, "at most 5 items"),
        (PreferenceSummary, {"phrases": ["a", "", "c"]}, "a phrase is empty"),
        (Translation, {"translation": "  "}, "the translation is empty"),
        (IntentAnnotation, {"intent": "Planning", "why": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_answer_models_reject(model, payload, message):
    with pytest.raises(ValidationError, match=message):
        model.model_validate_json(json.dumps(payload))


@pytest.mark.parametrize(
    ("what", "message"), [("intent,shopping", "unknown annotator 'shopping'"), (" , ", "empty")]
)
def test_parse_what_rejects(what, message):
    with pytest.raises(InputError, match=message):
        parse_what(what)


# -- the command line -------------------------------------------------------------------------------


def test_cli_annotate_prints_the_estimate_then_the_summary(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", invalid=False)
    with FakeOpenAI(json_replier=scripted) as srv:
        args = ["annotate", "--corpus", str(corpus), "--what", "intent,quality", "--base-url", srv.base_url]
        done = cli(*args, "--api-key", KEY, "--json", "--quiet", "--max-retries", "1")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("estimate: 9 calls (0 cached, free; 9 to send)")
    summary = json.loads(done.stdout)
    assert summary["missing"] == {"intent": 0, "quality": 0} and summary["usage"]["requests"] == 9
    assert KEY not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--what", "intent,shopping"], "recllmsim: error: --what: unknown annotator 'shopping'"),
        (["--evaluate", "--corpus", "x"], "--corpus is not used with --evaluate"),
        ([], "--corpus is required"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    corpus = make_corpus(tmp_path / "corpus")
    if not args or args[0] == "--what":
        args = (["--corpus", str(corpus)] if args else []) + args
    done = cli("annotate", *args, "--base-url", "http://127.0.0.1:9/v1")
    assert done.returncode != 0 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_cli_rejects_a_folder_that_is_not_a_corpus(tmp_path):
    done = cli("annotate", "--corpus", str(tmp_path), "--base-url", "http://127.0.0.1:9/v1")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"recllmsim: error: --corpus {tmp_path}: not a corpus folder (no {CONVERSATIONS}); pass the "
        "folder written by `recllmsim generate`, or use --evaluate to compare the annotators with the "
        "release's labels"
    )
