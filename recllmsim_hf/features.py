"""The ``datasets.Features`` of the configs, derived from ``recllmsim_hf.schema`` and ``.human_schema``.

The five synthetic configs (:data:`TABLES`) always exist; the four human-study configs
(:data:`HUMAN_TABLES`) exist when the source holds the release's human studies and profile
vocabulary (:func:`human_features`).

One place: the builder declares these (:func:`features`, ``datasets.Features``), a build writes
its parquet files and the card's ``dataset_info`` from the same declaration without importing
``datasets`` (:func:`spec`, :mod:`recllmsim_hf.feature_types`), and ``tests/test_features.py``
checks them against the pydantic records.

``task`` is a ClassLabel. For the release its names are the paper's four tasks.
A generated corpus with custom tasks gets the four paper tasks first (ids 0-3,
so models trained on the release keep their ids) followed by its other tasks
in sorted order.
"""

from __future__ import annotations

from collections.abc import Iterable

from recllmsim_hf.errors import InputError
from recllmsim_hf.feature_types import ClassLabel, Features, List, Value
from recllmsim_hf.human_schema import (
    HALLUCINATION_JUDGEMENTS,
    HUMAN_INTENT_LABELS,
    HUMAN_RATINGS,
    PROFILE_ATTRIBUTES,
    SINGLE_VALUE_ATTRIBUTES,
    STRATEGIES,
    STUDIES,
)
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


def features(config: str, tasks: Iterable[str] = (), vocabulary: dict[str, list[str]] | None = None):
    """The ``datasets.Features`` of one config (aliases allowed) for a corpus with ``tasks`` (and,
    for ``profile_identification``, its profile ``vocabulary``); imports ``datasets``.

    Example:
        >>> features("intent")["label"].names[-1]
        'Others'
    """
    return spec(config, tasks, vocabulary).to_datasets()


def spec(config: str, tasks: Iterable[str] = (), vocabulary: dict[str, list[str]] | None = None) -> Features:
    """The same columns as :func:`features`, declared without ``datasets``
    (:mod:`recllmsim_hf.feature_types`): what a build writes."""
    names = task_names(tasks)
    table = table_of(config)
    if table in HUMAN_TABLES:
        return human_features(table, names, vocabulary)
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
        raise InputError(f"unknown config {config!r}: must be one of {list(ALL_CONFIG_NAMES)}")
    return Features(cols)


# -- the human studies and profile identification (present when the source has them) ----------------

HUMAN_TABLES: tuple[str, ...] = (
    "human_conversations",
    "human_profiles",
    "human_intent_utterances",
    "profile_identification",
)
ALL_TABLES: tuple[str, ...] = TABLES + HUMAN_TABLES
ALL_CONFIG_NAMES: tuple[str, ...] = CONFIG_NAMES + HUMAN_TABLES
for _table in HUMAN_TABLES:
    SPLITS[_table] = ("train",)
SPLITS["human_intent_utterances"] = SPLITS["profile_identification"] = ("train", "validation", "test")
# profile_identification's `source`
SOURCES: tuple[str, ...] = ("synthetic", "human")


def _profile_struct() -> dict:
    cols = {
        "gender": Value("string"),
        "gender_zh": Value("string"),
        "age": Value("int32"),
        "background": Value("string"),
        "background_zh": Value("string"),
    }
    for name in PROFILE_ATTRIBUTES:
        kind = Value("string") if name in SINGLE_VALUE_ATTRIBUTES else List(Value("string"))
        cols[name], cols[f"{name}_zh"] = kind, kind
    return cols


def _strategy(shape: dict[str, str]) -> dict:
    one = {field: Value("int8") if kind == "int" else Value("string") for field, kind in shape.items()}
    return {"final": one, "runs": List(one)}


def _human_ids(tasks: list[str]) -> dict:
    return {
        "conversation_id": Value("string"),
        "study": ClassLabel(names=list(STUDIES)),
        "user_id": Value("string"),
        "task": ClassLabel(names=tasks),
    }


HUMAN_TURN = {
    "role": Value("string"),
    "content": Value("string"),
    "intents": List(ClassLabel(names=list(HUMAN_INTENT_LABELS))),
    "hallucination": ClassLabel(names=list(HALLUCINATION_JUDGEMENTS)),
    "satisfaction": Value("int8"),
    "reason": Value("string"),
}
HUMAN_RATING_FEATURES = {name: Value("int8") for name in HUMAN_RATINGS}


def human_features(table: str, tasks: list[str], vocabulary: dict[str, list[str]] | None = None) -> Features:
    """The features of a human-study config; ``vocabulary`` (attribute -> English names, the
    corpus's ``profile_vocabulary.json``) is needed for ``profile_identification``."""
    if table == "human_conversations":
        cols = {
            **_human_ids(tasks),
            "assistant_model": Value("string"),
            "scenario_zh": Value("string"),
            "turns": List(HUMAN_TURN),
            "num_turns": Value("int32"),
            "ratings": HUMAN_RATING_FEATURES,
            "questionnaire": List(
                {"summary": Value("string"), "query": Value("string"), "option": Value("string")}
            ),
            **{column: _strategy(shape) for column, shape in STRATEGIES.values()},
            "profile": _profile_struct(),
            # JSON string: release keys the schema does not model (e.g. profile.complete_tid)
            "extra": Value("string"),
            "source_file": Value("string"),
        }
    elif table == "human_profiles":
        cols = {
            "study": ClassLabel(names=list(STUDIES)),
            "user_id": Value("string"),
            **_profile_struct(),
            "num_conversations": Value("int32"),
            "num_profile_versions": Value("int32"),
        }
    elif table == "human_intent_utterances":
        cols = {
            "utterance_id": Value("string"),
            **_human_ids(tasks),
            "turn_index": Value("int32"),
            "text": Value("string"),
            # the nearest assistant turn before this one (empty when there is none)
            "context": Value("string"),
            "labels": List(ClassLabel(names=list(HUMAN_INTENT_LABELS))),
        }
    elif table == "profile_identification":
        if vocabulary is None:
            raise InputError(
                "config 'profile_identification' needs the profile vocabulary "
                "(user_profiling/desc_translated.json of the release); build from the whole release"
            )
        cols = {
            "conversation_id": Value("string"),
            "source": ClassLabel(names=list(SOURCES)),
            "study": ClassLabel(names=list(STUDIES)),  # null for synthetic rows
            "user_id": Value("string"),
            "task": ClassLabel(names=tasks),
            # the user's turns, one a line: Chinese for both sources; English for synthetic rows
            "text": Value("string"),
            "text_en": Value("string"),
            **{name: List(ClassLabel(names=list(vocabulary[name]))) for name in PROFILE_ATTRIBUTES},
        }
    else:
        raise InputError(f"unknown config {table!r}: must be one of {list(ALL_CONFIG_NAMES)}")
    return Features(cols)
