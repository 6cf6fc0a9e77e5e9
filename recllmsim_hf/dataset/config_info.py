"""What each config is, declared once for the builder and for a build (which does not import
``datasets``): its description, its columns for a given corpus, how its splits are cut, its rows
in the builder's batches, and the split sizes a build measured (:class:`ConfigInfo`, the card's
``dataset_info`` entry).

Example:
    >>> info = ConfigInfo(table_spec("intent_utterances", corpus), description("intent"))  # doctest: +SKIP
    >>> info.add_split(SplitSize("train", num_bytes=1234, num_examples=10))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from recllmsim_hf.features import ALIASES, HUMAN_TABLES, spec, table_of

BATCH = 1000  # rows per record batch (one row group each), the builder's batch

_DESCRIPTIONS = {
    "conversations": "Whole conversations: turns with annotations, profile and scenario texts, ratings.",
    "profiles": "One row per simulated user profile, with the nine structured fields in English and Chinese.",
    "intent_utterances": "User utterances labelled with one of five intents; train/validation/test 8:1:1.",
    "hallucinations": "Assistant replies judged for common-sense hallucinations, with the reason.",
    "quality_scores": "The seven quality ratings of each conversation (a missing rating is null).",
    "human_conversations": "Conversations of real people (two studies, Chinese) with an LLM assistant: "
    "turns with intents and judgements, questionnaire ratings, user-behaviour strategies, the profile.",
    "human_profiles": "One row per participant of the two human studies, profile in English and Chinese.",
    "human_intent_utterances": "User utterances of real people labelled with one or more of four intents; "
    "train/validation/test 8:1:1.",
    "profile_identification": "Synthetic and human conversations with the user's profile attributes as "
    "label sets; 8:1:1 split by person, the human test split fixed.",
}


def description(config: str) -> str:
    """One sentence about a config (aliases allowed)."""
    table = table_of(config)
    if config in ALIASES:
        return f"Alias of {table}. " + _DESCRIPTIONS[table]
    return _DESCRIPTIONS[table]


def table_spec(table: str, corpus: Path):
    """The columns of ``table`` for a corpus folder: its tasks, and for ``profile_identification``
    its profile vocabulary."""
    from recllmsim_hf.corpus import Corpus
    from recllmsim_hf.dataset.human_configs import read_vocabulary

    vocabulary = read_vocabulary(Path(corpus)) if table_of(table) == "profile_identification" else None
    return spec(table, Corpus(corpus).tasks, vocabulary)


def splitter_for(table: str, corpus: Path, seed: int, split_by: str):
    """The split rule of ``table`` over ``corpus`` (None for a one-split table)."""
    from recllmsim_hf.dataset.configs import make_splitter
    from recllmsim_hf.dataset.human_configs import intent_splitter, profile_splitter

    if table == "intent_utterances":
        return make_splitter(corpus, seed, split_by)
    if table == "human_intent_utterances":
        return intent_splitter(corpus, seed, split_by)
    if table == "profile_identification":
        return profile_splitter(corpus, seed)
    return None


def table_batches(table: str, corpus: Path, features, split: str, splitter) -> Iterator[pa.Table]:
    """The rows of one split as the builder yields them: tables of :data:`BATCH` rows (and one
    empty table for a split without rows)."""
    from recllmsim_hf.dataset.configs import iter_rows
    from recllmsim_hf.dataset.human_configs import iter_human_rows
    from recllmsim_hf.schema import TASKS

    schema = features.arrow_schema
    names = list(features["task"].names) if "task" in features else list(TASKS)
    rows = iter_human_rows if table in HUMAN_TABLES else iter_rows
    batch, sent = [], 0
    for row in rows(table, corpus, names, split, splitter):
        batch.append(row)
        if len(batch) == BATCH:
            yield pa.Table.from_pylist(batch, schema=schema)
            batch, sent = [], sent + 1
    if batch or sent == 0:
        yield pa.Table.from_pylist(batch, schema=schema)


@dataclass
class SplitSize:
    """One split as written: rows, Arrow bytes, and the rows of each shard when there are several."""

    name: str
    num_bytes: int = 0
    num_examples: int = 0
    shard_lengths: list[int] | None = None


@dataclass
class ConfigInfo:
    """A built config: its columns, description and measured sizes (``datasets.DatasetInfo``'s
    fields that a card carries)."""

    features: object
    description: str
    splits: dict[str, SplitSize] = field(default_factory=dict)
    download_size: int = 0
    dataset_size: int = 0

    def add_split(self, split: SplitSize) -> None:
        self.splits[split.name] = split
        self.dataset_size = sum(s.num_bytes for s in self.splits.values())

    def yaml_dict(self, config_name: str) -> dict:
        """The card's ``dataset_info`` entry, keys in the order ``datasets`` writes them."""
        splits = [
            {"name": s.name, "num_bytes": s.num_bytes, "num_examples": s.num_examples}
            for s in self.splits.values()
        ]
        return {
            "config_name": config_name,
            "features": self.features.yaml_list(),
            "splits": splits,
            "download_size": self.download_size,
            "dataset_size": self.dataset_size,
        }

    @classmethod
    def from_yaml(cls, entry: dict, features, description: str = "") -> ConfigInfo:
        """A card's ``dataset_info`` entry back (``features``: the config's declared columns)."""
        info = cls(features, description, download_size=entry.get("download_size", 0))
        for s in entry.get("splits", []):
            info.add_split(SplitSize(s["name"], s["num_bytes"], s["num_examples"]))
        return info
