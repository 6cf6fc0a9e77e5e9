"""`recllmsim_hf.load`: build when missing, then load one config."""

import pytest
from release_fixture import make_release

import recllmsim_hf
from recllmsim_hf.errors import InputError


def test_load_builds_first_then_reuses(tmp_path):
    src = make_release(tmp_path / "rel")
    out = tmp_path / "ds"
    ds = recllmsim_hf.load("intent", out, source=src, seed=7)
    assert sorted(ds) == ["test", "train", "validation"]
    assert sum(d.num_rows for d in ds.values()) == 35
    assert ds["train"].features["label"].names[3] == "Planning"
    card = (out / "README.md").stat().st_mtime_ns
    again = recllmsim_hf.load("quality_scores", out)
    assert again["train"].num_rows == 15
    assert (out / "README.md").stat().st_mtime_ns == card


def test_load_without_build(tmp_path):
    with pytest.raises(InputError, match="no built dataset here; run `recllmsim build"):
        recllmsim_hf.load("intent", tmp_path / "nothing", build=False)


def test_unknown_config(tmp_path):
    with pytest.raises(InputError, match="unknown config 'intents'"):
        recllmsim_hf.load("intents", tmp_path)
