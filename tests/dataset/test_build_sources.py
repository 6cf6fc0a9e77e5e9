"""`recllmsim build --source A --source B ...` with the one-pass build, the card flags and the
human-study configs: generated corpora merge into the five synthetic configs (no human-study
config, whatever the card flags); a release, or a corpus holding the human studies or written by
the release importer, is refused with one line before anything is read or written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from human_fixture import make_full_release
from release_fixture import make_release
from test_cli_build import run
from tiny_corpus import write_tiny_corpus

from recllmsim_hf.dataset.build import build_dataset
from recllmsim_hf.dataset.card_settings import CardSettings
from recllmsim_hf.errors import InputError
from recllmsim_hf.features import TABLES
from recllmsim_hf.sources.staging import stage_source

ALONE = "a release is built alone (--source once); --source merges only generated corpus folders"


def halves(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The tiny corpus whole, and split into two corpora (conversations 0-2 and 3-4) that share
    its profiles, scenarios and manifest."""
    whole = write_tiny_corpus(tmp_path / "whole")
    lines = (whole / "conversations.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, part in ((a, lines[:3]), (b, lines[3:])):
        shutil.copytree(whole, folder)
        (folder / "conversations.jsonl").write_text("".join(part), encoding="utf-8")
    return whole, a, b


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_two_generated_corpora_build_like_the_whole_with_the_card_flags(tmp_path):
    whole, a, b = halves(tmp_path)
    one = build_dataset(whole, tmp_path / "one", progress=False)
    settings = CardSettings(name="merged-sim", pretty_name="Merged Sim", license="mit")
    two = build_dataset([a, b], tmp_path / "two", progress=False, card=settings)
    assert two["configs"] == one["configs"]
    assert sorted(two["configs"]) == sorted(TABLES)  # the five synthetic configs, no human-study one
    assert two["configs"]["conversations"] == {"train": 4}  # tiny-3 failed the filters
    assert two["source"] == f"{a}, {b}"
    for table in TABLES:
        for shard in sorted((tmp_path / "one" / table).glob("*.parquet")):
            assert (tmp_path / "two" / table / shard.name).read_bytes() == shard.read_bytes(), shard
    card = (tmp_path / "two" / "README.md").read_text(encoding="utf-8")
    assert "\n# Merged Sim\n" in card and "- **License:** mit\n" in card
    assert 'ds = load_dataset("your-name/merged-sim", "intent")' in card
    assert "human_conversations" not in card and "profile_identification" not in card
    assert leftovers(tmp_path) == []


def test_merged_corpora_without_flags_are_titled_by_the_first_corpus(tmp_path):
    _, a, b = halves(tmp_path)
    manifest = json.loads((b / "manifest.json").read_text())
    (b / "manifest.json").write_text(json.dumps({**manifest, "name": "second corpus"}))
    build_dataset([a, b], tmp_path / "ds", progress=False)
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert "\n# tiny test corpus: RecLLMSim-style conversations\n" in card
    assert "- **License:** unknown (not set" in card and "second corpus" not in card


def test_a_release_folder_is_not_merged_with_a_corpus(tmp_path):
    _, a, _ = halves(tmp_path)
    release = make_full_release(tmp_path / "rel")
    result = run("build", "--source", str(a), "--source", str(release), "--out", "ds", "-q", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"recllmsim: error: --source {release}: not a corpus folder but a release; {ALONE}\n"
    )
    assert not (tmp_path / "ds").exists() and leftovers(tmp_path) == []


def test_an_archive_url_is_refused_before_it_is_fetched(tmp_path):
    _, a, _ = halves(tmp_path)
    url = "http://127.0.0.1:9/recllmsim-release.zip"  # nothing listens there: fetching would fail otherwise
    with pytest.raises(InputError) as err:
        build_dataset([url, a], tmp_path / "ds", progress=False)
    assert str(err.value) == f"--source {url}: not a corpus folder but a release; {ALONE}"


def test_a_corpus_with_the_human_studies_is_not_merged(tmp_path):
    _, a, _ = halves(tmp_path)
    staged = stage_source(make_full_release(tmp_path / "rel"), tmp_path / "staged", progress=False)
    assert (staged / "human_conversations.jsonl").is_file()
    before = {p.name: p.read_bytes() for p in staged.iterdir()}
    result = run("build", "--source", str(a), "--source", str(staged), "--out", "ds", "-q", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (
        f"recllmsim: error: --source {staged}: holds the human studies (human_conversations.jsonl); {ALONE}\n"
    )
    assert {p.name: p.read_bytes() for p in staged.iterdir()} == before
    assert not (tmp_path / "ds").exists()
    # built alone, the same corpus has the human-study configs
    alone = build_dataset(staged, tmp_path / "alone", progress=False)
    assert {"human_conversations", "profile_identification"} <= set(alone["configs"])


def test_a_corpus_the_release_importer_wrote_is_not_merged(tmp_path):
    _, a, _ = halves(tmp_path)
    staged = stage_source(make_release(tmp_path / "rel"), tmp_path / "staged", progress=False)
    assert not (staged / "human_conversations.jsonl").exists()
    with pytest.raises(InputError) as err:
        build_dataset([staged, a], tmp_path / "ds", progress=False)
    assert str(err.value) == f"--source {staged}: manifest.json created_by is the release importer; {ALONE}"
    assert not (tmp_path / "ds").exists()
