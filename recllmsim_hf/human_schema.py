"""The records of the release's two studies of real people, and their label vocabularies.

Beside ``recllmsim_hf.schema`` (the synthetic records): the human-study importer
(``recllmsim_hf.sources.human``) produces these, and ``recllmsim_hf.features`` derives the
``datasets`` features of the four human-study configs from the same constants.
Kept free of heavy imports (no ``datasets``) so the CLI starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from recllmsim_hf.schema import _Record

# The release's two studies of real people, as ClassLabel names (ids 0, 1); each numbers its users on
# its own, so a person's id is namespaced by study: "human_exp_V2/User_0".
STUDIES: tuple[str, ...] = ("real_human_user", "human_exp_V2")
# The human studies' Chinese task folder / `task_type` names -> the synthetic task names.
HUMAN_TASKS: dict[str, str] = {
    "旅行规划": "travel planning",
    "技能学习规划": "skills learning planning",
    "菜谱规划": "recipe planning",
    "礼物准备": "preparing gifts",
}
# The intents real_human_user annotates (a list per user turn), in the release's order. "评估" (the
# user judges an answer) has no synthetic counterpart; "其它" is the synthetic "其他" (Others).
HUMAN_INTENT_LABELS: tuple[str, ...] = ("Recommendation", "Planning", "Evaluation", "Others")
HUMAN_INTENTS_ZH: dict[str, str] = {
    "推荐": "Recommendation",
    "规划": "Planning",
    "评估": "Evaluation",
    "其它": "Others",
}
# The assistant-turn hallucination judgement of the studies ("无法判断": the person could not tell).
HALLUCINATION_JUDGEMENTS: tuple[str, ...] = ("no", "yes", "cannot tell")
HALLUCINATION_JUDGEMENTS_ZH: dict[str, str] = {"否": "no", "是": "yes", "无法判断": "cannot tell"}
GENDERS_ZH: dict[str, str] = {"Male": "男", "Female": "女"}
# human_exp_V2's `background` (field of study); English names are ours (the release has none).
BACKGROUNDS_ZH: dict[str, str] = {
    "信息科学与技术": "Information science and technology",
    "工程与应用科学": "Engineering and applied sciences",
    "医学与健康科学": "Medicine and health sciences",
    "自然科学": "Natural sciences",
    "人文与艺术": "Humanities and arts",
    "社会科学与行为科学": "Social and behavioural sciences",
    "应用管理与创新领域": "Applied management and innovation",
    "交叉与前沿学科": "Interdisciplinary and frontier fields",
    "其他": "Others",
}


@dataclass(frozen=True)
class Question:
    """One questionnaire question: the rating it fills and the score of each option."""

    summary: str  # the release's `summary` key of the question
    rating: str  # the Ratings field it fills (same scale as the synthetic metric)
    query: str  # the question as the release asks it
    scores: dict[str, int]


# The four questions both studies ask after each conversation. Memorization asks whether the
# assistant FORGOT earlier turns, so "是" (yes) is the bad answer (0) and "否" (no) the good one (1).
QUESTIONNAIRE: tuple[Question, ...] = (
    Question(
        "Memorization", "memorization", "在对话过程中，对方是否有发生对前文出现遗忘的情况", {"否": 1, "是": 0}
    ),
    Question(
        "Detail",
        "detail_level",
        "总体来说，对方给出的回答结果和描述有多详细，此处的详细指单个选项（如某个菜/旅游目的地）的介绍详细程度",
        {"详细": 2, "一般": 1, "简略": 0},
    ),
    Question(
        "Availability",
        "practical_usefulness",
        "总体来说，对方给出的回答对你现实中真实遇到类似的问题有多少参考和使用价值",
        {"很有用": 2, "有一定参考": 1, "不可用": 0},
    ),
    Question(
        "Diversity",
        "diversity",
        "请从对话整体为对方回答的多样性打分",
        {"结果多样": 2, "一般": 1, "结果单一": 0},
    ),
)
HUMAN_RATINGS: tuple[str, ...] = tuple(q.rating for q in QUESTIONNAIRE)

# Profile attributes of profile identification: name in the human `profile` and in
# user_profiling/desc_translated.json -> name in the synthetic `profile_mapped`.
PROFILE_ATTRIBUTES: dict[str, str] = {
    "personality": "Personality",
    "occupation": "Occupation",
    "daily_interests": "Daily Interests and Hobbies",
    "travel_habits": "Travel Habits",
    "dining_preferences": "Dining Preferences",
    "spending_habits": "Spending Habits",
    "other_aspects": "Other Aspects",
}
SINGLE_VALUE_ATTRIBUTES: frozenset[str] = frozenset({"occupation"})
# attribute -> field of the synthetic ProfileFields (recllmsim_hf.schema)
SYNTHETIC_FIELDS: dict[str, str] = {name: name for name in PROFILE_ATTRIBUTES}
SYNTHETIC_FIELDS["daily_interests"] = "daily_interests_and_hobbies"

# The user-behaviour annotations' values: every field takes labels from a small closed set (the
# release's own names; it documents none of them). The sets hold every value of both studies' files
# (commit d680f2f9); a value outside is a problem, never kept or dropped silently.
INFORMATION_REQUESTS: tuple[str, ...] = ("Planning", "Sequential")
ORDERS: tuple[str, ...] = ("Comprehensive", "Breadth", "Depth")  # `strategy.order`
ORDERS_V2: tuple[str, ...] = ("Breadth", "Depth", "BreadthDepth", "DepthBreadth")  # `strategy_V2.order`
CONTEXT_LEVELS: tuple[str, ...] = ("High", "Low")
QUESTION_KINDS: tuple[str, ...] = ("Broad", "Specific")
FEEDBACKS: tuple[str, ...] = ("NoFeedback", "Positive", "Negative", "Both")
SCORES_1_TO_5: tuple[int, ...] = (1, 2, 3, 4, 5)  # strategy_V3's question_broadness, context_dependency
_V1 = {
    "information_request": INFORMATION_REQUESTS,
    "order": ORDERS,
    "context": CONTEXT_LEVELS,
    "question": QUESTION_KINDS,
}
_V2 = {"order": ORDERS_V2, "feedback": FEEDBACKS}
_V3 = {"question_broadness": SCORES_1_TO_5, "context_dependency": SCORES_1_TO_5, "feedback": FEEDBACKS}
# release key -> field -> its values (the fields in the release's order); strategy_human has no "order"
STRATEGY_VALUES: dict[str, dict[str, tuple]] = {
    "strategy": _V1,
    "strategy_V2": _V2,
    "strategy_V3": _V3,
    "strategy_human": {k: v for k, v in _V1.items() if k != "order"},
    "strategy_human_V2": _V2,
    "strategy_human_V3": _V3,
}
# release key -> (column, fields of one annotation and their kind, "str" or "int"), from the values.
# Each annotation is {"1": A, "2": A, "3": A, "final": A}; strategy_human* hold "final" only.
STRATEGIES: dict[str, tuple[str, dict[str, str]]] = {
    key: (key.lower(), {f: "int" if isinstance(v[0], int) else "str" for f, v in fields.items()})
    for key, fields in STRATEGY_VALUES.items()
}


class HumanTurn(_Record):
    """One utterance of a human-study conversation (texts are Chinese).

    ``intents`` (user turns of real_human_user) are English names of
    :data:`HUMAN_INTENT_LABELS`, empty where not annotated; ``hallucination`` (one of
    :data:`HALLUCINATION_JUDGEMENTS`), ``satisfaction`` (1-5, human_exp_V2) and ``reason``
    (why an answer fell short, Chinese, human_exp_V2) annotate assistant turns.
    """

    role: Literal["user", "assistant"]
    content: str
    intents: list[Literal["Recommendation", "Planning", "Evaluation", "Others"]] = Field(default_factory=list)
    hallucination: Literal["no", "yes", "cannot tell"] | None = None
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    reason: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class HumanProfile(_Record):
    """A real person's profile as one conversation file states it (English and Chinese).

    Attribute values are the release's Chinese names (``*_zh``) and their English names
    from ``user_profiling/desc_translated.json``; ``occupation`` holds one value, the other
    attributes a list. ``background`` (field of study) exists in human_exp_V2 only.
    """

    gender: str | None = None
    gender_zh: str | None = None
    age: int | None = None
    background: str | None = None
    background_zh: str | None = None
    personality: list[str] = Field(default_factory=list)
    personality_zh: list[str] = Field(default_factory=list)
    occupation: str | None = None
    occupation_zh: str | None = None
    daily_interests: list[str] = Field(default_factory=list)
    daily_interests_zh: list[str] = Field(default_factory=list)
    travel_habits: list[str] = Field(default_factory=list)
    travel_habits_zh: list[str] = Field(default_factory=list)
    dining_preferences: list[str] = Field(default_factory=list)
    dining_preferences_zh: list[str] = Field(default_factory=list)
    spending_habits: list[str] = Field(default_factory=list)
    spending_habits_zh: list[str] = Field(default_factory=list)
    other_aspects: list[str] = Field(default_factory=list)
    other_aspects_zh: list[str] = Field(default_factory=list)


class HumanRatings(_Record):
    """The questionnaire's four answers on the synthetic metrics' scales (see :data:`QUESTIONNAIRE`)."""

    memorization: int | None = Field(default=None, ge=0, le=1)
    detail_level: int | None = Field(default=None, ge=0, le=2)
    practical_usefulness: int | None = Field(default=None, ge=0, le=2)
    diversity: int | None = Field(default=None, ge=0, le=2)


class Answer(_Record):
    """One questionnaire answer as the release wrote it (Chinese)."""

    summary: str
    query: str
    option: str


class HumanConversation(_Record):
    """A conversation of a real person with an LLM assistant (one file of a human study).

    ``strategies`` maps a column of :data:`STRATEGIES` to ``{"final": {...}, "runs": [{...}, ...]}``
    (the release's "final" annotation and its numbered ones "1", "2", "3" in order).
    """

    conversation_id: str = Field(min_length=1)
    study: Literal["real_human_user", "human_exp_V2"]
    user_id: str = Field(min_length=1)
    task: str = Field(min_length=1)
    assistant_model: str | None = None
    scenario_zh: str
    turns: list[HumanTurn] = Field(min_length=1)
    ratings: HumanRatings
    questionnaire: list[Answer] = Field(default_factory=list)
    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    profile: HumanProfile
    source_file: str
    extra: dict[str, Any] = Field(default_factory=dict)


class Person(_Record):
    """A participant of a human study: the profile most of their files state, and counts."""

    user_id: str = Field(min_length=1)
    study: Literal["real_human_user", "human_exp_V2"]
    profile: HumanProfile
    num_conversations: int = Field(ge=0)
    # distinct profiles over the person's files (the release re-states it per file; a few differ)
    num_profile_versions: int = Field(ge=1)
