"""The dataset card of a build: typed metadata plus the template in ``dataset_card/``.

Rendered through huggingface_hub's ``DatasetCard.from_template`` with
``DatasetCardData``; the YAML carries ``configs`` (the five configs and the
``intent`` alias, each pointing at its parquet shards) and ``dataset_info``
(the typed features and split sizes), so ``load_dataset`` reads the folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from recllmsim_hf.features import ALIASES, CONFIG_NAMES, SPLITS, table_of
from recllmsim_hf.schema import CITATION, LICENSE, PRETTY_NAME

DEFAULT_CONFIG = "conversations"


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


def configs_yaml() -> list[dict]:
    """The YAML ``configs:`` entries: one per config name, aliases pointing at their table's files."""
    out = []
    for name in CONFIG_NAMES:
        table = table_of(name)
        entry = {
            "config_name": name,
            "data_files": [{"split": s, "path": f"{table}/{s}-*.parquet"} for s in SPLITS[table]],
        }
        if name == DEFAULT_CONFIG:
            entry["default"] = True
        out.append(entry)
    return out


def template_text() -> str:
    return resources.files("recllmsim_hf.dataset_card").joinpath("template.md").read_text(encoding="utf-8")


def write_card(folder: Path, corpus: Path, infos: dict, summary: dict) -> Path:
    """Render README.md for a build folder from the builder infos and the build summary."""
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCard, DatasetCardData

    n_conversations = summary["configs"]["conversations"]["train"]
    card_data = DatasetCardData(
        pretty_name=PRETTY_NAME,
        license=LICENSE,
        language=["en", "zh"],
        task_categories=["text-classification", "text-generation"],
        task_ids=["intent-classification", "dialogue-generation"],
        size_categories=[size_category(n_conversations)],
        tags=["conversational-recommendation", "user-simulation", "synthetic", "llm-generated"],
        configs=configs_yaml(),
    )
    all_infos = {name: infos[table_of(name)] for name in CONFIG_NAMES}
    DatasetInfosDict(all_infos).to_dataset_card_data(card_data)
    rows = []
    for name in CONFIG_NAMES:
        sizes = summary["configs"][table_of(name)]
        rows.append(
            {
                "name": name,
                "splits": ", ".join(sizes),
                "rows": " / ".join(f"{n:,}" for n in sizes.values()),
                "description": infos[table_of(name)].description
                if name not in ALIASES
                else f"alias of `{ALIASES[name]}`",
            }
        )
    card = DatasetCard.from_template(
        card_data,
        template_str=template_text(),
        pretty_name=PRETTY_NAME,
        summary_text=f"{n_conversations:,} task-based recommendation conversations.",
        config_rows=rows,
        citation=CITATION,
    )
    path = folder / "README.md"
    card.save(path)
    return path
