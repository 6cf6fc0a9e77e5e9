"""`recllmsim baseline profile`: the four training settings on the real release, metrics, determinism."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_corpus import write_tiny_corpus

from recllmsim_hf.analysis.profile_baselines import (
    ATTRIBUTES,
    METRICS,
    SETTINGS,
    ranking_metrics,
    run_profile_baselines,
    tokenize,
)
from recllmsim_hf.errors import InputError

RECLLMSIM = str(Path(sys.executable).parent / "recllmsim")


@pytest.fixture(scope="module")
def report(built_release):
    return run_profile_baselines(built_release)


def by_setting(report):
    return {r["setting"]: r for r in report["settings"]}


def test_four_settings_train_on_their_rows_and_share_the_human_test_split(report):
    runs = by_setting(report)
    assert list(runs) == list(SETTINGS)
    rows = {name: (r["train_rows"], r["test_rows"]) for name, r in runs.items()}
    # seed-42 person-level splits of the release: 1,483 synthetic and 1,669 human training rows
    assert rows == {
        "synthetic->synthetic": (1483, 182),
        "synthetic->human": (1483, 229),
        "human->human": (1669, 229),
        "synthetic+human->human": (1483 + 1669, 229),
    }
    assert report["labels"] == {
        "personality": 15,
        "occupation": 15,
        "daily_interests": 15,
        "travel_habits": 15,
        "dining_preferences": 14,
        "spending_habits": 15,
        "other_aspects": 16,
    }


def test_metrics_are_consistent_and_in_range(report):
    for run in report["settings"]:
        assert set(run["attributes"]) == set(ATTRIBUTES)
        for r in [*run["attributes"].values(), *run["prior"]["attributes"].values()]:
            assert all(0.0 <= r[m] <= 1.0 for m in METRICS), r
            assert r["hit@1"] <= r["hit@3"] and r["recall@1"] <= r["recall@3"]
            assert r["recall@1"] <= r["hit@1"] and r["recall@3"] <= r["hit@3"]
            assert r["rows"] > 0
        # spending habits is empty for 16 human training rows and some test rows: those are not scored
        assert run["attributes"]["personality"]["rows"] == run["test_rows"]


def test_real_values_of_the_release(report):
    runs = by_setting(report)
    mean = {name: r["mean"] for name, r in runs.items()}
    prior = {name: r["prior"]["mean"] for name, r in runs.items()}
    # within its own kind the text says a lot: well above the label-frequency prior
    assert 0.60 <= mean["synthetic->synthetic"]["hit@3"] <= 0.75
    assert mean["synthetic->synthetic"]["hit@3"] > prior["synthetic->synthetic"]["hit@3"] + 0.08
    assert mean["synthetic->synthetic"]["micro_f1"] > prior["synthetic->synthetic"]["micro_f1"] + 0.05
    # trained on simulated users only, real users are hard: barely above the human-free prior
    assert 0.35 <= mean["synthetic->human"]["hit@3"] <= 0.55
    assert mean["synthetic->human"]["hit@1"] < 0.15
    # trained on people, scored on other people of the same studies
    assert 0.72 <= mean["human->human"]["hit@3"] <= 0.85
    assert mean["human->human"]["hit@3"] > mean["synthetic->human"]["hit@3"] + 0.2
    assert abs(mean["synthetic+human->human"]["hit@3"] - mean["human->human"]["hit@3"]) < 0.05
    # nearly every person of the studies is a student: occupation is almost the prior
    assert runs["human->human"]["attributes"]["occupation"]["hit@1"] > 0.6


def test_same_numbers_twice_and_from_the_cli(report, built_release):
    again = run_profile_baselines(built_release, ["human->human"])
    first = by_setting(report)["human->human"]
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert strip(again["settings"][0]) == strip(first)
    result = subprocess.run(
        [RECLLMSIM, "baseline", "profile", str(built_release), "--settings", "human->human", "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    cli = json.loads(result.stdout)
    assert strip(cli["settings"][0]) == strip(first)
    assert "bigrams" in cli["tokenisation"]


def test_unknown_setting_and_a_build_without_profiles(tmp_path, built_release):
    with pytest.raises(InputError, match=r"--settings: must be among .*but got 'human->synthetic'"):
        run_profile_baselines(built_release, ["human->synthetic"])
    from recllmsim_hf.dataset.build import build_dataset

    build_dataset(write_tiny_corpus(tmp_path / "corpus"), tmp_path / "built", progress=False)
    result = subprocess.run(
        [RECLLMSIM, "baseline", "profile", str(tmp_path / "built")], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert (
        result.stderr.startswith("recllmsim: error: ") and "no profile_identification config" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_tokenize_chinese_characters_bigrams_and_words():
    assert tokenize("我想去 Paris, 3天!") == ["我", "想", "去", "我想", "想去", "paris", "3", "天"]
    assert tokenize("") == []


def test_ranking_metrics_by_hand():
    scores = np.array([[0.9, 0.2, 0.6, 0.1], [0.1, 0.3, 0.2, 0.4], [0.5, 0.5, 0.5, 0.5]])
    truth = np.array([[0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.uint8)  # row 3 has no labels
    r = ranking_metrics(scores, truth)
    # row 1: top-1 label 0 (wrong), top-3 {0, 2, 1} holds 2 of {2, 3}; row 2: top-1 3, top-3 {3, 1, 2}
    assert (r["hit@1"], r["hit@3"], r["recall@1"], r["recall@3"]) == (0.0, 0.5, 0.0, 0.25)
    # predicted: row 1 {0, 2} (>= 0.5), row 2 none above 0.5 -> its top one {3}: tp 1, fp 2, fn 2
    assert r["micro_f1"] == round(2 * 1 / (2 * 1 + 2 + 2), 4)
    assert r["rows"] == 2
