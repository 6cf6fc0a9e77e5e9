"""The dataset card of a build: typed metadata plus the Jinja template in ``dataset_card/``.

The YAML header is a ``DatasetCardData``: license, languages, task categories, size category,
tags, ``configs`` (the five configs and the ``intent`` alias, each pointing at its parquet
shards) and ``dataset_info`` (typed features and split sizes), so ``load_dataset`` reads the
folder or the Hub repo. The body is rendered from the template with ``StrictUndefined`` (a
misspelled variable fails instead of rendering empty), from statistics computed from the
build's files and provenance read from the corpus (``card_stats``), and a "Data fields"
section for every shipped config (``card_fields``). Title, license and citation are the
source's or those of ``recllmsim build --pretty-name/--license/--citation`` (``card_settings``).
The rendered card is parsed back and must give the same metadata, so what is written is what loads.

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

from recllmsim_hf.dataset.card_fields import ConfigFields, data_fields
from recllmsim_hf.dataset.card_settings import CardSettings, ResolvedCard, resolve, usage_block
from recllmsim_hf.dataset.card_stats import CardStats, Provenance, compute_stats, read_provenance
from recllmsim_hf.dataset.human_card import HumanStats, compute_human_stats
from recllmsim_hf.errors import InputError, RecLLMSimError
from recllmsim_hf.features import ALIASES, ALL_CONFIG_NAMES, SPLITS, table_of
from recllmsim_hf.schema import HOMEPAGE

if TYPE_CHECKING:
    from huggingface_hub import DatasetCardData

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
    usage: str  # the usage snippet between its markers (push-to-hub puts the repo id in)
    aliases: tuple[tuple[str, str], ...]  # (alias, table) shipped
    seed: int
    split_by: str
    stats: CardStats
    provenance: Provenance
    data_fields: tuple[ConfigFields, ...]
    citation: str  # BibTeX of this dataset, "" when none was given
    method_citation: str  # BibTeX of RecLLMSim as the method's source, "" for the release itself
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
    infos: dict,
    stats: CardStats,
    provenance: Provenance,
    sizes: dict[str, dict[str, int]],
    card: ResolvedCard | None = None,
) -> DatasetCardData:
    """The typed YAML header of the card (``infos``: table name -> its
    :class:`~recllmsim_hf.dataset.config_info.ConfigInfo`;
    ``sizes``: table -> split -> rows, configs without rows are left out; ``card``: name, title
    and license, by default those of the source)."""
    human = any(sum(sizes.get(t, {}).values()) for t in ("human_conversations", "human_intent_utterances"))
    from huggingface_hub import DatasetCardData

    card = card or resolve(CardSettings(), provenance.kind, provenance.corpus_name)
    languages = ["en", "zh"] if stats.has_chinese else ["en"]
    card_data = DatasetCardData(
        pretty_name=card.pretty_name,
        license=card.license,
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
    # datasets' layout of `dataset_info`: one entry a config, sorted by name (a single one unlisted)
    entries = [infos[table_of(name)].yaml_dict(name) for name in sorted(shipped)]
    card_data["dataset_info"] = entries[0] if len(entries) == 1 else entries
    return card_data


def _cell(value) -> str:
    """A markdown table cell: no pipes or line breaks from free text (custom task names, models)."""
    return " ".join(str(value).split()).replace("|", "\\|")


@dataclass(frozen=True)
class RenderedCard:
    """A rendered card: the whole README text, its parsed YAML header and its markdown body."""

    content: str
    data: dict
    text: str

    def __str__(self) -> str:
        return self.content


def _yaml_dump(data: dict) -> str:
    """``DatasetCardData.to_yaml()``'s text (PyYAML's dump, key order kept, unicode as is), by
    libyaml where PyYAML has it: the release's vocabularies make a long header. libyaml escapes
    characters beyond the BMP (an emoji in a task name or ``--pretty-name`` becomes
    ``"\\U0001F600"``) where PyYAML's own emitter writes them as they are; a text with an escape is
    dumped again by PyYAML's emitter, so the bytes never depend on whether libyaml is there."""
    import yaml

    text = None
    if hasattr(yaml, "CDumper"):
        text = yaml.dump(data, Dumper=yaml.CDumper, sort_keys=False, allow_unicode=True)
    if text is None or "\\" in text:  # any escape: libyaml may have written one PyYAML does not
        text = yaml.dump(data, Dumper=yaml.Dumper, sort_keys=False, allow_unicode=True)
    return text.strip()


