"""The card's "Data fields" section: every field of every shipped config, and one example row.

Generic over whatever configs a build ships: the types come from each config's
declared features (the one schema source, ``recllmsim_hf.features``), the meanings from
``recllmsim_hf.feature_docs``, and the example is the first row of the config's first split,
read from the build's own parquet shards with long texts and lists cut short.

Example:
    >>> type_name(ClassLabel(names=["no", "yes"]))  # doctest: +SKIP
    'ClassLabel: 0 no, 1 yes'
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from recllmsim_hf.feature_docs import describe

MAX_TEXT = 60  # characters of a string in an example row
MAX_ITEMS = 2  # items of a list in an example row
_MAX_NAMES = 8  # class names listed in full


@dataclass(frozen=True)
class FieldRow:
    name: str  # a path: "turns.role" is `role` inside the list `turns`
    type: str
    description: str


@dataclass(frozen=True)
class ConfigFields:
    name: str
    fields: tuple[FieldRow, ...]
    example_split: str
    example: str  # JSON of one row, cut short


def _inner(feature):
    """The item feature of a list feature (``List``, ``Sequence``, ``LargeList`` or ``[x]``), else None."""
    if isinstance(feature, list):
        return feature[0]
    if type(feature).__name__ in ("List", "LargeList", "Sequence"):
        return feature.feature
    return None


def type_name(feature) -> str:
    """A short readable type: ``string``, ``int8``, ``list of string``, ``struct``, ``ClassLabel: ...``."""
    inner = _inner(feature)
    if inner is not None:
        return f"list of {type_name(inner)}"
    if isinstance(feature, dict):
        return "struct"
    kind = type(feature).__name__
    if kind == "ClassLabel":
        names = list(feature.names)
        shown = ", ".join(f"{i} {n}" for i, n in enumerate(names[:_MAX_NAMES]))
        more = f", … ({len(names) - _MAX_NAMES} more)" if len(names) > _MAX_NAMES else ""
        return f"ClassLabel: {shown}{more}"
    if kind == "Value":
        return str(feature.dtype)
    return kind


def field_rows(table: str, features) -> tuple[FieldRow, ...]:
    """One row per field and sub-field of ``features``, in declaration order."""
    rows: list[FieldRow] = []

    def walk(prefix: str, feature) -> None:
        rows.append(FieldRow(prefix, type_name(feature), describe(table, prefix) or ""))
        inner = _inner(feature)
        children = inner if isinstance(inner, dict) else feature if isinstance(feature, dict) else {}
        for key, child in children.items():
            walk(f"{prefix}.{key}", child)

    for name, feature in features.items():
        walk(name, feature)
    return tuple(rows)


def _cut_text(text: str) -> str:
    """At most MAX_TEXT columns; a CJK character takes two, so a Chinese text is cut as short."""
    width = 0
    for i, char in enumerate(text):
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if width > MAX_TEXT - 1:
            return text[:i] + "…"
    return text


def _cut(value):
    if isinstance(value, str):
        return _cut_text(value)
    if isinstance(value, list):
        head = [_cut(v) for v in value[:MAX_ITEMS]]
        return head + [f"… {len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else head
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    return value


def example_row(folder: Path, table: str, split: str) -> str:
    """The first row of ``table``'s ``split`` as indented JSON, long values cut short."""
    import pyarrow.parquet as pq

    first = sorted((Path(folder) / table).glob(f"{split}-*.parquet"))[0]
    batch = next(pq.ParquetFile(first).iter_batches(batch_size=1))
    row = {name: batch.column(name)[0].as_py() for name in batch.schema.names}
    return json.dumps(_cut(row), ensure_ascii=False, indent=2)


def data_fields(folder: Path, infos: dict, splits: dict[str, list[str]]) -> tuple[ConfigFields, ...]:
    """The section's content for the tables of ``splits`` (table -> shipped splits, in card order);
    ``infos`` maps each table to its ``ConfigInfo``."""
    out = []
    for table, shipped in splits.items():
        if not shipped:
            continue
        out.append(
            ConfigFields(
                name=table,
                fields=field_rows(table, infos[table].features),
                example_split=shipped[0],
                example=example_row(folder, table, shipped[0]),
            )
        )
    return tuple(out)
