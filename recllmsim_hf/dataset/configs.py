"""Rows of the five configs, computed from a corpus folder, and the seeded splits.

The builder (``loading_script/recllmsim.py``) calls :func:`iter_rows`, one table at a
time; ``recllmsim build`` (``recllmsim_hf.dataset.shards``) calls :func:`conversation_rows`
for every table in one pass over the corpus. Nothing else decides what a row holds.
Conversations are streamed from ``conversations.jsonl`` as plain dicts (the corpus was
validated when it was read or staged), so memory does not grow with the corpus.

Split contract (``intent_utterances``): every labelled user utterance gets the
64-bit key ``blake2b("<seed>\\0<utterance_id>", digest_size=8)`` (big-endian);
utterances sorted by key, the first ``n - 2·round(n/10)`` are train, the next
``round(n/10)`` validation, the rest test (round half up). With
``split_by="conversation"`` the key is taken over ``conversation_id`` and the
8:1:1 cut is made over conversations, so no conversation is in two splits.
The result depends only on the ids and the seed: identical on every machine
and whatever the order of the lines.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recllmsim_hf.corpus import CONVERSATIONS, PROFILES, SCENARIOS, loads, natural_key
from recllmsim_hf.schema import INTENT_LABELS, PROFILE_FIELDS, RATING_METRICS, passed_filters

DEFAULT_SEED = 42
SPLIT_BY = ("utterance", "conversation")


def split_key(seed: int, ident: str) -> int:
    """The 64-bit split key of an utterance or conversation id (see the module docstring)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\0{ident}".encode(), digest_size=8).digest(), "big")


def split_sizes(n: int) -> tuple[int, int, int]:
    """8:1:1 sizes: ``split_sizes(7096) == (5676, 710, 710)``."""
    tenth = int(n / 10 + 0.5)
    return n - 2 * tenth, tenth, tenth


@dataclass(frozen=True)
class Splitter:
    """Assigns a split from a key by two thresholds; built by :func:`make_splitter`."""

    by: str
    seed: int
    validation_from: int
    test_from: int

    def split_of(self, conversation_id: str, utterance_id: str) -> str:
        key = split_key(self.seed, utterance_id if self.by == "utterance" else conversation_id)
        if key < self.validation_from:
            return "train"
        return "validation" if key < self.test_from else "test"


# Corpora up to this size are parsed once per process and kept while a build
# runs its passes (one per config and split); larger ones are streamed each time,
# so memory stays flat however large the corpus.
MEMO_MAX_BYTES = 64 * 1024 * 1024
_memo: dict[tuple, list[dict]] = {}


def conversation_lines(corpus: Path) -> Iterator[dict]:
    """Every line of ``conversations.jsonl`` as a dict (read once per build when small)."""
    path = corpus / CONVERSATIONS
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _memo:
        return iter(_memo[key])
    if stat.st_size > MEMO_MAX_BYTES:
        return _stream(path)
    _memo.clear()
    _memo[key] = list(_stream(path))
    return iter(_memo[key])


def forget() -> None:
    """Drop the kept corpus (a build calls this when its passes are done)."""
    _memo.clear()


def remember(corpus: Path, conversations: list[dict]) -> None:
    """Hand over the parsed lines of a corpus just written (they must equal its file's lines)."""
    path = corpus / CONVERSATIONS
    stat = path.stat()
    _memo.clear()
    _memo[(str(path.resolve()), stat.st_size, stat.st_mtime_ns)] = conversations


def _stream(path: Path) -> Iterator[dict]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield loads(line)


def included(conv: dict) -> bool:
    """Whether a conversation enters the configs: not failed by the generation filters."""
    return passed_filters(conv.get("extra"))


def iter_conversations(corpus: Path) -> Iterator[dict]:
    """The conversations of a corpus that enter the dataset (see :func:`included`)."""
    return (c for c in conversation_lines(corpus) if included(c))


def _intent_ids(conv: dict) -> Iterator[str]:
    for i, turn in enumerate(conv["turns"]):
        if turn["role"] == "user" and turn.get("intent") is not None:
            yield f"{conv['conversation_id']}-{i}"


def make_splitter(corpus: Path, seed: int = DEFAULT_SEED, by: str = "utterance") -> Splitter:
    """One pass over the corpus collecting split keys (8 bytes each), then the two cut points."""
    keys = array("Q")  # 8 bytes a key, not a Python int each
    for conv in iter_conversations(corpus):
        ids = list(_intent_ids(conv))
        if by == "utterance":
            keys.extend(split_key(seed, u) for u in ids)
        elif ids:
            keys.append(split_key(seed, conv["conversation_id"]))
    return splitter_from_keys(keys, seed, by)


def splitter_from_keys(keys: array, seed: int, by: str) -> Splitter:
    """The splitter whose cut points put the sorted ``keys`` (one per utterance, or one per
    conversation with labelled utterances) 8:1:1 into train, validation and test."""
    arr = np.sort(np.frombuffer(keys, dtype=np.uint64))
    n_train, n_val, _ = split_sizes(len(arr))
    top = 1 << 64

    def cut(i: int) -> int:
        return int(arr[i]) if i < len(arr) else top

    return Splitter(by, seed, cut(n_train), cut(n_train + n_val))


