"""Rows of the four human-study configs, computed from a staged corpus, and their seeded splits.

The corpus holds ``human_conversations.jsonl`` (one :class:`~recllmsim_hf.human_schema.HumanConversation`
a line), ``human_people.jsonl`` (one :class:`~recllmsim_hf.human_schema.Person` a line) and
``profile_vocabulary.json`` (attribute -> [[Chinese, English], ...] from the release's
``user_profiling/desc_translated.json``); a corpus without them has none of these configs.

Splits use the contract of ``recllmsim_hf.dataset.configs`` (64-bit blake2b key of
``"<seed>\\0<id>"``, sorted, 8:1:1 cut):

- ``human_intent_utterances``: key over ``utterance_id`` (``split_by="utterance"``, the
  default, as ``intent_utterances``, so results on the two configs compare) or over
  ``conversation_id`` (``split_by="conversation"``).
- ``profile_identification``: key over the *person* (human ``user_id``; synthetic:
  ``LLM_agent_user/<profile_id>`` of the first profile with the same text), cut separately
  within each of the three groups (synthetic, real_human_user, human_exp_V2). A person's
  conversations share one label set, so no person may sit in two splits; and the human
  splits depend only on the human ids and the seed, never on the synthetic rows, so the
  human test split is the same whatever training data a setup picks.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from recllmsim_hf.corpus import HUMAN_CONVERSATIONS, PEOPLE, PROFILE_VOCABULARY, PROFILES, natural_key
from recllmsim_hf.dataset.configs import Splitter, iter_conversations, split_key, split_sizes
from recllmsim_hf.human_schema import (
    HALLUCINATION_JUDGEMENTS,
    HUMAN_INTENT_LABELS,
    HUMAN_RATINGS,
    PROFILE_ATTRIBUTES,
    STRATEGIES,
    STUDIES,
    SYNTHETIC_FIELDS,
)

SYNTHETIC = "LLM_agent_user"

_memo: dict[tuple, list[dict]] = {}


def has_human(corpus: Path) -> bool:
    """Whether a corpus holds the human studies."""
    return (Path(corpus) / HUMAN_CONVERSATIONS).is_file()


def human_tables(corpus: Path) -> list[str]:
    """The human-study configs a corpus has rows for (``profile_identification`` needs the vocabulary)."""
    tables = ["human_conversations", "human_profiles", "human_intent_utterances"] if has_human(corpus) else []
    if read_vocabulary(corpus) is not None:
        tables.append("profile_identification")
    return tables


def read_vocabulary(corpus: Path) -> dict[str, list[str]] | None:
    """Attribute -> English names (ClassLabel order), or None when the corpus has no vocabulary."""
    path = Path(corpus) / PROFILE_VOCABULARY
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: [en for _, en in pairs] for name, pairs in data.items()}


def human_lines(corpus: Path) -> list[dict]:
    """Every line of ``human_conversations.jsonl`` as a dict (parsed once per build)."""
    path = Path(corpus) / HUMAN_CONVERSATIONS
    if not path.is_file():
        return []
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _memo:
        _memo.clear()
        with open(path, encoding="utf-8") as f:
            _memo[key] = [json.loads(line) for line in f if line.strip()]
    return _memo[key]


def forget_human() -> None:
    """Drop the kept human conversations (a build calls this when its passes are done)."""
    _memo.clear()


def remember_human(corpus: Path, conversations: list[dict]) -> None:
    """Hand over the parsed lines of ``human_conversations.jsonl`` just written (staging)."""
    path = Path(corpus) / HUMAN_CONVERSATIONS
    stat = path.stat()
    _memo.clear()
    _memo[(str(path.resolve()), stat.st_size, stat.st_mtime_ns)] = conversations


def _cut(keys: list[int], seed: int, by: str) -> Splitter:
    arr = np.sort(np.frombuffer(array("Q", keys), dtype=np.uint64))
    n_train, n_val, _ = split_sizes(len(arr))
    top = 1 << 64

    def at(i: int) -> int:
        return int(arr[i]) if i < len(arr) else top

    return Splitter(by, seed, at(n_train), at(n_train + n_val))


def _intent_turns(conv: dict) -> Iterator[tuple[int, dict]]:
    for i, turn in enumerate(conv["turns"]):
        if turn["role"] == "user" and turn.get("intents"):
            yield i, turn


def _previous_answer(turns: list[dict], i: int) -> str:
    """The nearest assistant turn before turn ``i`` ("" if none): a person sometimes writes twice in a row."""
    return next((t["content"] for t in reversed(turns[:i]) if t["role"] == "assistant"), "")


def intent_splitter(corpus: Path, seed: int, by: str = "utterance") -> Splitter:
    """The 8:1:1 cut of ``human_intent_utterances`` (see the module docstring)."""
    keys = []
    for conv in human_lines(corpus):
        ids = [f"{conv['conversation_id']}-{i}" for i, _ in _intent_turns(conv)]
        if by == "utterance":
            keys.extend(split_key(seed, u) for u in ids)
        elif ids:
            keys.append(split_key(seed, conv["conversation_id"]))
    return _cut(keys, seed, by)


class PersonSplitter:
    """profile_identification: one :class:`Splitter` over persons for each group."""

    def __init__(self, groups: dict[str, list[str]], seed: int):
        self.seed = seed
        self.cuts = {
            g: _cut([split_key(seed, p) for p in set(people)], seed, "person") for g, people in groups.items()
        }

    def split_of(self, group: str, person: str) -> str:
        cut = self.cuts[group]
        return cut.split_of(person, person)


def _synthetic_people(corpus: Path) -> dict[str, dict]:
    """profile_id -> (person id, Profile dict): a profile repeating an earlier one's text is that person."""
    profiles = {}
    with open(Path(corpus) / PROFILES, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                p = json.loads(line)
                profiles[p["profile_id"]] = p
    first: dict[str, str] = {}
    out = {}
    for pid in sorted(profiles, key=natural_key):
        owner = first.setdefault(profiles[pid]["text"], pid)
        out[pid] = {"person": f"{SYNTHETIC}/{owner}", "profile": profiles[pid]}
    return out


def profile_splitter(corpus: Path, seed: int) -> PersonSplitter:
    """The person-level 8:1:1 cuts of ``profile_identification`` (see the module docstring)."""
    people = _synthetic_people(corpus)
    # the people with a conversation in the dataset (a corpus may hold unused profiles)
    groups: dict[str, list[str]] = {
        SYNTHETIC: [people[c["profile_id"]]["person"] for c in iter_conversations(corpus)]
    }
    for conv in human_lines(corpus):
        groups.setdefault(conv["study"], []).append(conv["user_id"])
    return PersonSplitter(groups, seed)


def _profile_row(profile: dict) -> dict:
    return {k: profile.get(k) for k in ("gender", "gender_zh", "age", "background", "background_zh")} | {
        name: profile.get(name) for attr in PROFILE_ATTRIBUTES for name in (attr, f"{attr}_zh")
    }


def _strategy(value: dict | None) -> dict | None:
    return None if value is None else {"final": value["final"], "runs": value["runs"]}


def iter_human_rows(
    table: str, corpus: Path, task_names: list[str], split: str = "train", splitter=None
) -> Iterator[dict]:
    """Rows of a human-study ``table`` for ``split``, ClassLabels as ids."""
    task_ids = {name: i for i, name in enumerate(task_names)}
    study_ids = {name: i for i, name in enumerate(STUDIES)}
    intent_ids = {name: i for i, name in enumerate(HUMAN_INTENT_LABELS)}
    judged_ids = {name: i for i, name in enumerate(HALLUCINATION_JUDGEMENTS)}
    if table == "human_profiles":
        with open(Path(corpus) / PEOPLE, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    p = json.loads(line)
                    yield {
                        "study": study_ids[p["study"]],
                        "user_id": p["user_id"],
                        **_profile_row(p["profile"]),
                        "num_conversations": p["num_conversations"],
                        "num_profile_versions": p["num_profile_versions"],
                    }
        return
    if table == "profile_identification":
        yield from _profile_identification(corpus, task_ids, study_ids, split, splitter)
        return
    for conv in human_lines(corpus):
        ids = {
            "conversation_id": conv["conversation_id"],
            "study": study_ids[conv["study"]],
            "user_id": conv["user_id"],
            "task": task_ids[conv["task"]],
        }
        turns = conv["turns"]
        if table == "human_intent_utterances":
            for i, turn in _intent_turns(conv):
                uid = f"{conv['conversation_id']}-{i}"
                if splitter is not None and splitter.split_of(conv["conversation_id"], uid) != split:
                    continue
                yield {
                    "utterance_id": uid,
                    **ids,
                    "turn_index": i,
                    "text": turn["content"],
                    "context": _previous_answer(turns, i),
                    "labels": [intent_ids[label] for label in turn["intents"]],
                }
        elif table == "human_conversations":
            strategies = conv.get("strategies") or {}
            yield {
                **ids,
                "assistant_model": conv.get("assistant_model"),
                "scenario_zh": conv["scenario_zh"],
                "turns": [
                    {
                        "role": t["role"],
                        "content": t["content"],
                        "intents": [intent_ids[label] for label in t.get("intents") or []],
                        "hallucination": judged_ids.get(t.get("hallucination")),
                        "satisfaction": t.get("satisfaction"),
                        "reason": t.get("reason"),
                    }
                    for t in turns
                ],
                "num_turns": len(turns),
                "ratings": {name: (conv.get("ratings") or {}).get(name) for name in HUMAN_RATINGS},
                "questionnaire": conv.get("questionnaire") or [],
                **{column: _strategy(strategies.get(column)) for column, _ in STRATEGIES.values()},
                "profile": _profile_row(conv["profile"]),
                "extra": json.dumps(conv["extra"], ensure_ascii=False, sort_keys=True)
                if conv.get("extra")
                else None,
                "source_file": conv.get("source_file"),
            }
        else:
            raise ValueError(f"unknown table {table!r}")


def _label_ids(corpus: Path) -> dict[str, dict[str, int]]:
    vocabulary = read_vocabulary(corpus) or {}
    return {name: {en: i for i, en in enumerate(names)} for name, names in vocabulary.items()}


def _labels(values, ids: dict[str, int]) -> list[int]:
    values = values if isinstance(values, list) else ([] if values is None else [values])
    return [ids[v] for v in values]


def _profile_identification(corpus, task_ids, study_ids, split, splitter) -> Iterator[dict]:
    label_ids = _label_ids(corpus)
    people = _synthetic_people(corpus)
    for conv in iter_conversations(corpus):
        person = people[conv["profile_id"]]
        if splitter is not None and splitter.split_of(SYNTHETIC, person["person"]) != split:
            continue
        fields = person["profile"].get("fields") or {}
        user = [t for t in conv["turns"] if t["role"] == "user"]
        yield {
            "conversation_id": conv["conversation_id"],
            "source": 0,
            "study": None,
            "user_id": person["person"],
            "task": task_ids[conv["task"]],
            "text": "\n".join(t.get("content_zh") or "" for t in user),
            "text_en": "\n".join(t["content"] for t in user),
            **{
                name: _labels(fields.get(SYNTHETIC_FIELDS[name]), label_ids[name])
                for name in PROFILE_ATTRIBUTES
            },
        }
    for conv in human_lines(corpus):
        if splitter is not None and splitter.split_of(conv["study"], conv["user_id"]) != split:
            continue
        profile = conv["profile"]
        yield {
            "conversation_id": conv["conversation_id"],
            "source": 1,
            "study": study_ids[conv["study"]],
            "user_id": conv["user_id"],
            "task": task_ids[conv["task"]],
            "text": "\n".join(t["content"] for t in conv["turns"] if t["role"] == "user"),
            "text_en": None,
            **{name: _labels(profile.get(name), label_ids[name]) for name in PROFILE_ATTRIBUTES},
        }
