"""The card's field list: generated from the features, a meaning declared for every field."""

from __future__ import annotations

import json

import pytest
from datasets import ClassLabel, Features, List, Value

from recllmsim_hf.dataset.card_fields import MAX_TEXT, example_row, field_rows, type_name
from recllmsim_hf.feature_docs import describe
from recllmsim_hf.features import ALL_TABLES, features
from recllmsim_hf.human_schema import PROFILE_ATTRIBUTES

# profile_identification's label vocabulary comes from the release; any names do for its fields
_VOCABULARY = {name: ["a", "b"] for name in PROFILE_ATTRIBUTES}


@pytest.mark.parametrize("table", ALL_TABLES)
def test_every_feature_of_every_config_has_a_meaning(table):
    feats = features(table, vocabulary=_VOCABULARY)
    rows = field_rows(table, feats)
    assert [r.name for r in rows if not r.description] == []
    assert [r.name for r in rows if "." not in r.name] == list(feats)


def test_nested_fields_and_types():
    feats = Features(
        {
            "turns": List({"role": Value("string"), "ok": Value("bool")}),
            "ratings": {"diversity": Value("int8")},
            "tags": List(Value("string")),
            "label": ClassLabel(names=[f"n{i}" for i in range(10)]),
        }
    )
    rows = {r.name: r.type for r in field_rows("conversations", feats)}
    assert rows == {
        "turns": "list of struct",
        "turns.role": "string",
        "turns.ok": "bool",
        "ratings": "struct",
        "ratings.diversity": "int8",
        "tags": "list of string",
        "label": "ClassLabel: 0 n0, 1 n1, 2 n2, 3 n3, 4 n4, 5 n5, 6 n6, 7 n7, … (2 more)",
    }
    assert type_name(ClassLabel(names=["no", "yes"])) == "ClassLabel: 0 no, 1 yes"
    assert describe("conversations", "ratings.diversity").startswith("Diversity rating, 0-2")
    assert describe("nope", "nope") is None


def test_example_row_is_cut_short(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "t").mkdir()
    long, zh = "x" * 200, "中" * 100
    pq.write_table(
        pa.table({"a": [long, "second"], "b": [[1, 2, 3, 4], []], "c": [zh, ""]}),
        tmp_path / "t/train-00000-of-00001.parquet",
    )
    row = json.loads(example_row(tmp_path, "t", "train"))
    assert row["a"] == "x" * (MAX_TEXT - 1) + "…"
    assert row["b"] == [1, 2, "… 2 more"]
    assert row["c"] == "中" * ((MAX_TEXT - 1) // 2) + "…"  # a CJK character is two columns wide
