"""Intent-detection data of a built folder, the split contract applied to it, and the scores.

Shared by the classic baselines and the context model (``baselines.py``, ``context_model.py``)
and by the LLM rows of Table 4 (``recllmsim_hf.generation.annotate.llm_intent``), so that all of
them read, re-split and score utterances in exactly one way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import numpy as np

from recllmsim_hf.analysis.stats import check_built, class_names, intent_splits, read_table
from recllmsim_hf.dataset.configs import split_key, split_sizes
from recllmsim_hf.errors import InputError


@dataclass
class IntentData:
    """Labelled user utterances as parallel columns, plus context from the conversations table."""

    utterance_id: list[str]
    conversation_id: list[str]
    task: np.ndarray
    turn_index: np.ndarray
    num_turns: np.ndarray
    text: list[str]
    context: list[str]  # the preceding (assistant) turn
    prev_user: list[str]  # the user's previous utterance in the conversation, "" for a first one
    next_user: list[str]  # the user's next utterance (two turns on), "" for a last one
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.utterance_id)

    def take(self, idx) -> IntentData:
        out = {}
        for f in fields(self):
            col = getattr(self, f.name)
            out[f.name] = col[idx] if isinstance(col, np.ndarray) else [col[i] for i in idx]
        return IntentData(**out)

    @staticmethod
    def concat(parts: list[IntentData]) -> IntentData:
        out = {}
        for f in fields(IntentData):
            cols = [getattr(p, f.name) for p in parts]
            out[f.name] = np.concatenate(cols) if isinstance(cols[0], np.ndarray) else sum(cols, [])
        return IntentData(**out)


@dataclass(frozen=True)
class IntentSplits:
    """The splits of a built folder and the names of its ClassLabels."""

    splits: dict[str, IntentData]
    labels: list[str]
    tasks: list[str]


def load_intent(path: str | os.PathLike) -> IntentSplits:
    """Read ``intent_utterances`` of a built folder, with turn counts and previous user turns."""
    path = check_built(path)
    labels = class_names(path, "intent_utterances", "label")
    tasks = class_names(path, "intent_utterances", "task")
    conv = read_table(path, "conversations", columns=["conversation_id", "turns"]).to_pydict()
    num_turns, prev_user, next_user = {}, {}, {}
    for cid, turns in zip(conv["conversation_id"], conv["turns"], strict=True):
        num_turns[cid] = len(turns)
        last = ""
        for i, turn in enumerate(turns):
            if turn["role"] == "user":
                prev_user[(cid, i)] = last
                after = turns[i + 2] if i + 2 < len(turns) else None
                next_user[(cid, i)] = after["content"] if after and after["role"] == "user" else ""
                last = turn["content"]
    splits = {}
    for split in intent_splits(path):
        t = read_table(path, "intent_utterances", split).to_pydict()
        cids, idx = t["conversation_id"], t["turn_index"]
        splits[split] = IntentData(
            utterance_id=t["utterance_id"],
            conversation_id=cids,
            task=np.asarray(t["task"], dtype=np.int64),
            turn_index=np.asarray(idx, dtype=np.int64),
            num_turns=np.asarray([num_turns.get(c, i + 2) for c, i in zip(cids, idx, strict=True)]),
            text=t["text"],
            context=[c or "" for c in t["context"]],
            prev_user=[prev_user.get((c, i), "") for c, i in zip(cids, idx, strict=True)],
            next_user=[next_user.get((c, i), "") for c, i in zip(cids, idx, strict=True)],
            label=np.asarray(t["label"], dtype=np.int64),
        )
    for needed in ("train", "test"):
        if needed not in splits or not len(splits[needed]):
            raise InputError(
                f"{path}/intent_utterances: no {needed} rows; rebuild with `recllmsim build` "
                "(the intent config needs train and test splits)"
            )
    return IntentSplits(splits, labels, tasks)


def resplit(data: IntentSplits, seed: int, by: str = "utterance") -> IntentSplits:
    """Pool all splits and cut them again as ``recllmsim build --seed SEED --split-by BY`` would."""
    pool = IntentData.concat([data.splits[s] for s in data.splits])
    units = pool.utterance_id if by == "utterance" else pool.conversation_id
    keys = np.array([split_key(seed, u) for u in units], dtype=np.uint64)
    unique = np.unique(keys)
    n_train, n_val, _ = split_sizes(len(unique))
    top = np.uint64((1 << 64) - 1)
    val_from = unique[n_train] if n_train < len(unique) else top
    test_from = unique[n_train + n_val] if n_train + n_val < len(unique) else top
    names = np.where(keys < val_from, 0, np.where(keys < test_from, 1, 2))
    # keep the pooled order inside each split: sorted by key, as the builder writes them
    order = np.argsort(keys, kind="stable")
    splits = {
        name: pool.take([int(i) for i in order if names[i] == k])
        for k, name in enumerate(("train", "validation", "test"))
    }
    return IntentSplits(splits, data.labels, data.tasks)



def scores(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> dict:
    """Accuracy and macro-F1 over all ``n_labels`` classes (a class never predicted scores F1 0)."""
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(range(n_labels))
    present = [k for k in labels if (y_true == k).any() or (y_pred == k).any()]
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }
