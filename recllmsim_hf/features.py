"""The ``datasets.Features`` of the five configs, derived from ``recllmsim_hf.schema``.

One place: the builder declares these, the parquet files carry them, the card's
``dataset_info`` is written from them, and ``tests/test_features.py`` checks them
against the pydantic records.

``task`` is a ClassLabel. For the release its names are the paper's four tasks.
A generated corpus with custom tasks gets the four paper tasks first (ids 0-3,
so models trained on the release keep their ids) followed by its other tasks
in sorted order.
"""

from __future__ import annotations

from collections.abc import Iterable

from datasets import ClassLabel, Features, List, Value

from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import (
    INTENT_LABELS,
    PROFILE_FIELDS,
    RATING_METRICS,
    SINGLE_VALUE_PROFILE_FIELDS,
    TASKS,
)

# The five tables, in card order; "intent" is an alias of "intent_utterances".
TABLES: tuple[str, ...] = (
    "conversations",
    "profiles",
    "intent_utterances",
    "hallucinations",
    "quality_scores",
)
ALIASES: dict[str, str] = {"intent": "intent_utterances"}
CONFIG_NAMES: tuple[str, ...] = TABLES + tuple(ALIASES)
SPLITS: dict[str, tuple[str, ...]] = {table: ("train",) for table in TABLES}
SPLITS["intent_utterances"] = ("train", "validation", "test")


def table_of(config: str) -> str:
    """Resolve an alias: ``table_of("intent") == "intent_utterances"``."""
    return ALIASES.get(config, config)


def task_names(tasks: Iterable[str] = ()) -> list[str]:
    """The paper's four tasks, then any other task of ``tasks`` in sorted order."""
    return list(TASKS) + sorted(set(tasks) - set(TASKS))


def _ids(tasks: list[str]) -> dict:
    return {
        "conversation_id": Value("string"),
        "scenario_id": Value("string"),
        "profile_id": Value("string"),
        "task": ClassLabel(names=tasks),
    }


def _utterance(tasks: list[str]) -> dict:
    return {
        "utterance_id": Value("string"),
        **_ids(tasks),
        "turn_index": Value("int32"),
        "text": Value("string"),
        "text_zh": Value("string"),
        # the turn before this one (empty for a first turn)
        "context": Value("string"),
    }


RATINGS = {name: Value("int8") for name in RATING_METRICS}
TURN = {
    "role": Value("string"),
    "content": Value("string"),
    "content_zh": Value("string"),
    "intent": Value("string"),
    "hallucination": Value("bool"),
    "reason": Value("string"),
}


def features(config: str, tasks: Iterable[str] = ()) -> Features:
    """The features of one config (aliases allowed) for a corpus with ``tasks``.

    Example:
        >>> features("intent")["label"].names[-1]
        'Others'
    """
    names = task_names(tasks)
    table = table_of(config)
    if table == "intent_utterances":
        cols = {**_utterance(names), "label": ClassLabel(names=list(INTENT_LABELS))}
    elif table == "hallucinations":
        cols = {**_utterance(names), "hallucination": Value("bool"), "reason": Value("string")}
    elif table == "quality_scores":
        cols = {**_ids(names), "num_turns": Value("int32"), **RATINGS}
    elif table == "conversations":
        cols = {
            **_ids(names),
            "round": Value("int32"),
            # profile and scenario texts; *_zh as translated in this conversation
            "profile": Value("string"),
            "profile_zh": Value("string"),
            "scenario": Value("string"),
            "scenario_zh": Value("string"),
            "turns": List(TURN),
            "num_turns": Value("int32"),
            "preference_summary": List(Value("string")),
            "conflict": Value("bool"),
            "ratings": RATINGS,
            # generated corpora: why the chat ended, whether it passed the filters
            "end_reason": Value("string"),
            "filter_passed": Value("bool"),
            # JSON strings: generation metadata, and release keys the schema does not model
            "generation": Value("string"),
            "extra": Value("string"),
            "source_file": Value("string"),
        }
    elif table == "profiles":
        cols = {"profile_id": Value("string"), "text": Value("string"), "text_zh": Value("string")}
        for name in PROFILE_FIELDS:
            kind = Value("string") if name in SINGLE_VALUE_PROFILE_FIELDS else List(Value("string"))
            cols[name] = kind
            cols[f"{name}_zh"] = kind
        # the first profile id (natural order) with the same text, null when this one is the first
        cols["duplicate_of"] = Value("string")
        cols["num_conversations"] = Value("int32")
        cols["extra"] = Value("string")
    else:
        raise InputError(f"unknown config {config!r}: must be one of {list(CONFIG_NAMES)}")
    return Features(cols)
