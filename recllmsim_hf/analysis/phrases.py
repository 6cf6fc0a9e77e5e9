"""The preference phrases of Fig. 5: which phrases count, which are one, how each is written.

Each conversation's ``preference_summary`` lists short phrases ("historical sites", "regular
practice"). A phrase counts once per conversation. Three documented rules turn them into bars:

1. **Stop list.** A phrase that says how the simulated user felt or how the chat went, not what
   they prefer, is left out: the phrases of :data:`STOP_PHRASES` ("excited", "grateful",
   "you're welcome", ...) and any phrase starting with one of :data:`STOP_PREFIXES`
   ("ready to book", "looking forward to trip").
2. **Near-duplicates are merged.** Two phrases are one when their keys are equal. The key of a
   phrase: its words, lower-cased, hyphens split ("budget-friendly" = "budget friendly"); the
   filler words of :data:`FILLERS` and the frequency or degree words of :data:`MODIFIERS`
   dropped ("regular practice", "practice regularly", "daily practice" -> "practice"); each word
   lightly stemmed (plural "-s", "-es", "-ies"; adverb "-ly" on words of seven letters or more);
   the words sorted ("coding practice" = "practice coding"). A merged phrase counts every
   conversation that names any of its forms, once; it is shown by its most frequent form (ties:
   the shorter, then alphabetical).
3. **Case is kept.** The release writes its summaries in lower case. A phrase is shown in the
   casing it most often has *mid-sentence* in the conversations that name it ("Barcelona",
   "Python", "DIY", "Adobe Premiere Pro"; a capital after ".", ":", a list mark or a line start
   is not counted); a phrase the conversations never spell out keeps the summary's own casing.

Example:
    >>> phrase_key("Practice regularly") == phrase_key("regular practice") == "practice"
    True
    >>> phrase_key("excited") is None
    True
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

# Feelings, thanks and chat states: what the user felt or did, not what they prefer.
STOP_PHRASES: frozenset[str] = frozenset(
    {
        "appreciative", "assisted", "confidence", "confident", "content", "curious", "delighted",
        "eager", "empowered", "encouraged", "enthusiastic", "excited", "excitement", "glad",
        "glad to help", "goodbye", "grateful", "guided", "happy", "helped", "hopeful", "informed",
        "inspired", "motivated", "optimistic", "pleased", "pleasure assisting", "prepared", "ready",
        "reassured", "relieved", "satisfied", "stay motivated", "supported", "thank you", "thankful",
        "thanks", "well-prepared", "you're welcome",
    }
)  # fmt: skip
STOP_PREFIXES: tuple[str, ...] = ("ready to ", "ready for ", "looking forward to ", "glad to ")
# Words that carry no preference of their own inside a phrase.
FILLERS: frozenset[str] = frozenset({"a", "an", "the", "and", "of", "to", "for", "with", "in", "on"})
MODIFIERS: frozenset[str] = frozenset(
    {
        "regular", "regularly", "consistent", "consistently", "daily", "frequent", "frequently",
        "constant", "constantly", "continuous", "continuously", "very", "really", "more", "lots",
        "plenty", "much",
    }
)  # fmt: skip

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_SENTENCE_END = tuple(".!?:;#-•|>\n")


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "'s")):
        return word[:-1]
    if len(word) >= 7 and word.endswith("ily"):
        return word[:-3] + "y"
    if len(word) >= 7 and word.endswith("ly"):
        return word[:-2]
    return word


def is_stop_phrase(phrase: str) -> bool:
    """True for a phrase of the stop list (rule 1): ``is_stop_phrase("Grateful") is True``."""
    text = " ".join(phrase.lower().split()).strip(" .;,!")
    return text in STOP_PHRASES or text.startswith(STOP_PREFIXES)


def phrase_key(phrase: str) -> str | None:
    """The merge key of rule 2, or ``None`` for a stop-listed or empty phrase."""
    if is_stop_phrase(phrase):
        return None
    words = [w for w in _WORD.findall(phrase.lower()) if w not in FILLERS and w not in MODIFIERS]
    stems = sorted({_stem(w) for w in words})
    return " ".join(stems) or None


def display_form(phrase: str, texts: Iterable[str]) -> str:
    """``phrase`` in the casing it most often has mid-sentence in ``texts`` (rule 3)."""
    pattern = re.compile(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])", re.IGNORECASE)
    forms: Counter = Counter()
    for text in texts:
        for match in pattern.finditer(text):
            before = text[max(0, match.start() - 4) : match.start()].rstrip(" *\"'(\t")
            if before and not before.endswith(_SENTENCE_END):
                forms[match.group(0)] += 1
    if not forms:
        return phrase
    best = max(forms.values())
    winners = sorted(form for form, n in forms.items() if n == best)
    return phrase if phrase in winners else winners[0]


def top_phrases(
    conversations: Iterable[tuple[str, list[str] | None, list[str]]], top: int
) -> dict[str, list[list]]:
    """The ``top`` merged phrases per task, most frequent first: ``{task: [[phrase, n], ...]}``.

    ``conversations`` yields ``(task, preference_summary, texts)``; ``texts`` (the turns' contents)
    are only read for the phrases shown. Ties are broken alphabetically, so the list is stable.
    """
    mentions: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    forms: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    all_texts: list[list[str]] = []
    for index, (task, summary, texts) in enumerate(conversations):
        all_texts.append(texts)
        seen: dict[str, str] = {}
        for raw in summary or []:
            surface = " ".join(raw.split()).strip(" .;,")
            key = phrase_key(surface)
            if key is not None and key not in seen:
                seen[key] = surface
        for key, surface in seen.items():
            mentions[task][key].append(index)
            forms[task][key][surface] += 1
    out = {}
    for task, groups in mentions.items():
        labelled = []
        for key, indices in groups.items():
            label = min(forms[task][key].items(), key=lambda kv: (-kv[1], len(kv[0]), kv[0]))[0]
            labelled.append((label, len(indices), key))
        labelled.sort(key=lambda row: (-row[1], row[0].lower(), row[0]))
        out[task] = [
            [display_form(label, (t for i in groups[key] for t in all_texts[i])), n]
            for label, n, key in labelled[:top]
        ]
    return out
