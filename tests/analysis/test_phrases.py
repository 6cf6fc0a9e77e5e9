"""The phrase rules of Fig. 5: stop list, near-duplicate merge, case kept from the conversations."""

from __future__ import annotations

import pytest

from recllmsim_hf.analysis.phrases import display_form, is_stop_phrase, phrase_key, top_phrases


@pytest.mark.parametrize(
    "a, b",
    [
        ("practice", "regular practice"),
        ("practice", "Practice regularly"),
        ("practice", "daily practice"),
        ("budget-friendly", "budget friendly"),
        ("coding practice", "practice coding"),
        ("museums", "museum"),
        ("cozy accommodations", "cozy accommodation"),
        ("historical cities", "historical city"),
        ("art and culture", "culture, art"),
    ],
)
def test_near_duplicates_share_a_key(a, b):
    assert phrase_key(a) == phrase_key(b) is not None


@pytest.mark.parametrize(
    "a, b",
    [
        ("practice", "hands-on practice"),
        ("photo album", "personalized photo album"),
        ("vegetarian", "vegetarian options"),
        ("class", "classes of art"),
    ],
)
def test_different_phrases_stay_apart(a, b):
    assert phrase_key(a) != phrase_key(b)


@pytest.mark.parametrize("phrase", ["excited", "Grateful", "you're welcome", "ready to book", "  thankful. "])
def test_stop_list(phrase):
    assert is_stop_phrase(phrase) and phrase_key(phrase) is None


def test_stop_list_is_whole_phrases_only():
    assert not is_stop_phrase("excited about hiking") and phrase_key("comfortable accommodations")


def test_display_form_counts_mid_sentence_casing_only():
    texts = ["Barcelona is lovely. We went to Barcelona twice, to barcelona once, to Barcelona again."]
    assert display_form("barcelona", texts) == "Barcelona"  # 2 to 1, the sentence start not counted
    texts = ["Python is great.\n- Python\nI code in Python daily.", "Python rocks. python"]
    assert display_form("python", texts) == "Python"  # only "in Python daily" is mid-sentence
    assert display_form("python", ["we like Python and python"]) == "python"  # a tie keeps the summary's
    assert display_form("historical sites", ["Historical sites first. We saw historical sites."]) == (
        "historical sites"
    )
    assert display_form("diy", ["A DIY kit", "Start: Diy"]) == "DIY"
    assert display_form("never said", ["nothing here"]) == "never said"


def test_top_phrases_counts_each_conversation_once_and_merges():
    convs = [
        ("skills", ["practice", "regular practice", "Python"], ["I use Python a lot"]),
        ("skills", ["practice regularly", "excited"], ["more practice"]),
        ("skills", ["python"], ["learning Python now"]),
        ("gifts", ["personalized"], [""]),
    ]
    got = top_phrases(convs, top=5)
    assert got == {"skills": [["practice", 2], ["Python", 2]], "gifts": [["personalized", 1]]}
    assert top_phrases(convs, top=1)["skills"] == [["practice", 2]]  # tie broken alphabetically
