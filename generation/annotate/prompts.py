"""What the LLM annotators are told and what they must answer, plus :data:`ANNOTATION_PROMPT_VERSION`.

Five annotators, each one structured output (a pydantic model sent as a strict JSON schema;
a reply outside the allowed values fails validation and is retried by the runner):

==================  =========================  ==========================================
annotator           asked once per             answer model
==================  =========================  ==========================================
``intent``          user turn                  :class:`IntentAnnotation` (5 labels)
``hallucination``   assistant turn             :class:`HallucinationAnnotation`
``quality``         conversation               :class:`QualityAnnotation` (7 ratings)
``summary``         conversation               :class:`PreferenceSummary` (3-5 phrases)
``translation``     profile, scenario, turn    :class:`Translation` (Simplified Chinese)
==================  =========================  ==========================================

The definitions and the rubric follow the metrics and labels of the RecLLMSim paper
(§4.2, §4.3), written here in this project's own words. ``ANNOTATION_PROMPT_VERSION`` is
part of every cache key and of the provenance stored with each annotated conversation:
change it whenever a text or a model below changes.

The material an annotator judges is wrapped in tags (``<utterance>``, ``<reply>``,
``<conversation>`` ...) so that neither the model nor a test server can mistake it for
instructions.

Example:
    >>> IntentAnnotation.model_validate_json('{"intent": "Planning"}').intent
    'Planning'
    >>> QualityAnnotation.model_fields["memorization"].annotation
    typing.Literal[0, 1]
"""

from __future__ import annotations

import copy
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recllmsim_hf.schema import INTENT_LABELS, RATING_METRICS, Intent

ANNOTATION_PROMPT_VERSION = "recllmsim-annotate-1"

# The annotators, in the order they run and are reported.
ANNOTATORS: tuple[str, ...] = ("intent", "hallucination", "quality", "summary", "translation")

# Upper bounds of the reply length (tokens) per annotator; they also bound --budget-usd's
# worst case. Translations get more room in proportion to the text (see translation_max_tokens).
MAX_TOKENS = {"intent": 40, "hallucination": 300, "quality": 600, "summary": 200}


_SCHEMAS: dict[type, dict] = {}


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def model_json_schema(cls, *args, **kwargs) -> dict:
        """Memoised for the default arguments: every call's cache key hashes the schema, and
        pydantic takes about 1 ms to build it (most of the planning time of a large corpus)."""
        if args or kwargs:
            return super().model_json_schema(*args, **kwargs)
        if cls not in _SCHEMAS:
            _SCHEMAS[cls] = super().model_json_schema()
        return copy.deepcopy(_SCHEMAS[cls])


class IntentAnnotation(_Answer):
    """The intent of one user utterance."""

    intent: Intent


class HallucinationAnnotation(_Answer):
    """Whether one assistant reply contains a common-sense error, and which."""

    hallucination: bool
    reason: str

    @model_validator(mode="after")
    def _reason_when_found(self) -> HallucinationAnnotation:
        if self.hallucination and not self.reason.strip():
            raise ValueError("a hallucination needs its reason")
        return self


class QualityAnnotation(_Answer):
    """Short notes on the evidence, then the seven ratings of the conversation."""

    notes: str
    preference_alignment: Literal[0, 1, 2]
    additional_preferences: Literal[0, 1]
    role_playing_completeness: Literal[0, 1, 2]
    memorization: Literal[0, 1]
    detail_level: Literal[0, 1, 2]
    practical_usefulness: Literal[0, 1, 2]
    diversity: Literal[0, 1, 2]


class PreferenceSummary(_Answer):
    """Three to five short phrases naming what the user wanted in one conversation."""

    phrases: list[str] = Field(min_length=3, max_length=5)

    @model_validator(mode="after")
    def _phrases_not_blank(self) -> PreferenceSummary:
        if any(not p.strip() for p in self.phrases):
            raise ValueError("a phrase is empty")
        return self


class Translation(_Answer):
    """A text in Simplified Chinese."""

    translation: str

    @model_validator(mode="after")
    def _not_blank(self) -> Translation:
        if not self.translation.strip():
            raise ValueError("the translation is empty")
        return self


ANSWER_MODELS: dict[str, type[_Answer]] = {
    "intent": IntentAnnotation,
    "hallucination": HallucinationAnnotation,
    "quality": QualityAnnotation,
    "summary": PreferenceSummary,
    "translation": Translation,
}

# -- intent ---------------------------------------------------------------------------------------

