"""What each feature of each config means: one description per field, beside ``features.py``.

The card's "Data fields" section (``recllmsim_hf.dataset.card_fields``) walks the features of
every config a build ships and takes each field's meaning from here; its type comes from the
features themselves. A field is named by its path: ``turns.role`` is ``role`` inside the list
``turns``, ``ratings.diversity`` a member of the struct ``ratings``. :data:`SHARED` holds the
fields several configs have in common; ``FIELDS[table]`` the rest (and overrides). Descriptions
of the profile fields and of the seven ratings are derived from the schema's own tables
(``PROFILE_FIELDS``, ``RATING_METRICS``), not written twice. ``tests/dataset/test_card_fields.py``
checks that every feature of every config has a description.

A new config adds ``FIELDS["<table>"] = {...}`` here; nothing in the card template changes.

Example:
    >>> describe("intent_utterances", "label")
    'The intent of the utterance (the paper\\'s five classes).'
"""

from __future__ import annotations

from recllmsim_hf.human_schema import (
    PROFILE_ATTRIBUTES,
    QUESTIONNAIRE,
    SINGLE_VALUE_ATTRIBUTES,
    STRATEGIES,
    STRATEGY_VALUES,
)
from recllmsim_hf.schema import PROFILE_FIELDS, RATING_METRICS, SINGLE_VALUE_PROFILE_FIELDS

_RATING_DOCS = {
    name: f"{release} rating, 0-{top} (higher is better); null when not rated, never 0 for missing."
    for name, (release, top) in RATING_METRICS.items()
}


def _profile_docs() -> dict[str, str]:
    out = {}
    for name, label in PROFILE_FIELDS.items():
        shape = "" if name in SINGLE_VALUE_PROFILE_FIELDS else ", a list of likes and dislikes"
        out[name] = f'The profile\'s field "{label}" in English{shape}; null or empty when not given.'
        out[f"{name}_zh"] = "The same field in Chinese (the release's translation); null or empty if missing."
    return out


def _human_profile_docs(prefix: str) -> dict[str, str]:
    out = {
        f"{prefix}gender": "The person's gender in English (`Male`, `Female`).",
        f"{prefix}gender_zh": "The gender as the release writes it (Chinese).",
        f"{prefix}age": "The person's age in years.",
        f"{prefix}background": "human_exp_V2: field of study or work (our English); null in real_human_user.",
        f"{prefix}background_zh": "The background as the release writes it (Chinese); null where absent.",
    }
    for name, label in PROFILE_ATTRIBUTES.items():
        shape = "" if name in SINGLE_VALUE_ATTRIBUTES else ", a list"
        out[f"{prefix}{name}"] = f'"{label}" in English (the release\'s desc_translated.json){shape}.'
        out[f"{prefix}{name}_zh"] = f'"{label}" as the person gave it (Chinese){shape}.'
    return out


def _strategy_docs() -> dict[str, str]:
    out = {}
    for key, (column, shape) in STRATEGIES.items():
        out[column] = f"The release's `{key}` user-behaviour annotation (null when the file has none)."
        out[f"{column}.final"] = "The final annotation."
        out[f"{column}.runs"] = "The individual annotation runs (`1`, `2`, `3` of the release), in order."
        for field in shape:
            values = STRATEGY_VALUES[key][field]
            if shape[field] == "int":
                allowed = f"an integer {min(values)}-{max(values)}"
            else:
                allowed = "one of " + " / ".join(values)
            doc = f"`{field}` of the annotation: {allowed} (checked on import)."
            out[f"{column}.final.{field}"] = out[f"{column}.runs.{field}"] = doc
    return out


_QUESTION_DOCS = {
    q.rating: f"Questionnaire \"{q.summary}\" on the synthetic scale ("
    + ", ".join(f"{option} = {score}" for option, score in q.scores.items())
    + "); null when not answered."
    for q in QUESTIONNAIRE
}
_HUMAN_IDS = {
    "conversation_id": "Id of the conversation: `<study>-<user>-<task slug>-<n>`.",
    "study": "Which study of real people: `real_human_user` or `human_exp_V2`.",
    "user_id": "The person, namespaced by study (`<study>/User_<k>`): the two studies number users apart.",
    "task": "The task (ClassLabel with the same names as the synthetic configs).",
}

SHARED: dict[str, str] = {
    "conversation_id": "Id of the conversation: `<task folder>-<n>` (release), `c<i>-<hash>` (generated).",
    "scenario_id": "Id of the task scenario the user simulator was given (`<task>-<id>`).",
    "profile_id": "Id of the simulated user's profile (a row of `profiles`).",
    "task": "The task of the conversation (ClassLabel; the paper's four tasks are ids 0-3).",
    "utterance_id": "Id of the utterance: `<conversation_id>-<turn_index>`.",
    "turn_index": "Position of the turn in its conversation, from 0.",
    "text": "The utterance in English.",
    "text_zh": "The utterance in Chinese (the release's translation); null or empty when not translated.",
    "num_turns": "Number of turns (user and assistant) of the conversation.",
    **{name: doc for name, doc in _RATING_DOCS.items()},
}  # fmt: skip

