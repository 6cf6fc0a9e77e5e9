"""The corpus records: one invalid case per test."""

import pytest
from pydantic import ValidationError

from recllmsim_hf.schema import Conversation, Profile, Ratings, Scenario, Turn


def conv(**kw):
    base = dict(
        conversation_id="c1",
        task="recipe planning",
        profile_id="1",
        scenario_id="recipe_planning-0",
        turns=[Turn(role="user", content="Hi", intent="Search"), Turn(role="assistant", content="Hello")],
    )
    base.update(kw)
    return Conversation(**base)


def test_valid_conversation_round_trips_through_json():
    c = conv(ratings=Ratings(diversity=2, memorization=None))
    again = Conversation.model_validate_json(c.model_dump_json())
    assert again == c
    assert again.num_turns == 2
    assert again.ratings.memorization is None


def test_unknown_intent_is_rejected():
    with pytest.raises(ValidationError, match="intent"):
        Turn(role="user", content="x", intent="Shopping")


def test_rating_out_of_range_is_rejected():
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        Ratings(memorization=2)


def test_negative_rating_is_rejected():
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Ratings(diversity=-1)


def test_unknown_role_is_rejected():
    with pytest.raises(ValidationError, match="role"):
        Turn(role="system", content="x")


def test_assistant_turn_with_intent_is_rejected():
    with pytest.raises(ValidationError, match="assistant turn but carries an intent"):
        conv(turns=[Turn(role="assistant", content="x", intent="Search")])


def test_user_turn_with_hallucination_is_rejected():
    with pytest.raises(ValidationError, match="user turn but carries a hallucination"):
        conv(turns=[Turn(role="user", content="x", hallucination=True)])


def test_empty_turns_are_rejected():
    with pytest.raises(ValidationError, match="at least 1 item"):
        conv(turns=[])


def test_unknown_field_is_rejected():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Profile(profile_id="1", text="t", colour="red")


def test_empty_scenario_text_is_rejected():
    with pytest.raises(ValidationError, match="at least 1 character"):
        Scenario(scenario_id="s", task="t", text="")
