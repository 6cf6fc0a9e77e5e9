"""The datasets features and the pydantic records are one schema."""

import pyarrow.parquet as pq
from datasets import ClassLabel, Features, List

from recllmsim_hf.features import CONFIG_NAMES, RATINGS, TABLES, TURN, features, task_names
from recllmsim_hf.schema import INTENT_LABELS, TASKS, ProfileFields, Ratings, Turn


def test_ratings_columns_are_the_pydantic_ratings():
    assert list(RATINGS) == list(Ratings.model_fields)


def test_turn_struct_fields_are_turn_fields():
    assert set(TURN) <= set(Turn.model_fields)
    assert set(Turn.model_fields) - set(TURN) == {"extra"}


def test_profile_columns_are_the_profile_fields_in_both_languages():
    cols = features("profiles")
    for name in ProfileFields.model_fields:
        assert name in cols and f"{name}_zh" in cols
        single = name in ("gender", "age", "occupation")
        assert isinstance(cols[name], List) != single


def test_intent_label_is_the_paper_order():
    label = features("intent")["label"]
    assert isinstance(label, ClassLabel)
    assert label.names == ["Search", "Recommendation", "Search & Recommendation", "Planning", "Others"]
    assert tuple(label.names) == INTENT_LABELS


def test_alias_has_the_same_features():
    assert features("intent") == features("intent_utterances")
    assert set(CONFIG_NAMES) == set(TABLES) | {"intent"}


def test_custom_tasks_come_after_the_paper_tasks():
    names = task_names(["museum visits", "travel planning", "dog walking"])
    assert names == list(TASKS) + ["dog walking", "museum visits"]
    assert features("quality_scores", ["museum visits"])["task"].names[4] == "museum visits"


def test_built_parquet_carries_exactly_the_features(built_release):
    for table in TABLES:
        for path in sorted((built_release / table).glob("*.parquet")):
            schema = pq.read_schema(path)
            assert Features.from_arrow_schema(schema) == features(table), path