FIELDS: dict[str, dict[str, str]] = {
    "conversations": {
        "round": "Generation round of the task (the release's \"new travel planning\" folder is round 2).",
        "profile": "The profile text the user simulator played, in English.",
        "profile_zh": "The profile text in Chinese, as translated in this conversation.",
        "scenario": "The task scenario the user simulator was given, in English.",
        "scenario_zh": "The scenario in Chinese, as translated in this conversation.",
        "turns": "The conversation, in order: user and assistant turns with their annotations.",
        "turns.role": "Who speaks: `user` (the simulator) or `assistant`.",
        "turns.content": "What was said, in English.",
        "turns.content_zh": "What was said, in Chinese; null when not translated.",
        "turns.intent": "User turns: the intent (one of the five labels of `intent_utterances`); else null.",
        "turns.hallucination": "Assistant turns: whether the reply holds a common-sense hallucination.",
        "turns.reason": "Assistant turns: the annotator's note on that judgement (the release writes "
        "\"No Hallucination\" for a clean reply); null when there is none.",
        "preference_summary": "Short phrases summing up the preferences the user expressed.",
        "conflict": "The release's `conflict` flag as is (the paper does not define it); null if absent.",
        "ratings": "The seven quality ratings of the conversation (see `quality_scores`).",
        **{f"ratings.{name}": doc for name, doc in _RATING_DOCS.items()},
        "end_reason": "Generated corpora: why the chat ended (`goodbye`, `max_turns`); null for the release.",
        "filter_passed": "Generated corpora: whether it passed the generation filters; null where none ran.",
        "generation": "JSON: how the conversation was generated (models, temperatures, seed, prompt version, "
        "tokens, cost, start time); null for the release.",
        "extra": "JSON: keys of the source the schema does not model (e.g. the release's `strategy*` notes, "
        "filter verdicts, annotation provenance).",
        "source_file": "The release file it came from (`<task folder>/<n>.json`); null when generated.",
    },
    "profiles": {
        "profile_id": "Id of the profile (what `profile_id` of the other configs refers to).",
        "text": "The profile text the user simulator was shown, in English.",
        "text_zh": "The profile text in Chinese; null when not translated.",
        **_profile_docs(),
        "duplicate_of": "The first profile id (natural order) with the same text; null for that first one.",
        "num_conversations": "Number of conversations in the dataset played with this profile.",
        "extra": "JSON: keys of the source the schema does not model.",
    },
    "intent_utterances": {
        "text": "The user utterance in English.",
        "context": "The turn before this one (the assistant's reply), \"\" for a first turn.",
        "label": "The intent of the utterance (the paper's five classes).",
    },
    "hallucinations": {
        "text": "The assistant reply in English.",
        "context": "The user turn before this reply, \"\" for a first turn.",
        "hallucination": "Whether the reply holds a common-sense hallucination.",
        "reason": "The annotator's note on the judgement (\"No Hallucination\" for a clean reply in the "
        "release); null when there is none.",
    },
    "quality_scores": {},
    "human_conversations": {
        **_HUMAN_IDS,
        "assistant_model": "human_exp_V2: the assistant model named by the file (`chat_model`); else null.",
        "scenario_zh": "The task context the person was given (Chinese).",
        "turns": "The conversation, in order (texts in Chinese).",
        "turns.role": "`user` (the person) or `assistant`.",
        "turns.content": "What was said (Chinese).",
        "turns.intents": "real_human_user user turns: the intents (推荐 Recommendation, 规划 Planning, 评估 "
        "Evaluation, 其它 Others), several allowed; empty where not annotated.",
        "turns.hallucination": "Assistant turns of both studies: the person's hallucination judgement "
        "(否 no, 是 yes, 无法判断 cannot tell); null on user turns.",
        "turns.satisfaction": "human_exp_V2 assistant turns: the person's satisfaction, 1-5; else null.",
        "turns.reason": "human_exp_V2 assistant turns: why the answer fell short (Chinese); else null.",
        "num_turns": "Number of turns of the conversation.",
        "ratings": "The questionnaire's answers on the synthetic quality metrics' scales.",
        **{f"ratings.{name}": doc for name, doc in _QUESTION_DOCS.items()},
        "questionnaire": "The questionnaire as the release gives it.",
        "questionnaire.summary": "The question's short name (Memorization, Detail, Availability, Diversity).",
        "questionnaire.query": "The question (Chinese).",
        "questionnaire.option": "The option the person chose (Chinese).",
        **_strategy_docs(),
        "profile": "The person's profile as this file states it.",
        **_human_profile_docs("profile."),
        "extra": "JSON: keys of the file the schema does not model (e.g. `profile.complete_tid`).",
        "source_file": "The release file (`<study>/User_<k>/<task>/<n>.json`).",
    },
    "human_profiles": {
        "study": _HUMAN_IDS["study"],
        "user_id": _HUMAN_IDS["user_id"],
        **_human_profile_docs(""),
        "num_conversations": "Number of conversations of this person in `human_conversations`.",
        "num_profile_versions": "How many different profiles the person's files state (most stated kept).",
    },
    "human_intent_utterances": {
        **_HUMAN_IDS,
        "utterance_id": "Id of the utterance: `<conversation_id>-<turn_index>`.",
        "text": "The person's utterance (Chinese).",
        "context": "The nearest assistant turn before it, \"\" when there is none.",
        "labels": "The utterance's intents (multi-label: Recommendation, Planning, Evaluation, Others).",
    },
    "profile_identification": {
        "conversation_id": "Id of the conversation (of `conversations` or `human_conversations`).",
        "source": "`synthetic` (an LLM played the user) or `human` (a real person).",
        "study": "Human rows: the study; null for synthetic rows.",
        "user_id": "The user: a profile id for synthetic rows, `<study>/User_<k>` for human rows.",
        "task": _HUMAN_IDS["task"],
        "text": "The user's turns, one a line, in Chinese (both sources).",
        "text_en": "Synthetic rows: the user's turns in English; null for human rows.",
        **{
            name: f'The user\'s "{label}" labels (one English vocabulary per attribute).'
            for name, label in PROFILE_ATTRIBUTES.items()
        },
    },
}  # fmt: skip


def describe(table: str, path: str) -> str | None:
    """The meaning of the field ``path`` of ``table``, or None when none is declared."""
    return FIELDS.get(table, {}).get(path) or SHARED.get(path)
