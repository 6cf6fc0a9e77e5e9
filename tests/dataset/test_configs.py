"""Row generation and the seeded split rule."""

import random

from recllmsim_hf.corpus import CONVERSATIONS, write_corpus
from recllmsim_hf.dataset.configs import iter_rows, make_splitter, split_sizes
from recllmsim_hf.features import task_names
from recllmsim_hf.schema import Conversation, Profile, Scenario, Turn


def corpus(tmp_path, n=60, name="c"):
    conversations = [
        Conversation(
            conversation_id=f"conv-{i}",
            task="recipe planning",
            profile_id="p",
            scenario_id="s",
            turns=[
                t
                for k in range(1 + i % 3)
                for t in (
                    Turn(role="user", content=f"u{i}.{k}", intent="Planning" if k else "Search"),
                    Turn(
                        role="assistant", content=f"a{i}.{k}", hallucination=False, reason="No Hallucination"
                    ),
                )
            ],
        )
        for i in range(n)
    ]
    return write_corpus(
        tmp_path / name,
        [Profile(profile_id="p", text="1. Gender: Male")],
        [Scenario(scenario_id="s", task="recipe planning", text="Cook.")],
        conversations,
    )


def splits(path, seed=42, by="utterance"):
    splitter = make_splitter(path, seed, by)
    names = task_names()
    return {
        s: [r["utterance_id"] for r in iter_rows("intent_utterances", path, names, s, splitter)]
        for s in ("train", "validation", "test")
    }


def test_split_sizes_are_8_1_1_rounded_half_up():
    assert split_sizes(7096) == (5676, 710, 710)
    assert split_sizes(10) == (8, 1, 1)
    assert split_sizes(5) == (3, 1, 1)
    assert split_sizes(0) == (0, 0, 0)


def test_utterance_split_is_exact_and_a_partition(tmp_path):
    s = splits(corpus(tmp_path))
    total = sum(len(v) for v in s.values())
    assert total == 120
    assert tuple(len(s[k]) for k in ("train", "validation", "test")) == split_sizes(120)
    assert len(set().union(*s.values())) == total


def test_split_does_not_depend_on_line_order(tmp_path):
    path = corpus(tmp_path)
    before = splits(path)
    lines = (path / CONVERSATIONS).read_text().splitlines(keepends=True)
    random.Random(3).shuffle(lines)
    (path / CONVERSATIONS).write_text("".join(lines))
    after = splits(path)
    assert {k: sorted(v) for k, v in before.items()} == {k: sorted(v) for k, v in after.items()}


def test_seed_changes_the_split(tmp_path):
    path = corpus(tmp_path)
    assert splits(path, seed=1)["test"] != splits(path, seed=2)["test"]


def test_conversation_split_keeps_each_conversation_in_one_split(tmp_path):
    s = splits(corpus(tmp_path), by="conversation")
    owners = {}
    for split, ids in s.items():
        for uid in ids:
            owners.setdefault(uid.rsplit("-", 1)[0], set()).add(split)
    assert len(owners) == 60
    assert all(len(v) == 1 for v in owners.values())
    by_split = {split: sum(1 for v in owners.values() if split in v) for split in s}
    assert by_split == {"train": 48, "validation": 6, "test": 6}


def test_context_is_the_preceding_turn(tmp_path):
    path = corpus(tmp_path)
    rows = {r["utterance_id"]: r for r in iter_rows("intent_utterances", path, task_names())}
    assert rows["conv-2-0"]["context"] == ""
    assert rows["conv-2-2"]["context"] == "a2.0"
    halluc = {r["utterance_id"]: r for r in iter_rows("hallucinations", path, task_names())}
    assert halluc["conv-2-1"]["context"] == "u2.0"


def test_failed_conversations_stay_out(tmp_path):
    path = corpus(tmp_path, n=4)
    lines = (path / CONVERSATIONS).read_text().splitlines()
    lines[0] = lines[0].replace(
        '"extra":{}', '"extra":{"filter":{"passed":false,"reasons":["never ended"]}}', 1
    )
    (path / CONVERSATIONS).write_text("\n".join(lines) + "\n")
    ids = [r["conversation_id"] for r in iter_rows("conversations", path, task_names())]
    assert ids == ["conv-1", "conv-2", "conv-3"]
