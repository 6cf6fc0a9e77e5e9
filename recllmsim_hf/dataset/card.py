"""The dataset card of a build: typed metadata plus the Jinja template in ``dataset_card/``.

The YAML header is a ``DatasetCardData``: license, languages, task categories, size category,
tags, ``configs`` (the five configs and the ``intent`` alias, each pointing at its parquet
shards) and ``dataset_info`` (typed features and split sizes), so ``load_dataset`` reads the
folder or the Hub repo. The body is rendered from the template with ``StrictUndefined`` (a
misspelled variable fails instead of rendering empty), from statistics computed from the
build's files and provenance read from the corpus (``recllmsim_hf.dataset.card_stats``). The rendered
card is parsed back and must give the same metadata, so what is written is what loads.

Same build, same bytes: nothing in the card depends on the time or on absolute paths.

Example:
    >>> write_card(Path("recllmsim"), Path("staged-corpus"), infos, summary)  # doctest: +SKIP
    PosixPath('recllmsim/README.md')
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from recllmsim_hf.dataset.card_stats import CardStats, Provenance, compute_stats, read_provenance
from recllmsim_hf.dataset.human_card import HumanStats, compute_human_stats
from recllmsim_hf.errors import InputError, RecLLMSimError
from recllmsim_hf.features import ALIASES, ALL_CONFIG_NAMES, SPLITS, table_of
from recllmsim_hf.schema import CITATION, HOMEPAGE, LICENSE, PRETTY_NAME

if TYPE_CHECKING:
    from huggingface_hub import DatasetCard, DatasetCardData

DEFAULT_CONFIG = "conversations"
TEMPLATE = "template.md"
TAGS = [
    "conversational-recommendation",
    "user-simulation",
    "task-oriented-dialogue",
    "synthetic",
    "llm-generated",
]


@dataclass(frozen=True)
class ConfigRow:
    name: str
    splits: str
    rows: str
    description: str


@dataclass(frozen=True)
class CardContext:
    """Every variable of the template besides ``card_data`` (the YAML header)."""

    pretty_name: str
    summary: str
    homepage: str
    license: str
    languages: tuple[str, ...]
    config_rows: tuple[ConfigRow, ...]
    seed: int
    split_by: str
    stats: CardStats
    provenance: Provenance
    citation: str
    human: HumanStats | None  # the human studies and profile identification, None when not built


def size_category(n: int) -> str:
    """The Hub's size bucket for ``n`` rows: ``size_category(1856) == "1K<n<10K"``."""
    for top, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < top:
            return label
    return "1M<n<10M"


def configs_yaml(sizes: dict[str, dict[str, int]]) -> list[dict]:
    """The YAML ``configs:`` entries: one per config name with rows, aliases pointing at their
    table's files. ``sizes`` maps table -> split -> rows (the build summary's ``configs``)."""
    out = []
    for name in ALL_CONFIG_NAMES:
        table = table_of(name)
        splits = [s for s in SPLITS[table] if sizes.get(table, {}).get(s)]
        if not splits:
            continue
        entry = {
            "config_name": name,
            "data_files": [{"split": s, "path": f"{table}/{s}-*.parquet"} for s in splits],
        }
        if name == DEFAULT_CONFIG:
            entry["default"] = True
        out.append(entry)
    return out


def template_text(name: str = TEMPLATE) -> str:
    return resources.files("recllmsim_hf.dataset_card").joinpath(name).read_text(encoding="utf-8")


def _annotation_creators(stats: CardStats, provenance: Provenance) -> list[str]:
    labelled = stats.intents.total or stats.hallucinations.judged or any(r.rated for r in stats.ratings)
    if not labelled:
        return ["no-annotation"]
    if provenance.kind == "release":
        return ["crowdsourced"]
    return ["machine-generated"] if provenance.annotated_by_llm else ["found"]


def make_card_data(
    infos: dict, stats: CardStats, provenance: Provenance, sizes: dict[str, dict[str, int]]
) -> DatasetCardData:
    """The typed YAML header of the card (``infos``: table name -> ``datasets.DatasetInfo``;
    ``sizes``: table -> split -> rows, configs without rows are left out)."""
    human = any(sum(sizes.get(t, {}).values()) for t in ("human_conversations", "human_intent_utterances"))
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    languages = ["en", "zh"] if stats.has_chinese else ["en"]
    card_data = DatasetCardData(
        pretty_name=PRETTY_NAME,
        license=LICENSE,
        language=languages,
        multilinguality=["multilingual"] if stats.has_chinese else ["monolingual"],
        language_creators=["machine-generated", "crowdsourced"] if human else ["machine-generated"],
        annotations_creators=_annotation_creators(stats, provenance),
        source_datasets=["original"],
        task_categories=["text-classification", "text-generation"],
        task_ids=["intent-classification", "dialogue-generation"],
        size_categories=[size_category(stats.conversations)],
        tags=list(TAGS),
        configs=configs_yaml(sizes),
    )
    shipped = [name for name in ALL_CONFIG_NAMES if any(sizes.get(table_of(name), {}).values())]
    DatasetInfosDict({name: infos[table_of(name)] for name in shipped}).to_dataset_card_data(card_data)
    return card_data


