"""`recllmsim stats` on the real release (paper Tables 1-3, Fig. 5/6) and on a tiny generated corpus."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_corpus import write_tiny_corpus

from recllmsim_hf.analysis import figures
from recllmsim_hf.analysis.stats import class_names, compute_stats, count_tokens, render_text
from recllmsim_hf.errors import InputError

RECLLMSIM = str(Path(sys.executable).parent / "recllmsim")

# RecLLMSim Table 2 (per task, in the paper's column order).
PAPER_TABLE2 = {
    "skills learning planning": (1.233, 0.144, 1.564, 0.941, 1.951, 1.888, 1.841),
    "travel planning": (1.837, 0.436, 1.551, 0.943, 1.795, 1.736, 1.707),
    "preparing gifts": (1.228, 0.019, 1.618, 0.998, 1.920, 1.867, 1.989),
    "recipe planning": (1.670, 0.389, 1.616, 0.977, 1.830, 1.795, 0.653),
}
METRICS = (
    "preference_alignment",
    "additional_preferences",
    "role_playing_completeness",
    "memorization",
    "detail_level",
    "practical_usefulness",
    "diversity",
)


def run(*args):
    return subprocess.run([RECLLMSIM, *args], capture_output=True, text=True, env=dict(os.environ))


@pytest.fixture(scope="module")
def release_stats(built_release):
    return compute_stats(built_release)


def test_table2_reproduces_all_28_cells_of_the_paper(release_stats):
    rows = {r["task"]: r for r in release_stats["table2"]["rows"]}
    assert set(rows) == set(PAPER_TABLE2)
    got = {task: tuple(round(rows[task][m], 3) for m in METRICS) for task in PAPER_TABLE2}
    assert got == PAPER_TABLE2
    # travel planning merges both release rounds: 358 + 199 conversations
    assert rows["travel planning"]["conversations"] == 557
    assert sum(r["conversations"] for r in rows.values()) == 1856


def test_intent_class_counts_and_split_sizes(release_stats):
    t3 = release_stats["table3"]
    assert [(s["split"], s["samples"]) for s in t3["splits"]] == [
        ("train", 5676),
        ("validation", 710),
        ("test", 710),
    ]
    # the paper's Table 3 totals over the three splits (7,096 utterances)
    assert t3["labels"] == {
        "Search": 380,
        "Recommendation": 1263,
        "Search & Recommendation": 1009,
        "Planning": 2416,
        "Others": 2028,
    }
    for split in t3["splits"]:
        assert sum(split["labels"].values()) == split["samples"]
    assert t3["splits"][2]["labels"] == {
        "Search": 38,
        "Recommendation": 122,
        "Search & Recommendation": 94,
        "Planning": 235,
        "Others": 221,
    }


def test_hallucinations_and_table1(release_stats):
    assert release_stats["hallucinations"] == {"count": 39, "annotated_replies": 7103}
    t1 = release_stats["table1"]
    assert t1["raw"] is None
    assert t1["filtered"] == {
        "scenarios": 22,
        "conversations": 1856,
        "avg_utterances": 7.65,
        "avg_tokens": 1475.22,
    }
    assert t1["filter_passed"] == {"true": 0, "false": 0, "null": 1856}
    assert release_stats["table3"]["splits"][0]["avg_tokens"] == 105.55


def test_score_distribution_and_phrases(release_stats):
    dist = release_stats["score_distribution"]
    assert dist["memorization"]["counts"] == {"0": 69, "1": 1787}
    assert dist["diversity"]["counts"] == {"0": 235, "1": 247, "2": 1374}
    assert all(sum(d["counts"].values()) == 1856 for d in dist.values())
    phrases = release_stats["preference_phrases"]
    assert list(phrases) == [
        "travel planning",
        "skills learning planning",
        "recipe planning",
        "preparing gifts",
    ]
    assert phrases["preparing gifts"][0] == ["personalized", 239]
    assert all(len(v) == 15 for v in phrases.values())
    # merged near-duplicates: practice (22) + regular practice (22) + practice regularly (14) + ...
    assert phrases["skills learning planning"][0] == ["practice", 78]
    assert ["Python", 31] in phrases["skills learning planning"]  # the case the conversations use
    assert ["Barcelona", 14] in phrases["travel planning"]
    shown = {p for rows in phrases.values() for p, _ in rows}
    assert not shown & {"excited", "confident", "grateful", "appreciative", "prepared"}  # stop list
    # per task, as shares of that task's rated conversations
    by_task = dist["additional_preferences"]["by_task"]
    assert list(by_task) == list(phrases)  # the four tasks, in ClassLabel order
    assert by_task["travel planning"] == {"0": 314, "1": 243}  # 56 % / 44 % of 557
    assert sum(sum(c.values()) for c in by_task.values()) == 1856


def test_count_tokens():
    assert count_tokens("Hi, Ann! It's 9am.") == 9  # Hi , Ann ! It ' s 9am .
    assert count_tokens("") == 0 and count_tokens(None) == 0


def test_cli_stats_json_and_plots(built_release, tmp_path):
    out = run(
        "stats", str(built_release), "--json", "--plots", str(tmp_path / "plots"), "--top", "5",
        "--width", "column",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["hallucinations"]["count"] == 39
    assert data["table2"]["rows"][0]["task"] == "travel planning"
    assert all(len(v) == 5 for v in data["preference_phrases"].values())
    # the release build has the human studies, so the comparison figure comes too
    stems = (figures.PHRASE_FIGURE, figures.SCORE_FIGURE, figures.COMPARISON_FIGURE)
    assert sorted(Path(p).name for p in data["figures"]) == sorted(
        f"{stem}.{ext}" for stem in stems for ext in ("pdf", "png", "svg")
    )
    png = next(Path(p) for p in data["figures"] if p.endswith("score_distribution.png"))
    assert int.from_bytes(png.read_bytes()[16:20], "big") == 990  # 3.3 in at 300 dpi


def test_cli_stats_bad_width_is_one_line(built_release, tmp_path):
    out = run("stats", str(built_release), "--plots", str(tmp_path / "p"), "--width", "wide")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "'wide'" in out.stderr and "column" in out.stderr
    assert not (tmp_path / "p").exists()


def test_cli_stats_text(built_release):
    out = run("stats", str(built_release))
    assert out.returncode == 0, out.stderr
    assert "Hallucinations: 39 of 7,103 annotated assistant replies" in out.stdout
    # one format per column: counts with thousands separators, means with fixed decimals
    assert next(x for x in out.stdout.splitlines() if x.startswith("filtered")).split() == [
        "filtered", "22", "1,856", "7.65", "1,475.22",
    ]  # fmt: skip
    assert next(x for x in out.stdout.splitlines() if x.startswith("train ")).split()[:3] == [
        "train", "5,676", "105.55",
    ]  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("recipe planning"))
    assert line.split()[2:] == ["352", "1.670", "0.389", "1.616", "0.977", "1.830", "1.795", "0.653"]


def test_generated_corpus_counts_only_conversations_that_passed(tmp_path):
    from recllmsim_hf.dataset.build import build_dataset

    build_dataset(write_tiny_corpus(tmp_path / "corpus"), tmp_path / "built", progress=False)
    s = compute_stats(tmp_path / "built")
    assert s["table1"]["filtered"]["conversations"] == 4
    assert s["table1"]["filtered"]["avg_utterances"] == 3.5
    assert "filtered           3       4       3.50        20.00" in render_text(s)  # 3.50, not 3.5
    assert s["table1"]["filter_passed"] == {"true": 4, "false": 0, "null": 0}
    assert s["hallucinations"] == {"count": 2, "annotated_replies": 5}
    rows = {r["task"]: r for r in s["table2"]["rows"]}
    assert set(rows) == {"recipe planning", "preparing gifts"}
    assert rows["preparing gifts"]["additional_preferences"] == pytest.approx(
        1 / 3, abs=1e-6
    )  # n % 2 of 1, 2, 4
    assert rows["recipe planning"]["role_playing_completeness"] is None  # never rated, not 0
    assert s["table3"]["labels"]["Planning"] == 1


def test_not_a_folder(tmp_path):
    with pytest.raises(InputError, match=r"no such folder; pass the --out folder of `recllmsim build`"):
        compute_stats(tmp_path / "missing")


def test_folder_without_shards(tmp_path):
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(InputError, match=r"not a built dataset \(no <table>/<split>-\*\.parquet files\)"):
        compute_stats(tmp_path)


def test_shard_without_class_label_metadata(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "quality_scores").mkdir()
    pq.write_table(pa.table({"task": [0]}), tmp_path / "quality_scores/train-00000-of-00001.parquet")
    with pytest.raises(InputError, match=r"no ClassLabel names for column 'task'"):
        class_names(tmp_path, "quality_scores", "task")


def test_cli_bad_folder_is_one_line(tmp_path):
    out = run("stats", str(tmp_path / "nope"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "no such folder" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_stats_top_beyond_a_figure_is_refused_before_the_work(built_release, tmp_path):
    plots = tmp_path / "plots"
    out = run("stats", str(built_release), "--plots", str(plots), "--top", "101")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == (
        "recllmsim: error: --top: a figure shows at most 100 phrases per task, but got 101; "
        "use --json without --plots for more\n"
    )
    assert not plots.exists()
    out = run("stats", str(built_release), "--json", "--top", "5000")  # without figures: any --top
    assert out.returncode == 0, out.stderr
    assert max(len(v) for v in json.loads(out.stdout)["preference_phrases"].values()) > 100
