"""`annotate --evaluate`: agreement of the LLM annotators with the release's human labels.

The fake server answers from the human labels of the real release (looked up from the
request text), with a deterministic share of planted disagreements, so every metric has an
exact expected value computed here by hand.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from functools import partial

import pytest
from fake_openai import FakeOpenAI
from recllmsim_hf.generation.annotate.agreement import agreement, draw, evaluate_annotators, format_report
from recllmsim_hf.generation.annotate.prompts import transcript
from recllmsim_hf.generation.llm.options import runner_from_options

from recllmsim_hf.corpus import Corpus
from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import INTENT_LABELS, RATING_METRICS, Conversation, Ratings, Turn
from recllmsim_hf.sources.staging import stage_source

KEY = "sk-agreement-test-0b7e2d"
SAMPLE, SEED = 8, 3


def flipped(text: str, one_in: int) -> bool:
    return hashlib.sha256(text.encode()).digest()[1] % one_in == 0


def between(text: str, tag: str) -> str:
    return re.search(rf"<{tag}>\n(.*)\n</{tag}>", text, re.S).group(1)


class HumanLike:
    """Replies the human label, except for a planted, deterministic share of items."""

    def __init__(self, corpus: Corpus):
        self.intent, self.hallucination, self.ratings = {}, {}, {}
        for conv in corpus.iter_conversations():
            turns = conv.turns
            for i, turn in enumerate(turns):
                before = turns[i - 1].content if i else "(none: this is the first message)"
                if turn.intent is not None:
                    self.intent.setdefault((before, turn.content), turn.intent)
                if turn.hallucination is not None:
                    self.hallucination.setdefault((before, turn.content), turn.hallucination)
            if conv.ratings is not None:
                self.ratings.setdefault(transcript([(t.role, t.content) for t in turns]), conv.ratings)

    def intent_for(self, before: str, text: str) -> str:
        label = self.intent[(before, text)]
        if flipped(text, 4):  # one in four: the next label instead
            label = INTENT_LABELS[(INTENT_LABELS.index(label) + 1) % len(INTENT_LABELS)]
        return label

    def hallucination_for(self, before: str, text: str) -> bool:
        return self.hallucination[(before, text)] or flipped(text, 6)

    def ratings_for(self, text: str) -> dict:
        ratings = self.ratings[text].model_dump()
        if flipped(text, 2):
            ratings["diversity"] = (ratings["diversity"] + 1) % 3
        return ratings

    def __call__(self, schema: dict, messages: list[dict], body: dict):
        prompt = messages[-1]["content"]
        if schema["title"] == "IntentAnnotation":
            before = between(prompt, "previous_assistant_message")
            return {"intent": self.intent_for(before, between(prompt, "utterance"))}
        if schema["title"] == "HallucinationAnnotation":
            wrong = self.hallucination_for(between(prompt, "user_message"), between(prompt, "reply"))
            return {"hallucination": wrong, "reason": "planted" if wrong else ""}
        return {"notes": "", **self.ratings_for(between(prompt, "conversation"))}


@pytest.fixture(scope="module")
def staged(release_dir, tmp_path_factory) -> Corpus:
    return Corpus(stage_source(release_dir, tmp_path_factory.mktemp("staged") / "corpus", progress=False))


@pytest.fixture(scope="module")
def evaluated(release_dir, staged, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    replier = HumanLike(staged)
    with FakeOpenAI(json_replier=replier) as srv:
        make_runner = partial(runner_from_options, base_url=srv.base_url, api_key=KEY, model="gpt-4o-mini")
        report = evaluate_annotators(release_dir, out, make_runner, sample=SAMPLE, seed=SEED, progress=False)
        sent = srv.count
        # the same release, already staged as a corpus folder: the same sample, all from the cache
        again = evaluate_annotators(staged.path, out, make_runner, sample=SAMPLE, seed=SEED, progress=False)
        resent = srv.count - sent
    return out, report, replier, again, resent


def kappa(pairs: list[tuple]) -> float:
    """Cohen's kappa by hand: (observed - chance) / (1 - chance)."""
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    left, right = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(left[k] * right[k] for k in left) / n**2
    return (observed - chance) / (1 - chance)


def expected_pairs(staged: Corpus, replier: HumanLike, ids: list[str]):
    convs = {c.conversation_id: c for c in staged.iter_conversations() if c.conversation_id in ids}
    intent, hall, diversity = [], [], []
    for cid in ids:
        turns = convs[cid].turns
        for i, turn in enumerate(turns):
            before = turns[i - 1].content if i else "(none: this is the first message)"
            if turn.intent is not None:
                intent.append((turn.intent, replier.intent_for(before, turn.content)))
            if turn.hallucination is not None:
                hall.append((turn.hallucination, replier.hallucination_for(before, turn.content)))
        text = transcript([(t.role, t.content) for t in turns])
        diversity.append((convs[cid].ratings.diversity, replier.ratings_for(text)["diversity"]))
    return intent, hall, diversity