def _yaml_header(content: str) -> tuple[dict, str]:
    """The YAML header between the first two ``---`` lines (parsed as the Hub's ``safe_load``
    would) and the markdown body after it."""
    import yaml

    head, sep, body = content.removeprefix("---\n").partition("\n---\n")
    if not content.startswith("---\n") or not sep:
        raise RecLLMSimError("dataset card: the rendered text has no YAML header; report a bug")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(head, Loader=loader) or {}, body


def render_card(
    card_data: DatasetCardData, context: CardContext, template: str | None = None
) -> RenderedCard:
    """Render the card strictly and check that parsing it back gives ``card_data`` again."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["cell"] = _cell
    env.filters["num"] = lambda n: f"{n:,}"
    variables = {f.name: getattr(context, f.name) for f in fields(context)}
    source = template if template is not None else template_text()
    expected = card_data.to_dict()
    try:
        content = env.from_string(source).render(card_data=_yaml_dump(expected), **variables)
    except jinja2.UndefinedError as e:
        raise InputError(f"dataset card template: {e}; fix the variable name in the template") from None
    data, body = _yaml_header(content)
    if data != expected:
        raise RecLLMSimError(
            "dataset card: the rendered YAML does not parse back to its metadata; report a bug"
        )
    return RenderedCard(content, data, body)


def make_context(
    folder: Path,
    corpus: Path,
    infos: dict,
    summary: dict,
    settings: CardSettings | None = None,
    provenance: Provenance | None = None,
) -> CardContext:
    """The template's variables for a build folder, computed from its files and its corpus
    (``provenance``: already tallied by the build, else read from the corpus)."""
    label_names = list(infos["intent_utterances"].features["label"].names)
    task_names = list(infos["conversations"].features["task"].names)
    stats = compute_stats(folder, task_names, label_names, SPLITS["intent_utterances"])
    provenance = provenance or read_provenance(corpus)
    card = resolve(settings or CardSettings(), provenance.kind, provenance.corpus_name)
    shipped = {table: [s for s, n in splits.items() if n] for table, splits in summary["configs"].items()}
    rows = []
    for name in ALL_CONFIG_NAMES:
        sizes = summary["configs"].get(table_of(name), {})
        if not any(sizes.values()):
            continue  # not shipped, so not announced either
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
    aliases = tuple((alias, table) for alias, table in ALIASES.items() if shipped.get(table))
    example_config = "intent" if shipped.get(table_of("intent")) else DEFAULT_CONFIG
    return CardContext(
        pretty_name=card.pretty_name,
        summary=summary_text,
        homepage=HOMEPAGE,
        license=card.license,
        languages=("English", "Chinese") if stats.has_chinese else ("English",),
        config_rows=tuple(rows),
        usage=usage_block(card.name, example_config),
        aliases=aliases,
        seed=summary.get("seed", 42),
        split_by=summary.get("split_by", "utterance"),
        stats=stats,
        provenance=provenance,
        data_fields=data_fields(folder, infos, shipped),
        citation=card.citation,
        method_citation=card.method_citation,
        human=human,
    )


def set_download_sizes(folder: Path, infos: dict) -> None:
    """Each table's ``download_size``: the bytes of its parquet shards (what a user downloads)."""
    for table, info in infos.items():
        info.download_size = sum(p.stat().st_size for p in sorted((Path(folder) / table).glob("*.parquet")))


def write_card(
    folder: Path,
    corpus: Path,
    infos: dict,
    summary: dict,
    settings: CardSettings | None = None,
    provenance: Provenance | None = None,
) -> Path:
    """Render ``folder/README.md`` from the build's files, its corpus, the builder infos and the summary."""
    from recllmsim_hf.corpus import atomic_write_text

    set_download_sizes(folder, infos)
    context = make_context(Path(folder), Path(corpus), infos, summary, settings, provenance)
    resolved = resolve(settings or CardSettings(), context.provenance.kind, context.provenance.corpus_name)
    card_data = make_card_data(infos, context.stats, context.provenance, summary["configs"], resolved)
    card = render_card(card_data, context)
    path = Path(folder) / "README.md"
    atomic_write_text(path, card.content)
    return path
