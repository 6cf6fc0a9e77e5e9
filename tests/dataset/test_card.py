"""The dataset card: metadata round trip, strict rendering, statistics computed from the data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from tiny_corpus import SECRET_KEY, SECRET_PASSWORD, write_tiny_corpus

from recllmsim_hf.dataset.card import make_card_data, make_context, render_card, size_category
from recllmsim_hf.dataset.card_settings import CardSettings, set_repo_id, usage_block
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
    from recllmsim_hf.dataset.config_info import ConfigInfo, description, table_spec

    entries = {e["config_name"]: e for e in _card(build).data.dataset_info}
    infos = {t: ConfigInfo.from_yaml(entries[t], table_spec(t, corpus), description(t)) for t in TABLES}
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
    assert card.text == "# tiny test corpus: RecLLMSim-style conversations\n"


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
        "**User simulator model(s):** sim-model-a (3 conversations), sim-model-b (1 conversation)",
        "**Prompt version(s):** prompts-v7 (4 conversations)",
        "**Generated on:** 2026-03-01 to 2026-03-02",
        "**Tokens used by all 5 generated conversations:** 1,500 prompt + 150 completion tokens (about",
        "**Annotator model(s):** annotator-model-z (4 conversations)",
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


def test_generated_corpus_does_not_claim_to_be_the_release(tiny):
    _, build = tiny
    text = (build / "README.md").read_text(encoding="utf-8")
    meta = _card(build).data.to_dict()
    assert meta["pretty_name"] == "tiny test corpus: RecLLMSim-style conversations"
    assert meta["license"] == "unknown"
    assert "\n# tiny test corpus: RecLLMSim-style conversations\n" in text
    assert "(this corpus is not that release)" in text
    assert "No citation was given for this corpus (`recllmsim build --citation FILE` adds one)." in text
    assert "The data was made with the method of RecLLMSim; please also cite it:" in text
    assert 'ds = load_dataset("your-name/tiny-test-corpus", "intent")' in text


def test_build_card_settings(tmp_path):
    from recllmsim_hf.dataset.build import build_dataset

    corpus = write_tiny_corpus(tmp_path / "corpus")
    bib = "@misc{mine, title = {My corpus}}\n"
    settings = CardSettings(name="my-sim", pretty_name="My Sim", license="cc-by-4.0", citation=bib)
    build_dataset(corpus, tmp_path / "b", progress=False, card=settings)
    text = (tmp_path / "b" / "README.md").read_text(encoding="utf-8")
    meta = _card(tmp_path / "b").data.to_dict()
    assert meta["pretty_name"] == "My Sim" and meta["license"] == "cc-by-4.0"
    assert "\n# My Sim\n" in text and "- **License:** cc-by-4.0\n" in text
    assert "```bibtex\n@misc{mine, title = {My corpus}}\n```" in text
    assert text.count("@misc{recllmsim,") == 1  # credited as the method, once
    assert 'ds = load_dataset("your-name/my-sim", "intent")' in text


def test_card_header_writes_emoji_as_the_hub_does(tmp_path):
    """libyaml escapes characters beyond the BMP; the header is what DatasetCardData.to_yaml()
    (PyYAML's own emitter) writes, whichever emitter ran."""
    from huggingface_hub import DatasetCardData

    from recllmsim_hf.dataset.build import build_dataset

    corpus = write_tiny_corpus(tmp_path / "corpus")
    build_dataset(corpus, tmp_path / "b", progress=False, card=CardSettings(pretty_name="Gift ideas 🎁"))
    text = (tmp_path / "b" / "README.md").read_text(encoding="utf-8")
    assert "pretty_name: Gift ideas 🎁\n" in text and "\\U0001F381" not in text
    header = text.removeprefix("---\n").partition("\n---\n")[0]
    meta = _card(tmp_path / "b").data.to_dict()
    assert meta["pretty_name"] == "Gift ideas 🎁"
    assert header == DatasetCardData(**meta).to_yaml().strip()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"license": "Apache 2.0"},
            r"--license: must be a Hub license id in lower case .*but got 'Apache 2.0'",
        ),
        ({"name": "my name"}, r"--name: must be letters, digits.*but got 'my name'"),
        ({"pretty_name": "  "}, r"--pretty-name: must not be empty"),
    ],
)
def test_bad_card_settings(kwargs, message):
    with pytest.raises(InputError, match=message):
        CardSettings(**kwargs)


