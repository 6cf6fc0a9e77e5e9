"""The corpus records: one pydantic model per thing the corpus holds.

These models are the single source of truth for what a profile, a scenario, a
turn and a conversation are. The generation toolkit writes them, the release
importer produces them, and ``recllmsim_hf.features`` derives the ``datasets``
features of the five configs from the same constants (a test checks that the
two agree).

Kept free of heavy imports (no ``datasets``) so the CLI starts fast.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = "1.0"

# The paper's label order (RecLLMSim §4.3, §5): the ClassLabel ids follow it.
INTENT_LABELS: tuple[str, ...] = (
    "Search",
    "Recommendation",
    "Search & Recommendation",
    "Planning",
    "Others",
)
# The release's Chinese names of the intents (`intent_zh`).
INTENT_LABELS_ZH: dict[str, str] = {
    "Search": "检索",
    "Recommendation": "推荐",
    "Search & Recommendation": "检索+推荐",
    "Planning": "规划",
    "Others": "其他",
}

# The paper's four tasks, in the order of its introduction; ClassLabel ids 0-3.
TASKS: tuple[str, ...] = (
    "travel planning",
    "skills learning planning",
    "recipe planning",
    "preparing gifts",
)

# field name -> (name in the release's `rating`, highest score); the lowest is 0.
RATING_METRICS: dict[str, tuple[str, int]] = {
    "preference_alignment": ("Preference Alignment", 2),
    "additional_preferences": ("Additional Preferences", 1),
    "role_playing_completeness": ("Role-Playing Completeness", 2),
    "memorization": ("Memorization", 1),
    "detail_level": ("Detail Level", 2),
    "practical_usefulness": ("Practical Usefulness", 2),
    "diversity": ("Diversity", 2),
}

# field name -> name in the release's `profile_mapped` and in profile texts.
PROFILE_FIELDS: dict[str, str] = {
    "gender": "Gender",
    "age": "Age",
    "personality": "Personality",
    "occupation": "Occupation",
    "daily_interests_and_hobbies": "Daily Interests and Hobbies",
    "travel_habits": "Travel Habits",
    "dining_preferences": "Dining Preferences",
    "spending_habits": "Spending Habits",
    "other_aspects": "Other Aspects",
}
# Fields holding one value; the others hold a list of values.
SINGLE_VALUE_PROFILE_FIELDS: frozenset[str] = frozenset({"gender", "age", "occupation"})

Intent = Literal["Search", "Recommendation", "Search & Recommendation", "Planning", "Others"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ProfileFields(_Record):
    """The nine structured profile fields in one language.

    ``gender``, ``age`` and ``occupation`` hold one value; the others a list
    (likes and dislikes alike, as written by the profile generator or mapped
    by the release's annotators).
    """

    gender: str | None = None
    age: str | None = None
    personality: list[str] = Field(default_factory=list)
    occupation: str | None = None
    daily_interests_and_hobbies: list[str] = Field(default_factory=list)
    travel_habits: list[str] = Field(default_factory=list)
    dining_preferences: list[str] = Field(default_factory=list)
    spending_habits: list[str] = Field(default_factory=list)
    other_aspects: list[str] = Field(default_factory=list)


class Profile(_Record):
    """A simulated user. ``text`` is what the simulator is shown.

    Example:
        >>> Profile(profile_id="7", text="1. Gender: Female\\n2. Age: 31").profile_id
        '7'
    """

    profile_id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    text_zh: str | None = None
    fields: ProfileFields | None = None
    fields_zh: ProfileFields | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Scenario(_Record):
    """One task scenario: a task template filled with one choice per variable.

    ``round`` numbers generation rounds of the same task (the release's
    "new travel planning" folder is round 2 of travel planning).
    """

    scenario_id: str = Field(min_length=1)
    task: str = Field(min_length=1)
    text: str = Field(min_length=1)
    text_zh: str | None = None
    round: int = Field(default=1, ge=1)
    variables: dict[str, str] = Field(default_factory=dict)
    source_id: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Turn(_Record):
    """One utterance. ``intent`` annotates user turns; ``hallucination`` and
    ``reason`` annotate assistant turns. Keys the schema does not model are kept
    in ``extra``."""

    role: Literal["user", "assistant"]
    content: str
    content_zh: str | None = None
    intent: Intent | None = None
    hallucination: bool | None = None
    reason: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Ratings(_Record):
    """The seven quality ratings (RecLLMSim §4.2). ``None`` means not rated, never 0."""

    preference_alignment: int | None = Field(default=None, ge=0, le=2)
    additional_preferences: int | None = Field(default=None, ge=0, le=1)
    role_playing_completeness: int | None = Field(default=None, ge=0, le=2)
    memorization: int | None = Field(default=None, ge=0, le=1)
    detail_level: int | None = Field(default=None, ge=0, le=2)
    practical_usefulness: int | None = Field(default=None, ge=0, le=2)
    diversity: int | None = Field(default=None, ge=0, le=2)


class Usage(_Record):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)


class GenerationMeta(_Record):
    """How a generated conversation was made (absent for the release)."""

    simulator_model: str
    assistant_model: str
    simulator_temperature: float | None = None
    assistant_temperature: float | None = None
    seed: int | None = None
    prompt_version: str
    max_turns: int | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = Field(default=None, ge=0)
    started_at: str | None = None
    duration_s: float | None = Field(default=None, ge=0)
    extra: dict[str, Any] = Field(default_factory=dict)


class Conversation(_Record):
    """A complete conversation between the user simulator and the assistant.

    ``profile_zh`` / ``scenario_zh`` keep the Chinese texts as they stand in this
    conversation (the release translated them per conversation, so they vary);
    the profile and scenario records hold the most common translation.

    Example:
        >>> c = Conversation(conversation_id="c1", task="recipe planning", profile_id="1",
        ...                  scenario_id="recipe_planning-0",
        ...                  turns=[Turn(role="user", content="Hi"), Turn(role="assistant", content="Hello")])
        >>> c.num_turns
        2
    """

    conversation_id: str = Field(min_length=1)
    task: str = Field(min_length=1)
    round: int = Field(default=1, ge=1)
    profile_id: str = Field(min_length=1)
    scenario_id: str = Field(min_length=1)
    turns: list[Turn] = Field(min_length=1)
    profile_zh: str | None = None
    scenario_zh: str | None = None
    ratings: Ratings | None = None
    preference_summary: list[str] = Field(default_factory=list)
    conflict: bool | None = None
    end_reason: str | None = None
    generation: GenerationMeta | None = None
    source_file: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    @field_validator("turns")
    @classmethod
    def _annotations_fit_roles(cls, turns: list[Turn]) -> list[Turn]:
        for i, turn in enumerate(turns):
            if turn.role == "user" and (turn.hallucination is not None or turn.reason is not None):
                raise ValueError(f"turns[{i}] is a user turn but carries a hallucination annotation")
            if turn.role == "assistant" and turn.intent is not None:
                raise ValueError(f"turns[{i}] is an assistant turn but carries an intent")
        return turns


class Manifest(_Record):
    """``manifest.json`` of a corpus folder."""

    format: Literal["recllmsim-corpus"] = "recllmsim-corpus"
    schema_version: str = SCHEMA_VERSION
    name: str = "recllmsim-corpus"
    description: str | None = None
    created_by: str | None = None
    tasks: list[str] = Field(default_factory=list)
    generation: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
