"""`build`: the real release into parquet + card, determinism, atomicity, loading."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from release_fixture import make_release

from recllmsim_hf.dataset.build import build_dataset
from recllmsim_hf.errors import InputError, ValidationFailed
from recllmsim_hf.features import TABLES


def table_hashes(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.glob("*/*.parquet")):
        table = pq.read_table(path)
        digest = hashlib.sha256()
        for batch in table.to_batches():
            digest.update(json.dumps(batch.to_pylist(), sort_keys=True, ensure_ascii=False).encode())
        out[str(path.relative_to(folder))] = digest.hexdigest()
    return out


def test_release_sizes(built_release):
    sizes = {
        p.relative_to(built_release).as_posix(): pq.read_metadata(p).num_rows
        for p in built_release.glob("*/*.parquet")
    }
    assert sizes == {
        "conversations/train-00000-of-00001.parquet": 1856,
        "profiles/train-00000-of-00001.parquet": 100,
        "intent_utterances/train-00000-of-00001.parquet": 5676,
        "intent_utterances/validation-00000-of-00001.parquet": 710,
        "intent_utterances/test-00000-of-00001.parquet": 710,
        "hallucinations/train-00000-of-00001.parquet": 7103,
        "quality_scores/train-00000-of-00001.parquet": 1856,
        # the release's human studies (issue 11); the five above are as before
        "human_conversations/train-00000-of-00001.parquet": 2124,
        "human_profiles/train-00000-of-00001.parquet": 146,
        "human_intent_utterances/train-00000-of-00001.parquet": 1075,
        "human_intent_utterances/validation-00000-of-00001.parquet": 134,
        "human_intent_utterances/test-00000-of-00001.parquet": 134,
        "profile_identification/train-00000-of-00001.parquet": 3152,
        "profile_identification/validation-00000-of-00001.parquet": 417,
        "profile_identification/test-00000-of-00001.parquet": 411,
    }


def test_profiles_mark_duplicate_texts(built_release):
    rows = pq.read_table(built_release / "profiles").to_pylist()
    assert len(rows) == 100
    assert sum(r["duplicate_of"] is None for r in rows) == 85
    assert sum(r["num_conversations"] for r in rows) == 1856


def test_hallucination_rows(built_release):
    rows = pq.read_table(built_release / "hallucinations").to_pylist()
    assert sum(r["hallucination"] for r in rows) == 39


def test_two_builds_give_identical_tables_and_bytes(built_release, release_dir, tmp_path):
    again = tmp_path / "again"
    build_dataset(release_dir, again, progress=False)
    assert table_hashes(again) == table_hashes(built_release)
    for path in sorted(built_release.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (again / path.relative_to(built_release)).read_bytes(), path


def test_load_dataset_from_the_parent_folder(built_release):
    code = """
import json, datasets
out = {}
for name in ["conversations", "profiles", "intent_utterances", "hallucinations", "quality_scores", "intent"]:
    ds = datasets.load_dataset("recllmsim", name)
    out[name] = {split: d.num_rows for split, d in ds.items()}
ds = datasets.load_dataset("recllmsim", "intent")
out["names"] = ds["train"].features["label"].names
out["tasks"] = ds["train"].features["task"].names
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=built_release.parent, capture_output=True, text=True, env=os.environ
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["intent"] == {"train": 5676, "validation": 710, "test": 710}
    assert out["intent_utterances"] == out["intent"]
    assert out["conversations"] == {"train": 1856} and out["quality_scores"] == {"train": 1856}
    assert out["hallucinations"] == {"train": 7103} and out["profiles"] == {"train": 100}
    assert out["names"] == ["Search", "Recommendation", "Search & Recommendation", "Planning", "Others"]
    assert out["tasks"] == [
        "travel planning",
        "skills learning planning",
        "recipe planning",
        "preparing gifts",
    ]


def test_conversation_split_option(release_dir, tmp_path):
    out = tmp_path / "by-conv"
    summary = build_dataset(release_dir, out, split_by="conversation", progress=False)
    sizes = summary["configs"]["intent_utterances"]
    assert sum(sizes.values()) == 7096
    owners = {}
    for split in ("train", "validation", "test"):
        for cid in pq.read_table(out / "intent_utterances" / f"{split}-00000-of-00001.parquet")[
            "conversation_id"
        ]:
            owners.setdefault(cid.as_py(), set()).add(split)
    assert all(len(s) == 1 for s in owners.values())
    assert len(owners) == 1856


def test_failed_build_leaves_previous_output_untouched(tmp_path):
    src = make_release(tmp_path / "rel")
    out = tmp_path / "out"
    build_dataset(src, out, progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = src / "LLM_agent_user" / "recipe planning" / "1.json"
    bad.write_text(bad.read_text()[:100])
    with pytest.raises(ValidationFailed, match=r"recipe planning/1.json: not valid JSON"):
        build_dataset(src, out, progress=False)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "rel"]