def test_citation_file(tmp_path):
    with pytest.raises(InputError, match=r"--citation .*missing.bib: no such file; pass a BibTeX file"):
        CardSettings.from_options(None, None, None, tmp_path / "missing.bib")
    (tmp_path / "empty.bib").write_text("  \n")
    with pytest.raises(InputError, match=r"empty.bib: the file is empty"):
        CardSettings.from_options(None, None, None, tmp_path / "empty.bib")
    (tmp_path / "c.bib").write_text("@misc{x}\n")
    assert CardSettings.from_options(None, None, "mit", tmp_path / "c.bib").citation == "@misc{x}\n"


def test_release_card_keeps_the_release_identity(built_release):
    text = (built_release / "README.md").read_text(encoding="utf-8")
    assert "\n# RecLLMSim\n" in text and "- **License:** apache-2.0\n" in text
    assert "please also cite it" not in text and text.count("@misc{recllmsim,") == 1
    assert 'ds = load_dataset("your-name/recllmsim", "intent")  # this repo\'s id; a local build: ' in text


def test_usage_snippet_gets_the_repo_id():
    block = usage_block("recllmsim", "conversations")
    card = f"# Title\n\n{block}\n\nmore text\n"
    pushed = set_repo_id(card, "alice/sims")
    assert 'ds = load_dataset("alice/sims", "conversations")\n```' in pushed
    assert "your-name" not in pushed and "a local build" not in pushed
    assert pushed.startswith("# Title\n\n<!-- recllmsim:usage -->") and pushed.endswith("\n\nmore text\n")
    assert set_repo_id(pushed, "bob/x") == set_repo_id(card, "bob/x")  # pushing again replaces it
    assert set_repo_id("no snippet", "a/b") == "no snippet"


def test_dataset_info_sizes_are_real(built_release):
    meta = _card(built_release).data.to_dict()
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    for config, info in infos.items():
        table = "intent_utterances" if config == "intent" else config
        on_disk = sum(p.stat().st_size for p in (built_release / table).glob("*.parquet"))
        assert info["download_size"] == on_disk > 0, config
        assert info["dataset_size"] == sum(s["num_bytes"] for s in info["splits"]) > 0, config


def test_data_fields_cover_every_feature_of_every_config(built_release):
    import datasets

    text = (built_release / "README.md").read_text(encoding="utf-8")
    section = text.split("## Data fields", 1)[1].split("\n## Statistics", 1)[0]
    for table in TABLES:
        part = section.split(f"### `{table}`\n", 1)[1].split("\n### ", 1)[0]
        features = datasets.load_dataset(str(built_release), table, split="train").features
        for name in features:
            assert f"| `{name}` | " in part, (table, name)
        assert "```json\n{" in part
    labels = "0 Search, 1 Recommendation, 2 Search & Recommendation, 3 Planning, 4 Others"
    assert f"| `label` | ClassLabel: {labels} |" in section
    assert "| `turns.role` | string | Who speaks: `user` (the simulator) or `assistant`. |" in section
    assert '"conversation_id": "new_travel_planning-0",' in section  # the first row, from the shards
    assert all(line.count("|") == 4 or not line.startswith("| `") for line in section.splitlines())


def test_provenance_block_has_no_empty_lines(tmp_path):
    from recllmsim_hf.corpus import MANIFEST
    from recllmsim_hf.dataset.card_stats import read_provenance

    corpus = write_tiny_corpus(tmp_path / "corpus")
    manifest = json.loads((corpus / MANIFEST).read_text())
    manifest["generation"].update({"conversations": {"catalogs": [], "seed": 3}, "note": "  ", "none": None})
    (corpus / MANIFEST).write_text(json.dumps(manifest))
    settings = dict(read_provenance(corpus).settings)
    assert settings["conversations.seed"] == "3"
    assert not {"conversations.catalogs", "note", "none"} & set(settings)
