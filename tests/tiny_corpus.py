"""A tiny generated corpus written from scratch (no release data): 5 conversations, 2 tasks.

One conversation fails the generation filters (so it is not in the dataset). Nine labelled
user utterances remain, which the 8:1:1 split cuts 7/1/1, so every split of ``intent`` has rows.
The manifest carries settings a card must never show (an API key, a URL with a password).
"""

from __future__ import annotations

from pathlib import Path

from recllmsim_hf.corpus import write_corpus
from recllmsim_hf.schema import (
    Conversation,
    GenerationMeta,
    Manifest,
    Profile,
    Ratings,
    Scenario,
    Turn,
    Usage,
)

SECRET_KEY = "sk-tinysecret0123456789"
SECRET_PASSWORD = "pw-tiny-9876"


def _profile(i: int) -> Profile:
    return Profile(profile_id=str(i), text=f"1. Gender: Female\n2. Age: {30 + i}\n3. Occupation: baker {i}")


SCENARIOS = [
    Scenario(scenario_id="recipe_planning-0", task="recipe planning", text="Plan a week of dinners."),
    Scenario(scenario_id="preparing_gifts-0", task="preparing gifts", text="Find a gift for a friend."),
    Scenario(scenario_id="preparing_gifts-1", task="preparing gifts", text="Find a gift for a colleague."),
]


def _conversation(
    n: int, scenario: Scenario, intents: list[str], hallucinated: bool, passed: bool = True
) -> Conversation:
    turns = []
    for k, intent in enumerate(intents):
        turns.append(Turn(role="user", content=f"user message {k} of conversation {n}", intent=intent))
        turns.append(
            Turn(
                role="assistant",
                content=f"assistant answer {k} of conversation {n}",
                hallucination=hallucinated and k == 0,
                reason="a made-up fact" if hallucinated and k == 0 else None,
            )
        )
    turns.append(Turn(role="user", content="Thank you, goodbye.", intent="Others"))
    return Conversation(
        conversation_id=f"tiny-{n}",
        task=scenario.task,
        profile_id=str(n % 3),
        scenario_id=scenario.scenario_id,
        turns=turns,
        ratings=Ratings(preference_alignment=2, additional_preferences=n % 2, detail_level=1),
        end_reason="goodbye",
        generation=GenerationMeta(
            simulator_model="sim-model-a" if n != 2 else "sim-model-b",
            assistant_model="assistant-model-x",
            prompt_version="prompts-v7",
            started_at=f"2026-03-0{1 + n % 2}T10:00:00Z",
            usage=Usage(prompt_tokens=100 * (n + 1), completion_tokens=10 * (n + 1)),
            cost_usd=0.25,
        ),
        extra={
            "filter": {"passed": passed, "reasons": [] if passed else ["too short"]},
            "annotation": {"intent": {"model": "annotator-model-z", "prompt_version": "ann-v2"}},
        },
    )


def write_tiny_corpus(path: Path, n_conversations: int = 5) -> Path:
    """Write the tiny corpus into ``path`` (a new folder) and return it."""
    convs = [
        _conversation(0, SCENARIOS[0], ["Planning", "Search"], hallucinated=True),
        _conversation(1, SCENARIOS[1], ["Recommendation"], hallucinated=False),
        _conversation(2, SCENARIOS[2], ["Search & Recommendation"], hallucinated=False),
        _conversation(3, SCENARIOS[0], ["Planning"], hallucinated=False, passed=False),
        _conversation(4, SCENARIOS[1], ["Recommendation"], hallucinated=True),
    ][:n_conversations]
    manifest = Manifest(
        name="tiny test corpus",
        created_by="tests",
        generation={
            "prompt_version": "prompts-v7",
            "models": {"simulator": "sim-model-a", "assistant": "assistant-model-x"},
            "date": "2026-03-01",
            "api_key": SECRET_KEY,
            "base_url": f"http://tester:{SECRET_PASSWORD}@127.0.0.1:9/v1",
        },
    )
    return write_corpus(path, [_profile(i) for i in range(3)], SCENARIOS, convs, manifest)
