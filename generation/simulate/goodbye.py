"""When the simulated user ends the conversation: the goodbye rule.

Rule (a documented contract): a simulator message ends the conversation when it *closes* with
thanks followed by a goodbye, case and punctuation free: a thanks ("thank you", "thanks", "many
thanks", "thx"), then at most a few filler words ("so much", "a lot", "again", "for all your
help", "and" ...), then "goodbye" / "good bye" / "bye" / "bye bye" / "bye now", and after that
nothing but punctuation, spaces or emoji. A goodbye followed by more text ("Thank you, goodbye.
Actually, one more question...") does not end it. With ``language="zh"`` the Chinese form counts
too: 谢谢 / 谢谢你 / 谢谢您 / 多谢 / 非常感谢 / 感谢 (optionally 的帮助), then 再见 / 拜拜, closing the
message ("谢谢，再见。"). The exact closing text matched is returned, so it can be recorded.

The end prompt the simulator sees after every assistant reply is the paper's, localised:
:func:`end_prompt`.

Example:
    >>> closing_phrase("Great, that's all I need. Thanks, goodbye!")
    'Thanks, goodbye!'
    >>> closing_phrase("Thank you, goodbye. Actually, one more question...") is None
    True
    >>> closing_phrase("好的，谢谢，再见。", "zh")
    '谢谢，再见。'
"""

from __future__ import annotations

import re

END_PHRASES = {"en": "Thank you, goodbye.", "zh": "谢谢，再见。"}
END_PROMPTS = {
    "en": "[System]: If you wish to conclude this conversation, please reply with 'Thank you, goodbye.'",
    "zh": "[System]：如果你想结束这次对话，请回复“谢谢，再见。”",
}

_SEP = r"[\W_]"
_THANKS = rf"(?:thank{_SEP}*you|thank{_SEP}*u|many{_SEP}+thanks|thanks|thx)"
_FILLER = r"(?:so|very|really|much|a|lot|again|for|all|your|the|help|everything|kindly|and|once|more)"
_BYE = rf"(?:good{_SEP}*bye|bye(?:{_SEP}*bye)?(?:{_SEP}+now)?)"
_EN = re.compile(rf"\b{_THANKS}(?:{_SEP}+{_FILLER}\b)*{_SEP}+{_BYE}{_SEP}*$", re.IGNORECASE)
_ZH_THANKS = r"(?:谢谢(?:你|您)?|多谢|非常感谢|感谢(?:你|您)?)(?:的帮助|啦)?"
_ZH = re.compile(rf"{_ZH_THANKS}{_SEP}*(?:再见|拜拜)(?:啦|了)?{_SEP}*$")


def closing_phrase(text: str, language: str = "en") -> str | None:
    """The thanks-and-goodbye that closes ``text`` (exact text, stripped), or None."""
    patterns = (_EN, _ZH) if language == "zh" else (_EN,)
    for pattern in patterns:
        m = pattern.search(text.rstrip())
        if m:
            return m.group(0).strip()
    return None


def says_goodbye(text: str, language: str = "en") -> bool:
    """Whether a simulator message ends the conversation (module docstring)."""
    return closing_phrase(text, language) is not None


def end_prompt(language: str = "en") -> str:
    """The end prompt appended to every assistant reply the simulator sees."""
    return END_PROMPTS.get(language, END_PROMPTS["en"])
