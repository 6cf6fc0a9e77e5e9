"""The one-pass shard writer gives the builder's own parquet bytes and split infos."""

import hashlib

import pyarrow.parquet as pq
import pytest
from recllmsim_hf.loading_script.recllmsim import RecLLMSim

from recllmsim_hf.corpus import write_corpus
from recllmsim_hf.dataset.card_stats import read_provenance
from recllmsim_hf.dataset.shards import SplitWriter, _DeferredSplits, write_configs
from recllmsim_hf.features import SPLITS, TABLES
from recllmsim_hf.schema import INTENT_LABELS, Conversation, Profile, Ratings, Scenario, Turn


def corpus(path, n=700):
    """n conversations, several thousand labelled utterances (so several batches per split), some
    conversations filtered out, some without labels, ratings on every third."""
    conversations = []
    for i in range(n):
        turns = []
        for k in range(1 + i % 4):
            turns.append(
                Turn(
                    role="user",
                    content=f"question {k} of {i} " * (1 + i % 5),
                    intent=INTENT_LABELS[(i + k) % 5],
                )
            )
            turns.append(
                Turn(role="assistant", content=f"answer {k} of {i}", hallucination=(i + k) % 11 == 0)
            )
        if i % 13 == 0:  # labels missing on a whole conversation
            turns = [t.model_copy(update={"intent": None, "hallucination": None}) for t in turns]
        conversations.append(
            Conversation(
                conversation_id=f"c{i}",
                task=["recipe planning", "travel planning", "cooking class"][i % 3],
                profile_id=f"p{i % 7}",
                scenario_id=f"s{i % 3}",
                turns=turns,
                ratings=Ratings(diversity=i % 3) if i % 3 == 0 else None,
                extra={"filter": {"passed": i % 17 != 5, "reasons": []}},
            )
        )
    return write_corpus(
        path,
        [Profile(profile_id=f"p{i}", text=f"1. Gender: X\n2. Age: {20 + i % 4}") for i in range(7)],
        [
            Scenario(
                scenario_id=f"s{i}", task=["recipe planning", "travel planning", "cooking class"][i], text="x"
            )
            for i in range(3)
        ],
        conversations,
    )


def digests(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*.parquet")
    }


def builder_output(corpus_dir, table, out, **config):
    builder = RecLLMSim(config_name=table, source=str(corpus_dir), cache_dir=str(out / "cache"), **config)
    builder.download_and_prepare(output_dir=str(out / table), file_format="parquet")
    files = {}
    for path in sorted((out / table).glob("*.parquet")):
        split = path.name.split("-")[1].split(".")[0]
        if pq.read_metadata(path).num_rows:
            files.setdefault(split, []).append(hashlib.sha256(path.read_bytes()).hexdigest())
    return builder.info, files


@pytest.mark.parametrize(("split_by", "spill_rows"), [("utterance", 300), ("conversation", 8000)])
def test_one_pass_gives_the_builders_bytes_and_infos(tmp_path, monkeypatch, split_by, spill_rows):
    monkeypatch.setattr(_DeferredSplits, "spill_rows", spill_rows)  # 300: the rows go through the file
    src = corpus(tmp_path / "corpus")
    infos, provenance = write_configs(src, tmp_path / "fast", list(TABLES), seed=7, split_by=split_by)
    assert provenance == read_provenance(src)
    fast = digests(tmp_path / "fast")
    for table in TABLES:
        info, files = builder_output(src, table, tmp_path / "slow", seed=7, split_by=split_by)
        expected = {
            f"{table}/{split}-{i:05d}-of-{len(shas):05d}.parquet": sha
            for split, shas in files.items()
            for i, sha in enumerate(shas)
        }
        assert {k: v for k, v in fast.items() if k.startswith(f"{table}/")} == expected, table
        sizes = {s: (v.num_examples, v.num_bytes, v.shard_lengths) for s, v in infos[table].splits.items()}
        assert sizes == {s: (v.num_examples, v.num_bytes, v.shard_lengths) for s, v in info.splits.items()}
        assert infos[table].features.to_datasets() == info.features
        assert infos[table].dataset_size == info.dataset_size
    sizes = {s: infos["intent_utterances"].splits[s].num_examples for s in SPLITS["intent_utterances"]}
    assert sum(sizes.values()) > 1000 and sizes["train"] > 1000  # more than one batch
    assert (
        pq.read_metadata(tmp_path / "fast/intent_utterances/train-00000-of-00001.parquet").num_row_groups > 1
    )


def test_release_build_equals_the_builder(built_release, release_dir, tmp_path):
    """The shipped shards of the real release (synthetic and human configs) are the builder's bytes."""
    from recllmsim_hf.sources.staging import stage_source

    staged = stage_source(release_dir, tmp_path / "staged", progress=False)
    for table in ("conversations", "intent_utterances", "human_intent_utterances", "profile_identification"):
        _, files = builder_output(staged, table, tmp_path / "slow")
        for split, shas in files.items():
            assert len(shas) == 1
            path = built_release / table / f"{split}-00000-of-00001.parquet"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == shas[0], path


def test_writer_starts_a_new_shard_where_the_builder_does(tmp_path):
    src = corpus(tmp_path / "corpus", n=1600)
    builder = RecLLMSim(config_name="hallucinations", source=str(src), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare(
        output_dir=str(tmp_path / "slow"), file_format="parquet", max_shard_size=40_000
    )
    slow = sorted((tmp_path / "slow").glob("*.parquet"))
    assert len(slow) > 2
    writer = SplitWriter(tmp_path / "fast", "train", builder.info.features)
    writer.max_shard_bytes = 40_000
    (gen,) = builder._split_generators(None)
    for _, batch in builder._generate_tables(**gen.gen_kwargs):
        writer.add_table(batch)
    info = writer.close()
    fast = sorted((tmp_path / "fast").glob("*.parquet"))
    assert [p.name for p in fast] == [f"train-{i:05d}-of-{len(slow):05d}.parquet" for i in range(len(slow))]
    assert [p.read_bytes() for p in fast] == [p.read_bytes() for p in slow]
    assert info.shard_lengths == builder.info.splits["train"].shard_lengths
    assert info.num_bytes == builder.info.splits["train"].num_bytes


def test_staged_lines_read_back_give_the_same_build(tmp_path, monkeypatch):
    """A corpus too large to keep parsed is read back from its staged lines (pydantic's
    serializer): that build is the same to the byte as the one from the kept records."""
    from human_fixture import make_full_release

    import recllmsim_hf.dataset.configs as configs
    import recllmsim_hf.dataset.human_configs as human_configs
    import recllmsim_hf.sources.staging as staging
    from recllmsim_hf.dataset.build import build_dataset

    source = make_full_release(tmp_path / "release")
    build_dataset(source, tmp_path / "kept", progress=False)
    monkeypatch.setattr(staging, "MEMO_MAX_BYTES", 0)
    monkeypatch.setattr(configs, "MEMO_MAX_BYTES", 0)
    monkeypatch.setattr(human_configs, "remember_human", lambda *a: None)
    configs._memo.clear()
    human_configs._memo.clear()
    build_dataset(source, tmp_path / "read", progress=False)
    kept = {p.relative_to(tmp_path / "kept"): p.read_bytes() for p in (tmp_path / "kept").rglob("*.*")}
    read = {p.relative_to(tmp_path / "read"): p.read_bytes() for p in (tmp_path / "read").rglob("*.*")}
    assert len(kept) > 10 and kept.keys() == read.keys()
    differ = [str(p) for p in kept if kept[p] != read[p] and p.name != ".recllmsim-output.json"]
    assert differ == []
