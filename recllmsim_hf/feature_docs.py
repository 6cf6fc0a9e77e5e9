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
}  # fmt: skip


def describe(table: str, path: str) -> str | None:
    """The meaning of the field ``path`` of ``table``, or None when none is declared."""
    return FIELDS.get(table, {}).get(path) or SHARED.get(path)