INTENT_DEFINITIONS: dict[str, str] = {
    "Search": (
        "The user wants facts about something definite: what a place, dish, product, rule or "
        "method is, how it works, what it costs, when it opens. The answer is information, "
        "not a choice made for them."
    ),
    "Recommendation": (
        "The user wants the assistant to propose or choose options that suit them (places, "
        "dishes, gifts, courses, products), or tells their likes, dislikes and limits so that "
        "the assistant can pick or adjust suggestions."
    ),
    "Search & Recommendation": (
        "One message does both: it asks for facts about something and also asks for "
        "suggestions chosen for the user."
    ),
    "Planning": (
        "The user wants a whole plan organised or changed: an itinerary, a schedule, a learning "
        "path, a menu and its cooking order, a budget split, the steps of a process. Opening "
        "messages that lay out the whole task usually belong here."
    ),
    "Others": (
        "Nothing new is requested: greetings, thanks, agreement, confirmation, feelings, small "
        "talk, closing the conversation (for example 'Thank you, goodbye.')."
    ),
}
assert tuple(INTENT_DEFINITIONS) == INTENT_LABELS

INTENT_SYSTEM = (
    "You annotate conversations between a user and an AI assistant who helps with a task "
    "(travel planning, learning a skill, planning a meal, choosing a gift). Classify what the "
    "user wants from the assistant in ONE user message, using exactly one of these labels:\n\n"
    + "\n".join(f"- {label}: {text}" for label, text in INTENT_DEFINITIONS.items())
    + "\n\nJudge the message itself; the assistant's previous message is given only as context. "
    "When a message has several parts, label the request that matters most; use "
    "'Search & Recommendation' only when factual questions and a request for suggestions "
    'carry equal weight. Answer in JSON: {"intent": "<label>"}.'
)


def intent_messages(task: str, context: str, utterance: str) -> list[dict]:
    """Messages asking for the intent of ``utterance`` (``context``: the preceding assistant turn)."""
    context = context or "(none: this is the first message)"
    user = (
        f"Task: {task}\n\n<previous_assistant_message>\n{context}\n</previous_assistant_message>\n\n"
        f"<utterance>\n{utterance}\n</utterance>"
    )
    return [{"role": "system", "content": INTENT_SYSTEM}, {"role": "user", "content": user}]


# -- hallucination ----------------------------------------------------------------------------------

HALLUCINATION_SYSTEM = """\
You check replies of an AI assistant for common-sense hallucinations: statements that any \
well-informed person would know to be false or impossible. Examples: a place put in the \
wrong country or city, a landmark, dish or custom that does not exist, travel times or \
distances that cannot be right, seasons or holidays on impossible dates, physically \
impossible instructions (baking bread in two minutes), a budget whose sum is plainly wrong, \
contradicting a fact the reply itself states.

These are NOT hallucinations: opinions, taste, suggestions the user might dislike, missing \
detail, vague wording, prices or opening hours that are merely approximate, and anything you \
cannot check with general knowledge. Flag only clear errors; most replies have none.

Answer in JSON: {"hallucination": true|false, "reason": "..."}. When true, the reason names \
the false statement and what is actually the case, in one or two sentences. When false, the \
reason is an empty string."""


def hallucination_messages(task: str, request: str, reply: str) -> list[dict]:
    """Messages asking whether ``reply`` (answering ``request``) contains a common-sense error."""
    user = f"Task: {task}\n\n<user_message>\n{request}\n</user_message>\n\n<reply>\n{reply}\n</reply>"
    return [{"role": "system", "content": HALLUCINATION_SYSTEM}, {"role": "user", "content": user}]


# -- quality -----------------------------------------------------------------------------------------

