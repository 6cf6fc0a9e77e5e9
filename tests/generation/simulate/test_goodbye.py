"""The goodbye rule: thanks then goodbye/bye closing the message, case and punctuation free (zh too)."""

from __future__ import annotations

import pytest
from recllmsim_hf.generation.simulate.goodbye import closing_phrase, end_prompt, says_goodbye
from recllmsim_hf.generation.simulate.prompts import with_end_prompt


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Thank you, goodbye.", "Thank you, goodbye."),
        ("Thanks, goodbye.", "Thanks, goodbye."),
        ("Thank you so much, goodbye!", "Thank you so much, goodbye!"),
        ("Thank you, bye!", "Thank you, bye!"),
        ("Great, that's all I need. Thank you, goodbye!", "Thank you, goodbye!"),
        ("THANK YOU GOODBYE", "THANK YOU GOODBYE"),
        ("thanks... good-bye!!", "thanks... good-bye!!"),
        ("Perfect. Thanks for all your help, bye bye 😊", "Thanks for all your help, bye bye 😊"),
        ("That works. Thank you again and goodbye.", "Thank you again and goodbye."),
        ("Many thanks, good bye", "Many thanks, good bye"),
    ],
)
def test_english_closings(text, phrase):
    assert closing_phrase(text) == phrase and says_goodbye(text)
    assert closing_phrase(text, "zh") == phrase  # English closings count in a Chinese run too


@pytest.mark.parametrize(
    "text",
    [
        "Thank you, goodbye. Actually, one more question...",
        "Thank you! One more question: what about dessert?",
        "No thanks, I do not want to say goodbye yet.",
        "How do I say thank you and goodbye to my host?",
        "Goodbye!",
        "Thanks!",
        "Thank you, goodbye? Wait, what about the hotel",
        "谢谢，再见。",  # Chinese closings count only with --language zh
    ],
)
def test_false_positives(text):
    assert closing_phrase(text) is None and not says_goodbye(text)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("谢谢，再见。", "谢谢，再见。"),
        ("好的，谢谢你的帮助，再见！", "谢谢你的帮助，再见！"),
        ("非常感谢！拜拜", "非常感谢！拜拜"),
        ("多谢，再见啦~", "多谢，再见啦~"),
    ],
)
def test_chinese_closings(text, phrase):
    assert closing_phrase(text, "zh") == phrase


@pytest.mark.parametrize("text", ["再见", "谢谢，再见。不过我还有一个问题", "谢谢！我还想问问酒店的事。"])
def test_chinese_false_positives(text):
    assert closing_phrase(text, "zh") is None


def test_the_end_prompt_is_localised():
    assert end_prompt("en").endswith("please reply with 'Thank you, goodbye.'")
    assert end_prompt("zh") == "[System]：如果你想结束这次对话，请回复“谢谢，再见。”"
    assert with_end_prompt("好的。", "zh") == "好的。\n\n" + end_prompt("zh")
    assert end_prompt("any") == end_prompt("en")
