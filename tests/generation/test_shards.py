"""`--shard K/N`: deterministic slices whose union is the unsharded plan, for conversations and for
annotate (a shard copied out and annotated there); merging corpora refuses conflicting records."""

from __future__ import annotations

import json

import pytest
from fake_openai import FakeOpenAI
from recllmsim_hf.generation.annotate.annotators import annotate_corpus
from recllmsim_hf.generation.llm.options import runner_from_options
from recllmsim_hf.generation.shards import Shard, shard_of
from recllmsim_hf.generation.simulate.conversations import Settings, generate_conversations, plan
from recllmsim_hf.generation.simulate.scenarios import load_scenarios

from recllmsim_hf.corpus import read_jsonl, write_jsonl
from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import Conversation, Profile
from recllmsim_hf.sources.merge import merge_corpora

PROFILES = [Profile(profile_id=str(i), text=f"1. Gender: Female\n2. Age: {50 + i}") for i in range(5)]


def factory(srv):
    return lambda c: runner_from_options(c, base_url=srv.base_url, api_key="sk-shard", model="gpt-4o-mini")


def ids(folder) -> list[str]:
    return [c.conversation_id for c in read_jsonl(folder / "conversations.jsonl", Conversation)]


@pytest.mark.parametrize(
    "text, message", [("1/1", "K must be 0 .. N-1"), ("0/0", "K must be"), ("a/b", "K/N")]
)
def test_bad_shards_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        Shard.parse(text)


def test_every_id_is_in_exactly_one_shard_and_the_union_is_the_plan(tmp_path):
    items = plan(load_scenarios(), PROFILES, 40, seed=9)
    slices = [Shard(k, 4).select(items, key=lambda it: it.conversation_id) for k in range(4)]
    assert sorted(it.index for s in slices for it in s) == list(range(40)) and all(slices)
    assert [shard_of(it.conversation_id, 4) for it in slices[2]] == [2] * len(slices[2])
    with FakeOpenAI(end_after=1) as srv:
        for k in range(4):
            folder = tmp_path / f"s{k}"
            folder.mkdir()
            write_jsonl(folder / "profiles.jsonl", PROFILES)
            s = generate_conversations(folder, 40, factory(srv), settings=Settings(seed=9), shard=f"{k}/4",
                                       progress=False)  # fmt: skip
            assert (s["planned"], s["generated"], s["shard"]) == (len(slices[k]), len(slices[k]), f"{k}/4")
            manifest = json.loads((folder / "manifest.json").read_text())
            assert manifest["generation"]["conversations"]["shard"] == f"{k}/4"
    union = sorted(i for k in range(4) for i in ids(tmp_path / f"s{k}"))
    assert union == sorted(it.conversation_id for it in items)
    merged = merge_corpora([tmp_path / f"s{k}" for k in range(4)], tmp_path / "merged")
    assert sorted(ids(merged)) == union
    manifest = json.loads((merged / "manifest.json").read_text())
    assert [m["conversations"] for m in manifest["generation"]["merged_from"]] == [len(s) for s in slices]
    assert manifest["counts"]["conversations"] == 40 and manifest["counts"]["profiles"] == 5


def test_annotate_shards_cover_the_corpus_once(tmp_path):
    source = tmp_path / "corpus"
    source.mkdir()
    write_jsonl(source / "profiles.jsonl", PROFILES)
    with FakeOpenAI(end_after=2) as srv:
        generate_conversations(source, 9, factory(srv), progress=False)
        before = (source / "conversations.jsonl").read_bytes()
        for k in range(3):
            s = annotate_corpus(
                source, "intent", factory(srv), progress=False, shard=f"{k}/3", out=tmp_path / f"a{k}"
            )
            assert s["missing"] == {"intent": 0}
        # a rerun into the same folder resumes; another shard into it is refused
        again = annotate_corpus(
            source, "intent", factory(srv), progress=False, shard="0/3", out=tmp_path / "a0"
        )
        assert again["annotators"]["intent"]["requests"] == 0
        with pytest.raises(InputError, match="holds shard 0/3 of .* not shard 1/3"):
            annotate_corpus(source, "intent", factory(srv), progress=False, shard="1/3", out=tmp_path / "a0")
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "notes.txt").write_text("mine")
        with pytest.raises(InputError, match="is not a shard copy"):
            annotate_corpus(
                source, "intent", factory(srv), progress=False, shard="1/3", out=tmp_path / "other"
            )
    assert (source / "conversations.jsonl").read_bytes() == before  # the source is never written
    parts = [ids(tmp_path / f"a{k}") for k in range(3)]
    assert sorted(i for p in parts for i in p) == sorted(ids(source))
    for k in range(3):
        for conv in read_jsonl(tmp_path / f"a{k}" / "conversations.jsonl", Conversation):
            assert all(t.intent for t in conv.turns if t.role == "user")


def test_merging_conflicting_profiles_names_them(tmp_path):
    for name, age in (("a", "50"), ("b", "61")):
        folder = tmp_path / name
        folder.mkdir()
        write_jsonl(folder / "profiles.jsonl", [Profile(profile_id="7", text=f"Age {age}")])
        write_jsonl(folder / "scenarios.jsonl", [])
        (folder / "conversations.jsonl").write_text("")
    with pytest.raises(
        InputError, match=r"--source .*b: 1 profile with the same id but other content .*\(7\)"
    ):
        merge_corpora([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