def _cell(value) -> str:
    """A markdown table cell: no pipes or line breaks from free text (custom task names, models)."""
    return " ".join(str(value).split()).replace("|", "\\|")


def render_card(card_data: DatasetCardData, context: CardContext, template: str | None = None) -> DatasetCard:
    """Render the card strictly and check that parsing it back gives ``card_data`` again."""
    import jinja2
    from huggingface_hub import DatasetCard

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["cell"] = _cell
    env.filters["num"] = lambda n: f"{n:,}"
    variables = {f.name: getattr(context, f.name) for f in fields(context)}
    source = template if template is not None else template_text()
    try:
        text = env.from_string(source).render(card_data=card_data.to_yaml(), **variables)
    except jinja2.UndefinedError as e:
        raise InputError(f"dataset card template: {e}; fix the variable name in the template") from None
    card = DatasetCard(text)
    if card.data.to_dict() != card_data.to_dict():
        raise RecLLMSimError(
            "dataset card: the rendered YAML does not parse back to its metadata; report a bug"
        )
    return card


def make_context(
    folder: Path, corpus: Path, infos: dict, summary: dict, provenance: Provenance | None = None
) -> CardContext:
    """The template's variables for a build folder, computed from its files and its corpus
    (``provenance``: already tallied by the build, else read from the corpus)."""
    label_names = list(infos["intent_utterances"].features["label"].names)
    task_names = list(infos["conversations"].features["task"].names)
    stats = compute_stats(folder, task_names, label_names, SPLITS["intent_utterances"])
    provenance = provenance or read_provenance(corpus)
    rows = []
    for name in [n for n in ALL_CONFIG_NAMES if table_of(n) in summary["configs"]]:
        sizes = summary["configs"][table_of(name)]
        description = (
            infos[table_of(name)].description if name not in ALIASES else f"alias of `{ALIASES[name]}`"
        )
        rows.append(
            ConfigRow(name, ", ".join(sizes), " / ".join(f"{n:,}" for n in sizes.values()), description or "")
        )
    tasks = [t.task for t in stats.tasks]
    who = {"release": "the RecLLMSim release", "generated": "a generated corpus"}.get(
        provenance.kind, "a corpus"
    )
    summary_text = (
        f"{stats.conversations:,} task-based recommendation conversations between an LLM user simulator and "
        f"an LLM assistant, from {who}, in {len(tasks)} task{'s' if len(tasks) != 1 else ''} "
        f"({', '.join(tasks)}), with user-intent labels, hallucination judgements and quality ratings "
        "in typed configs."
    )
    human = compute_human_stats(folder, summary["configs"], summary.get("split_by", "utterance"))
    if human is not None and human.studies:
        people = sum(s.people for s in human.studies)
        talks = sum(s.conversations for s in human.studies)
        summary_text += (
            f" Also {talks:,} conversations of {people:,} real people with an LLM assistant "
            f"({len(human.studies)} studies, Chinese) and a profile-identification config."
        )
    return CardContext(
        pretty_name=PRETTY_NAME,
        summary=summary_text,
        homepage=HOMEPAGE,
        license=LICENSE,
        languages=("English", "Chinese") if stats.has_chinese else ("English",),
        config_rows=tuple(rows),
        seed=summary.get("seed", 42),
        split_by=summary.get("split_by", "utterance"),
        stats=stats,
        provenance=provenance,
        citation=CITATION,
        human=human,
    )


def write_card(
    folder: Path, corpus: Path, infos: dict, summary: dict, provenance: Provenance | None = None
) -> Path:
    """Render ``folder/README.md`` from the build's files, its corpus, the builder infos and the summary."""
    from recllmsim_hf.corpus import atomic_write_text

    context = make_context(Path(folder), Path(corpus), infos, summary, provenance)
    card_data = make_card_data(infos, context.stats, context.provenance, summary["configs"])
    card = render_card(card_data, context)
    path = Path(folder) / "README.md"
    atomic_write_text(path, str(card))
    return path
