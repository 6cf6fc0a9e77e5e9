"""The dataset card: metadata round trip, strict rendering, statistics computed from the data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from tiny_corpus import SECRET_KEY, SECRET_PASSWORD, write_tiny_corpus

from recllmsim_hf.dataset.card import make_card_data, make_context, render_card, size_category
from recllmsim_hf.dataset.card_stats import scrub
from recllmsim_hf.errors import InputError
from recllmsim_hf.features import CONFIG_NAMES, SPLITS, TABLES
from recllmsim_hf.schema import INTENT_LABELS, TASKS


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """(corpus folder, build folder) of the tiny generated corpus."""
    from recllmsim_hf.dataset.build import build_dataset

    root = tmp_path_factory.mktemp("tiny-card")
    corpus = write_tiny_corpus(root / "corpus")
    build_dataset(corpus, root / "build", progress=False)
    return corpus, root / "build"


def _card(folder: Path):
    from huggingface_hub import DatasetCard

    return DatasetCard.load(folder / "README.md")


def _inputs(corpus: Path, build: Path):
    """Infos and summary as the build had them, recovered from the written card."""
    from datasets.info import DatasetInfosDict

    infos = DatasetInfosDict.from_dataset_card_data(_card(build).data)
    infos = {table: infos[table] for table in TABLES}
    summary = {
        "configs": {t: {s: infos[t].splits[s].num_examples for s in SPLITS[t]} for t in TABLES},
        "seed": 42,
        "split_by": "utterance",
    }
    context = make_context(build, corpus, infos, summary)
    return make_card_data(infos, context.stats, context.provenance, summary["configs"]), context


def test_rendered_card_parses_back_to_the_same_metadata(tiny):
    from huggingface_hub import DatasetCard

    card_data, context = _inputs(*tiny)
    card = render_card(card_data, context)
    assert DatasetCard(str(card)).data.to_dict() == card_data.to_dict()
    # and the card the build wrote carries exactly that metadata
    written = _card(tiny[1]).data.to_dict()
    assert written == card_data.to_dict()
    assert [c["config_name"] for c in written["configs"]] == list(CONFIG_NAMES)
    assert sorted(i["config_name"] for i in written["dataset_info"]) == sorted(CONFIG_NAMES)


def test_same_build_same_bytes(tiny, tmp_path):
    from recllmsim_hf.dataset.build import build_dataset

    corpus, build = tiny
    build_dataset(corpus, tmp_path / "again", progress=False)
    text = (tmp_path / "again" / "README.md").read_bytes()
    assert text == (build / "README.md").read_bytes()
    assert str(tmp_path).encode() not in text and str(build).encode() not in text and b"/tmp" not in text


def test_strict_rendering_refuses_misspelled_variables(tiny):
    card_data, context = _inputs(*tiny)
    with pytest.raises(InputError, match="'pretty_nam' is undefined"):
        render_card(card_data, context, template="---\n{{ card_data }}\n---\n# {{ pretty_nam }}\n")
    with pytest.raises(InputError, match="has no attribute 'conversation'"):
        render_card(card_data, context, template="---\n{{ card_data }}\n---\n{{ stats.conversation }}\n")
    card = render_card(card_data, context, template="---\n{{ card_data }}\n---\n# {{ pretty_name }}\n")
    assert card.text == "# RecLLMSim\n"


def test_release_statistics_are_computed_from_the_data(built_release):
    import datasets

    text = (built_release / "README.md").read_text(encoding="utf-8")
    intents = datasets.load_dataset(str(built_release), "intent")
    counts = {split: Counter(ds["label"]) for split, ds in intents.items()}
    for i, name in enumerate(INTENT_LABELS):
        per_split = [counts[s][i] for s in ("train", "validation", "test")]
        assert f"| {name} | " + " | ".join(f"{n:,}" for n in per_split) + f" | {sum(per_split):,} |" in text

    halls = datasets.load_dataset(str(built_release), "hallucinations", split="train")
    flagged = sum(halls["hallucination"])
    assert flagged == 39  # the paper: 39 replies with common-sense hallucinations
    assert f"{flagged} of {len(halls):,} judged assistant replies" in text

    convs = datasets.load_dataset(str(built_release), "conversations", split="train")
    per_task = Counter(convs["task"])
    for i, task in enumerate(TASKS):
        assert f"| {task} | {per_task[i]:,} | {100 * per_task[i] / len(convs):.1f}% |" in text

    quality = datasets.load_dataset(str(built_release), "quality_scores", split="train").to_pandas()
    travel = quality[quality["task"] == 0]
    row = f"| travel planning | {len(travel):,} | {travel['preference_alignment'].mean():.2f} | "
    assert row + f"{travel['additional_preferences'].mean():.2f} |" in text


def test_release_card_metadata(built_release):
    meta = _card(built_release).data.to_dict()
    assert meta["language"] == ["en", "zh"]
    assert meta["annotations_creators"] == ["crowdsourced"]
    assert meta["license"] == "apache-2.0"
    assert meta["size_categories"] == ["1K<n<10K"] == [size_category(1856)]
    assert meta["task_ids"] == ["intent-classification", "dialogue-generation"]
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert [s["num_examples"] for s in infos["intent"]["splits"]] == [5676, 710, 710]
    text = (built_release / "README.md").read_text(encoding="utf-8")
    assert "given by qualified crowdsourced annotators" in text
    assert "@misc{recllmsim," in text


def test_generated_corpus_card_says_how_it_was_made(tiny):
    corpus, build = tiny
    text = (build / "README.md").read_text(encoding="utf-8")
    for expected in (
        "5 generated, 4 passed the generation filters",
        "**User simulator model(s):** sim-model-a (3), sim-model-b (1)",
        "**Prompt version(s):** prompts-v7 (4)",
        "**Generated on:** 2026-03-01 to 2026-03-02",
        "1,500 prompt + 150 completion (about 1.25 USD",
        "**Annotator model(s):** annotator-model-z (4)",
        "`base_url`: http://127.0.0.1:9/v1",
    ):
        assert expected in text
    meta = _card(build).data.to_dict()
    assert meta["language"] == ["en"] and meta["annotations_creators"] == ["machine-generated"]
    assert meta["size_categories"] == ["n<1K"]
    # the manifest's API key and the password in its URL never reach the card
    assert SECRET_KEY not in text and SECRET_PASSWORD not in text and "api_key" not in text


def test_scrub_removes_credentials():
    assert scrub("http://user:pw@host:1/v1") == "http://host:1/v1"
    assert scrub("key sk-abcdef123456 and hf_ABCDEFGH12 and Bearer xyz") == (
        "key <redacted> and <redacted> and <redacted>"
    )
    assert scrub("gpt-4o-mini") == "gpt-4o-mini"
