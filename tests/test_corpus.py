"""Our corpus folder format: write, read, append, repair, validate."""

import json

import pytest

from recllmsim_hf.corpus import Corpus, append_jsonl, read_jsonl, repair_tail, write_corpus
from recllmsim_hf.errors import InputError, ValidationFailed
from recllmsim_hf.schema import Conversation, Manifest, Profile, Scenario, Turn


def records():
    profiles = [
        Profile(profile_id="p1", text="1. Gender: Male"),
        Profile(profile_id="p2", text="1. Gender: Female"),
    ]
    scenarios = [Scenario(scenario_id="s1", task="museum visits", text="Visit a museum.")]
    conversations = [
        Conversation(
            conversation_id=f"c{i}",
            task="museum visits",
            profile_id=f"p{1 + i % 2}",
            scenario_id="s1",
            turns=[Turn(role="user", content=f"hi {i}"), Turn(role="assistant", content="hello")],
        )
        for i in range(3)
    ]
    return profiles, scenarios, conversations


def test_write_then_read_gives_the_same_records(tmp_path):
    profiles, scenarios, conversations = records()
    write_corpus(tmp_path, profiles, scenarios, iter(conversations), Manifest(name="museum"))
    corpus = Corpus(tmp_path)
    assert list(corpus.iter_conversations()) == conversations
    assert list(corpus.profiles.values()) == profiles
    assert corpus.tasks == ["museum visits"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"] == {"profiles": 2, "scenarios": 1, "conversations": 3}


def test_same_records_give_the_same_bytes(tmp_path):
    for d in ("a", "b"):
        write_corpus(tmp_path / d, *records())
    for name in ("profiles.jsonl", "scenarios.jsonl", "conversations.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_repair_tail_cuts_only_an_unterminated_last_line(tmp_path):
    path = tmp_path / "c.jsonl"
    _, _, conversations = records()
    for c in conversations[:2]:
        append_jsonl(path, c)
    whole = path.read_bytes()
    assert repair_tail(path) is False
    with open(path, "ab") as f:
        f.write(b'{"conversation_id": "c9", "tur')
    assert repair_tail(path) is True
    assert path.read_bytes() == whole
    assert [c.conversation_id for c in read_jsonl(path, Conversation)] == ["c0", "c1"]


def test_bad_line_names_file_line_and_field(tmp_path):
    path = tmp_path / "profiles.jsonl"
    path.write_text('{"profile_id": "p1", "text": "ok"}\n{"profile_id": "", "text": "x"}\n')
    with pytest.raises(
        ValidationFailed, match=r"profiles.jsonl:2: profile_id: String should have at least 1"
    ):
        list(read_jsonl(path, Profile))


def test_problems_are_collected_not_raised(tmp_path):
    profiles, scenarios, conversations = records()
    write_corpus(tmp_path, profiles, scenarios, conversations)
    with open(tmp_path / "conversations.jsonl", "a") as f:
        f.write(
            '{"conversation_id": "c0", "task": "t", "profile_id": "p1", "scenario_id": "s1", '
            '"turns": [{"role": "user", "content": "x"}]}\n'
        )
        f.write(
            '{"conversation_id": "c7", "task": "t", "profile_id": "nobody", "scenario_id": "s1", '
            '"turns": [{"role": "user", "content": "x"}]}\n'
        )
        f.write("{not json\n")
    problems = []
    n = sum(1 for _ in Corpus(tmp_path, problems).iter_conversations())
    messages = [str(p) for p in problems]
    assert n == 4
    assert len(problems) == 3
    assert "duplicate id, but got 'c0'" in messages[0]
    assert "profile_id: no such profile in profiles.jsonl, but got 'nobody'" in messages[1]
    assert "conversations.jsonl:6: not valid JSON" in messages[2]


def test_not_a_corpus_folder(tmp_path):
    with pytest.raises(InputError, match="not a corpus folder"):
        Corpus(tmp_path)
