"""`recllmsim stats`: synthetic and human users side by side, on the real release."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_corpus import write_tiny_corpus

from recllmsim_hf.analysis.figures import COMPARISON_FIGURE
from recllmsim_hf.analysis.human_stats import compare_studies, render_all_text, run_all_stats

RECLLMSIM = str(Path(sys.executable).parent / "recllmsim")


@pytest.fixture(scope="module")
def comparison(built_release):
    return compare_studies(built_release)


def test_counts_per_study(comparison):
    groups = comparison["groups"]
    assert list(groups) == ["LLM_agent_user", "real_human_user", "human_exp_V2"]
    assert {g: (r["conversations"], r["people"]) for g, r in groups.items()} == {
        "LLM_agent_user": (1856, 85),  # 100 profile ids, 85 distinct profiles
        "real_human_user": (291, 31),
        "human_exp_V2": (1833, 115),
    }
    per_task = {g: sum(t["conversations"] for t in r["ratings_per_task"].values()) for g, r in groups.items()}
    assert per_task == {"LLM_agent_user": 1856, "real_human_user": 291, "human_exp_V2": 1833}
    assert groups["LLM_agent_user"]["ratings_per_task"]["travel planning"]["conversations"] == 557


def test_turns_lengths_and_ratings(comparison):
    syn, rhu, v2 = (comparison["groups"][g] for g in ("LLM_agent_user", "real_human_user", "human_exp_V2"))
    # the release's Table 1 figure: 7.65 utterances per conversation
    assert syn["turns_per_conversation"] == pytest.approx(7.65, abs=0.005)
    # real people write far shorter messages than the simulator and get longer answers
    assert syn["user_utterance_chars"] > 3 * rhu["user_utterance_chars"]
    assert 20 < rhu["user_utterance_chars"] < 60 and 20 < v2["user_utterance_chars"] < 60
    assert v2["assistant_reply_chars"] > rhu["assistant_reply_chars"] > syn["assistant_reply_chars"]
    # the mean over all 1,856 rated synthetic conversations
    assert syn["ratings"]["diversity"] == pytest.approx(1.6137, abs=1e-4)
    for group in (syn, rhu, v2):
        assert 0 <= group["ratings"]["memorization"] <= 1
        assert all(
            0 <= group["ratings"][m] <= 2 for m in ("detail_level", "practical_usefulness", "diversity")
        )


def test_intents(comparison):
    syn, rhu, v2 = (comparison["groups"][g] for g in ("LLM_agent_user", "real_human_user", "human_exp_V2"))
    assert syn["intents"]["labelled_utterances"] == 7096
    assert round(syn["intents"]["shares"]["Planning"] * 7096) == 2416  # the paper's Planning total
    assert sum(syn["intents"]["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    assert list(rhu["intents"]["shares"]) == ["Recommendation", "Planning", "Evaluation", "Others"]
    assert rhu["intents"]["labelled_utterances"] == 1343
    assert sum(rhu["intents"]["shares"].values()) > 1.0  # several intents per utterance
    assert v2["intents"] is None


def test_assistant_models_of_the_second_study(comparison):
    models = comparison["assistant_models"]
    assert models["study"] == "human_exp_V2"
    assert {m: r["conversations"] for m, r in models["models"].items()} == {
        "claude-3-7-sonnet-20250219": 465,
        "deepseek-v3": 344,
        "gemini-2.0-pro-exp-02-05": 498,
        "gpt-4-turbo-preview": 526,
    }
    assert all(r["people"] <= 115 for r in models["models"].values())


def test_cli_text_json_and_the_figure(built_release, tmp_path):
    plots = tmp_path / "plots"
    result = subprocess.run(
        [RECLLMSIM, "stats", str(built_release), "--json", "--plots", str(plots)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["synthetic_vs_human"]["groups"]["human_exp_V2"]["conversations"] == 1833
    assert data["table2"]["rows"]  # the paper's tables are still there
    figure = plots / f"{COMPARISON_FIGURE}.png"
    assert str(figure) in data["figures"] and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {str(plots / f"{COMPARISON_FIGURE}.{ext}") for ext in ("pdf", "svg")} <= set(data["figures"])
    first = figure.read_bytes()
    run_all_stats(built_release, plots=plots)
    assert figure.read_bytes() == first  # same numbers, same bytes
    text = render_all_text(data)
    assert "Synthetic vs human users" in text and "human_exp_V2 per assistant model" in text
    assert "gpt-4-turbo-preview" in text
    # counts with thousands separators, means with fixed decimals (not 1856, 417.184, 1.512)
    lines = {line.split("  ")[0]: line.split() for line in text.splitlines()}
    assert lines["conversations"][-3:] == ["1,856", "291", "1,833"]
    assert lines["chars / assistant reply"][-3:] == ["417.1840", "802.8794", "1,204.2665"]
    assert lines["rating: diversity"][-3:] == ["1.6137", "1.5120", "1.6852"]


def test_a_build_without_humans_has_no_comparison(tmp_path):
    from recllmsim_hf.dataset.build import build_dataset

    build_dataset(write_tiny_corpus(tmp_path / "corpus"), tmp_path / "built", progress=False)
    assert compare_studies(tmp_path / "built") is None
    result = run_all_stats(tmp_path / "built", plots=tmp_path / "plots")
    assert "synthetic_vs_human" not in result
    assert not (tmp_path / "plots" / f"{COMPARISON_FIGURE}.png").exists()
    assert "Synthetic vs human" not in render_all_text(result)