def test_a_folder_the_build_did_not_write_is_never_replaced(tmp_path):
    """`--out ../shared/data` (the folder holding the release) must not be swapped out and deleted."""
    src = make_release(tmp_path / "data" / "rel")
    with pytest.raises(
        InputError,
        match=r"--out .*/data: contains the source .*/data/rel; pass a folder outside the source",
    ):
        build_dataset(src, tmp_path / "data", progress=False)
    assert len(list((tmp_path / "data" / "rel" / "LLM_agent_user").rglob("*.json"))) == 15
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("my notes\n")
    with pytest.raises(InputError, match=r"holds 1 entry that `recllmsim build` did not write \(README.md"):
        build_dataset(src, notes, progress=False)
    assert (notes / "README.md").read_text() == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "notes"]  # no work folder left
    (tmp_path / "empty").mkdir()
    build_dataset(src, tmp_path / "empty", progress=False)
    build_dataset(src, tmp_path / "empty", seed=7, progress=False)  # an earlier build is replaced
    assert (tmp_path / "empty" / "conversations").is_dir()


def test_out_folder_gets_the_umask_mode_not_0700(tmp_path):
    old = os.umask(0o022)
    try:
        build_dataset(make_release(tmp_path / "rel"), tmp_path / "out", progress=False)
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_small_release_tables(tmp_path):
    summary = build_dataset(make_release(tmp_path / "rel"), tmp_path / "out", progress=False)
    # 5 folders x 3 files with 2, 3, 2 user turns each
    assert sum(summary["configs"]["intent_utterances"].values()) == 35
    assert summary["configs"]["conversations"] == {"train": 15}
    assert summary["configs"]["profiles"] == {"train": 2}
    assert set(TABLES) == set(summary["configs"])


def test_unannotated_corpus_ships_only_configs_with_rows(tmp_path):
    """A generated corpus before annotation: no intent, hallucination or quality rows."""
    from recllmsim_hf.corpus import write_corpus
    from recllmsim_hf.schema import Conversation, Profile, Scenario, Turn

    conversations = [
        Conversation(
            conversation_id=f"g-{i}",
            task="museum visits",
            profile_id="p",
            scenario_id="s",
            turns=[Turn(role="user", content="Which museum?"), Turn(role="assistant", content="The Louvre.")],
        )
        for i in range(3)
    ]
    corpus = write_corpus(
        tmp_path / "corpus",
        [Profile(profile_id="p", text="1. Gender: Male")],
        [Scenario(scenario_id="s", task="museum visits", text="Visit a museum.")],
        conversations,
    )
    summary = build_dataset(corpus, tmp_path / "out", progress=False)
    assert summary["configs"]["intent_utterances"] == {}
    assert summary["configs"]["conversations"] == {"train": 3}
    assert sorted(p.parent.name for p in (tmp_path / "out").glob("*/*.parquet")) == [
        "conversations",
        "profiles",
    ]
    code = (
        "import datasets, json; ds = datasets.load_dataset('out', 'conversations'); "
        "print(json.dumps([ds['train'].num_rows, ds['train'].features['task'].names]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    rows, names = json.loads(result.stdout.strip().splitlines()[-1])
    assert rows == 3 and names[4] == "museum visits"
    # and the command's summary says so instead of leaving the sizes blank
    recllmsim = str(Path(sys.executable).with_name("recllmsim"))
    cli = subprocess.run(
        [recllmsim, "build", "--source", str(corpus), "--out", "out2", "-q"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in cli.stdout.splitlines()[1:]}
    assert lines["intent_utterances"] == "no rows (not shipped)" and lines["conversations"] == "train 3"


def test_a_killed_builds_work_folder_is_swept_and_nothing_else(tmp_path):
    """SIGKILL leaves `.OUT.building-*` behind; the next build into OUT removes it when its marker
    names a process of this host that no longer runs, and keeps every other folder."""
    import socket

    from tiny_corpus import write_tiny_corpus

    from recllmsim_hf.dataset.build import BUILDING, build_dataset

    corpus = write_tiny_corpus(tmp_path / "corpus")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(gone.stdout)
    host = socket.gethostname()

    def left(name: str, owner) -> Path:
        folder = tmp_path / name
        (folder / "_staged").mkdir(parents=True)
        (folder / "_staged" / "conversations.jsonl").write_text("{}\n")
        if owner is not None:
            (folder / BUILDING).write_text(json.dumps(owner))
        return folder

    killed = left(".ds.building-killed", {"pid": dead_pid, "host": host})
    running = left(".ds.building-running", {"pid": os.getpid(), "host": host})
    elsewhere = left(".ds.building-other-host", {"pid": dead_pid, "host": host + "-not"})
    unmarked = left(".ds.building-unmarked", None)
    other_out = left(".other.building-killed", {"pid": dead_pid, "host": host})
    build_dataset(corpus, tmp_path / "ds", progress=False)
    assert not killed.exists()
    assert all(p.exists() for p in (running, elsewhere, unmarked, other_out))
    assert not (tmp_path / "ds" / BUILDING).exists()  # the finished build does not carry it
    assert sorted(p.name for p in tmp_path.glob(".ds.building-*")) == [
        ".ds.building-other-host", ".ds.building-running", ".ds.building-unmarked",
    ]  # fmt: skip