def _lookup(corpus: Path, name: str, key: str) -> dict[str, dict]:
    out = {}
    with open(corpus / name, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                out[rec[key]] = rec
    return out


def _json(value) -> str | None:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else None


def _ids(conv: dict, task_ids: dict[str, int]) -> dict:
    return {
        "conversation_id": conv["conversation_id"],
        "scenario_id": conv["scenario_id"],
        "profile_id": conv["profile_id"],
        "task": task_ids[conv["task"]],
    }


def _ratings(conv: dict) -> dict:
    ratings = conv.get("ratings") or {}
    return {name: ratings.get(name) for name in RATING_METRICS}


def _utterances(conv: dict, role: str, task_ids: dict[str, int]) -> Iterator[tuple[int, dict, str]]:
    turns, ids, cid = conv["turns"], _ids(conv, task_ids), conv["conversation_id"]
    for i, turn in enumerate(turns):
        if turn["role"] == role:
            row = {
                "utterance_id": f"{cid}-{i}",
                **ids,
                "turn_index": i,
                "text": turn["content"],
                "text_zh": turn.get("content_zh"),
                "context": turns[i - 1]["content"] if i else "",
            }
            yield i, row, turn


# Tables whose rows come one conversation at a time (in corpus order); a build writes them
# all in one pass over the corpus (recllmsim_hf.dataset.shards).
CONVERSATION_TABLES: tuple[str, ...] = (
    "conversations",
    "intent_utterances",
    "hallucinations",
    "quality_scores",
)


class RowContext:
    """What the rows of a conversation need besides the conversation: ClassLabel ids and, for
    the ``conversations`` table, the corpus's profiles and scenarios (read on first use)."""

    def __init__(self, corpus: Path, task_names: list[str]):
        self.corpus = corpus
        self.task_ids = {name: i for i, name in enumerate(task_names)}
        self.label_ids = {name: i for i, name in enumerate(INTENT_LABELS)}
        self._lookups: tuple[dict, dict] | None = None

    def lookups(self) -> tuple[dict[str, dict], dict[str, dict]]:
        if self._lookups is None:
            self._lookups = (
                _lookup(self.corpus, SCENARIOS, "scenario_id"),
                _lookup(self.corpus, PROFILES, "profile_id"),
            )
        return self._lookups


def conversation_rows(table: str, conv: dict, ctx: RowContext) -> Iterator[dict]:
    """The rows of ``table`` (one of :data:`CONVERSATION_TABLES`) that one included conversation
    gives, in turn order; intent rows of every split (see :class:`Splitter`)."""
    task_ids = ctx.task_ids
    if table == "intent_utterances":
        for _, row, turn in _utterances(conv, "user", task_ids):
            if turn.get("intent") is not None:
                row["label"] = ctx.label_ids[turn["intent"]]
                yield row
    elif table == "hallucinations":
        for _, row, turn in _utterances(conv, "assistant", task_ids):
            if turn.get("hallucination") is not None:
                row["hallucination"] = turn["hallucination"]
                row["reason"] = turn.get("reason")
                yield row
    elif table == "quality_scores":
        if conv.get("ratings") is not None:
            yield {**_ids(conv, task_ids), "num_turns": len(conv["turns"]), **_ratings(conv)}
    elif table == "conversations":
        scenarios, profiles = ctx.lookups()
        scenario, profile = scenarios[conv["scenario_id"]], profiles[conv["profile_id"]]
        verdict = (conv.get("extra") or {}).get("filter")
        yield {
            **_ids(conv, task_ids),
            "round": conv.get("round", 1),
            "profile": profile["text"],
            "profile_zh": conv.get("profile_zh") or profile.get("text_zh"),
            "scenario": scenario["text"],
            "scenario_zh": conv.get("scenario_zh") or scenario.get("text_zh"),
            "turns": [
                {
                    "role": t.get("role"),
                    "content": t.get("content"),
                    "content_zh": t.get("content_zh"),
                    "intent": t.get("intent"),
                    "hallucination": t.get("hallucination"),
                    "reason": t.get("reason"),
                }
                for t in conv["turns"]
            ],
            "num_turns": len(conv["turns"]),
            "preference_summary": conv.get("preference_summary") or [],
            "conflict": conv.get("conflict"),
            "ratings": _ratings(conv),
            "end_reason": conv.get("end_reason"),
            "filter_passed": None if verdict is None else verdict.get("passed"),
            "generation": _json(conv.get("generation")),
            "extra": _json(conv.get("extra")),
            "source_file": conv.get("source_file"),
        }
    else:
        raise ValueError(f"unknown table {table!r}")


def iter_rows(
    table: str,
    corpus: Path,
    task_names: list[str],
    split: str = "train",
    splitter: Splitter | None = None,
) -> Iterator[dict]:
    """Rows of ``table`` (a config name without alias) for ``split``, ClassLabels as ids."""
    if table == "profiles":
        yield from profile_rows(corpus)
        return
    if table not in CONVERSATION_TABLES:
        raise ValueError(f"unknown table {table!r}")
    ctx = RowContext(corpus, task_names)
    for conv in iter_conversations(corpus):
        for row in conversation_rows(table, conv, ctx):
            if splitter is None or splitter.split_of(conv["conversation_id"], row["utterance_id"]) == split:
                yield row


def profile_rows(corpus: Path, uses: Counter | None = None) -> Iterator[dict]:
    """Rows of ``profiles``; ``uses`` (profile id -> included conversations) is counted from the
    corpus unless given."""
    profiles = _lookup(corpus, PROFILES, "profile_id")
    if uses is None:
        uses = Counter(c["profile_id"] for c in iter_conversations(corpus))
    first_with_text: dict[str, str] = {}
    for pid in sorted(profiles, key=natural_key):
        first_with_text.setdefault(profiles[pid]["text"], pid)
    for pid in sorted(profiles, key=natural_key):
        p = profiles[pid]
        row = {"profile_id": pid, "text": p["text"], "text_zh": p.get("text_zh")}
        for lang, suffix in (("fields", ""), ("fields_zh", "_zh")):
            fields = p.get(lang) or {}
            for name in PROFILE_FIELDS:
                row[name + suffix] = fields.get(name)
        first = first_with_text[p["text"]]
        row["duplicate_of"] = None if first == pid else first
        row["num_conversations"] = uses.get(pid, 0)
        row["extra"] = _json(p.get("extra"))
        yield row