# metric -> (what it measures, meaning of each score from 0 up); the scales are the paper's.
QUALITY_RUBRIC: dict[str, tuple[str, tuple[str, ...]]] = {
    "preference_alignment": (
        "Does the USER act like the person in the profile?",
        (
            "the user's wishes ignore or contradict the profile",
            "some wishes reflect the profile, others are generic or slightly off",
            "the user's wishes and reactions consistently follow the profile where it is relevant",
        ),
    ),
    "additional_preferences": (
        "Does the USER show concrete preferences that are NOT in the profile or the scenario?",
        (
            "no, only what the profile and scenario already state",
            "yes, at least one new, specific like, dislike or constraint",
        ),
    ),
    "role_playing_completeness": (
        "Do the USER's requests move the scenario's task towards being done?",
        (
            "off-task, out of role (e.g. answers as the assistant) or stops before any progress",
            "on-task but leaves important parts of the scenario unasked or repeats itself",
            "stays in role and asks for what the scenario needs, in a sensible order",
        ),
    ),
    "memorization": (
        "Does the ASSISTANT keep every earlier user requirement in mind?",
        (
            "it forgets, drops or contradicts something the user asked for earlier",
            "later replies respect all earlier requirements",
        ),
    ),
    "detail_level": (
        "How specific are the ASSISTANT's replies?",
        (
            "general advice with few or no specifics",
            "some specifics (names, amounts, times, steps) but much stays general",
            "rich in specifics: named options, quantities, times, prices or step-by-step instructions",
        ),
    ),
    "practical_usefulness": (
        "Could a real person act on the ASSISTANT's advice?",
        (
            "impractical, wrong or irrelevant to the user's situation",
            "helpful, but needs much extra work or has notable problems",
            "feasible and relevant: the user could follow it as given",
        ),
    ),
    "diversity": (
        "How varied are the ASSISTANT's replies?",
        (
            "repetitive: one option, or the same content restated",
            "some alternatives, with noticeable repetition",
            "varied options and angles across replies, little repetition",
        ),
    ),
}
assert tuple(QUALITY_RUBRIC) == tuple(RATING_METRICS)
assert all(len(levels) == RATING_METRICS[m][1] + 1 for m, (_, levels) in QUALITY_RUBRIC.items())


def _rubric() -> str:
    lines = []
    for metric, (question, levels) in QUALITY_RUBRIC.items():
        lines.append(f"{metric} (0-{len(levels) - 1}): {question}")
        lines.extend(f"  {score} = {text}" for score, text in enumerate(levels))
    return "\n".join(lines)


QUALITY_SYSTEM = (
    "You rate a conversation in which a USER, role-played by an AI from a profile and a task "
    "scenario, asks an AI ASSISTANT for help. Rate each metric on its own scale; use only the "
    "scores listed.\n\n"
    + _rubric()
    + "\n\nFirst write short notes (at most three sentences) on the evidence, then the scores. "
    'Answer in JSON: {"notes": "...", ' + ", ".join(f'"{m}": <score>' for m in QUALITY_RUBRIC) + "}."
)


def transcript(turns: list[tuple[str, str]]) -> str:
    """Turns as ``[i] ROLE: text`` blocks, the form every conversation-level annotator reads."""
    return "\n\n".join(f"[{i}] {role.upper()}: {text}" for i, (role, text) in enumerate(turns))


def quality_messages(profile: str, scenario: str, turns: list[tuple[str, str]]) -> list[dict]:
    """Messages asking for the seven ratings of one conversation."""
    user = (
        f"<profile>\n{profile}\n</profile>\n\n<scenario>\n{scenario}\n</scenario>\n\n"
        f"<conversation>\n{transcript(turns)}\n</conversation>"
    )
    return [{"role": "system", "content": QUALITY_SYSTEM}, {"role": "user", "content": user}]


# -- preference summary ------------------------------------------------------------------------------

SUMMARY_SYSTEM = """\
You read a conversation in which a USER asks an AI ASSISTANT for help with a task. Describe \
the preferences the USER shows (what they want, like, avoid or insist on) in three to five \
short phrases of two to six words, in lower case English, most important first. Describe \
the user's wishes, not the assistant's suggestions. Answer in JSON: {"phrases": ["...", ...]}."""


def summary_messages(task: str, turns: list[tuple[str, str]]) -> list[dict]:
    """Messages asking for the preference summary of one conversation."""
    user = f"Task: {task}\n\n<conversation>\n{transcript(turns)}\n</conversation>"
    return [{"role": "system", "content": SUMMARY_SYSTEM}, {"role": "user", "content": user}]


# -- translation ------------------------------------------------------------------------------------

TRANSLATION_SYSTEM = """\
Translate the text inside <text> from English into Simplified Chinese. Keep the meaning, \
the tone and the layout: line breaks, numbering, lists and markdown stay as they are; keep \
names of places, products and people recognisable (add the original in brackets when there \
is no common Chinese name). Translate everything, add nothing. Answer in JSON: \
{"translation": "..."}."""


def translation_messages(text: str) -> list[dict]:
    """Messages asking for the Chinese translation of ``text``."""
    user = f"<text>\n{text}\n</text>"
    return [{"role": "system", "content": TRANSLATION_SYSTEM}, {"role": "user", "content": user}]


def translation_max_tokens(text: str) -> int:
    """Reply budget of a translation: Chinese needs about one token per English word or less."""
    return 256 + len(text) // 2