def test_the_sample_is_drawn_by_seed_from_the_release(evaluated, staged):
    out, report, _, _, _ = evaluated
    ids = [c.conversation_id for c in Corpus(out / "sample").iter_conversations()]
    assert ids == draw([c.conversation_id for c in staged.iter_conversations()], SAMPLE, SEED)
    assert report["sample"] == SAMPLE and report["available"] == 1856
    assert draw(ids, 3, 1) != draw(ids, 3, 2)


def test_agreement_matches_the_planted_disagreements(evaluated, staged):
    out, report, replier, _, _ = evaluated
    ids = [c.conversation_id for c in Corpus(out / "sample").iter_conversations()]
    intent, hall, diversity = expected_pairs(staged, replier, ids)
    got = report["agreement"]
    assert got["intent"]["n"] == len(intent) > 20 and got["intent"]["errors"] == 0
    assert got["intent"]["accuracy"] == pytest.approx(sum(a == b for a, b in intent) / len(intent))
    assert got["intent"]["accuracy"] < 1
    assert got["intent"]["kappa"] == pytest.approx(kappa(intent), abs=1e-6)
    assert sum(map(sum, got["intent"]["confusion"]["matrix"])) == len(intent)
    assert got["hallucination"]["accuracy"] == pytest.approx(sum(a == b for a, b in hall) / len(hall))
    assert got["hallucination"]["positives"]["annotator"] == sum(b for _, b in hall) > 0
    quality = got["quality"]
    assert quality["diversity"]["exact"] == pytest.approx(sum(a == b for a, b in diversity) / SAMPLE)
    assert quality["diversity"]["exact"] < 1
    for metric in RATING_METRICS:
        if metric != "diversity":
            assert (quality[metric]["exact"], quality[metric]["mean_abs_diff"]) == (1.0, 0.0), metric
    assert json.loads((out / "report.json").read_text())["agreement"] == got
    assert "intent" in format_report(report) and "weighted kappa" in format_report(report)


def test_rerun_replays_from_the_cache_and_key_is_written_nowhere(evaluated):
    out, report, _, again, resent = evaluated
    assert resent == 0
    assert again["agreement"] == report["agreement"]
    assert KEY not in json.dumps(report)
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_the_annotated_copy_has_no_human_labels_left(evaluated, staged):
    out, _, replier, _, _ = evaluated
    copy = list(Corpus(out / "sample").iter_conversations())
    assert all("annotation" in c.extra for c in copy)
    first = copy[0].turns[0]
    assert first.intent == replier.intent_for("(none: this is the first message)", first.content)


def test_evaluate_rejects_annotators_without_a_human_reference(release_dir, tmp_path):
    with pytest.raises(InputError, match="--what: --evaluate compares intent, hallucination, quality"):
        evaluate_annotators(release_dir, tmp_path, lambda p: None, what="intent,summary")


def test_kappa_is_null_when_undefined_and_quadratic_weights_count_distance():
    def conv(cid, intents, ratings):
        turns = [Turn(role="user", content=str(i), intent=x) for i, x in enumerate(intents)]
        return Conversation(conversation_id=cid, task="t", profile_id="1", scenario_id="s", turns=turns,
                            ratings=Ratings(**ratings))  # fmt: skip

    human = [conv("a", ["Planning", "Planning"], {"diversity": 2}), conv("b", ["Planning"], {"diversity": 0})]
    machine = {
        "a": conv("a", ["Planning", "Planning"], {"diversity": 1}),
        "b": conv("b", ["Planning"], {"diversity": 2}),
    }
    got = agreement(human, machine, ["intent", "quality"])
    assert got["intent"]["accuracy"] == 1.0 and got["intent"]["kappa"] is None  # one label on both sides
    assert got["quality"]["diversity"]["exact"] == 0.0 and got["quality"]["diversity"]["mean_abs_diff"] == 1.5
    assert got["quality"]["diversity"]["weighted_kappa"] == pytest.approx(1 - 5 / 3, abs=1e-6)  # by hand
    assert got["quality"]["memorization"]["n"] == 0 and got["quality"]["memorization"]["exact"] is None


def test_evaluate_runs_through_the_batch_api_with_the_same_report(evaluated, staged, tmp_path):
    from batch_server import FakeBatchAPI
    from recllmsim_hf.generation.llm.executors import ExecutorSpec

    _, online, replier, _, _ = evaluated
    spec = ExecutorSpec.parse("openai-batch", poll_interval=0.001, poll_max=0.01)
    with FakeBatchAPI(json_replier=replier) as srv:
        make_runner = partial(runner_from_options, base_url=srv.base_url, api_key=KEY, model="gpt-4o-mini")
        report = evaluate_annotators(staged.path, tmp_path / "eval", make_runner, sample=SAMPLE, seed=SEED,
                                     progress=False, executor=spec)  # fmt: skip
        assert srv.count == 0 and srv.batches and srv.batch_lines == report["annotation"]["usage"]["calls"]
    assert report["agreement"] == online["agreement"]
    assert report["annotation"]["executor"]["executor"] == "openai-batch"
    cost = online["annotation"]["usage"]["cost_usd"]
    assert report["annotation"]["usage"]["cost_usd"] == pytest.approx(cost / 2)
    assert sorted(p.name for p in (tmp_path / "eval/sample/.batch/annotate").iterdir())[0] == "round-0000"
