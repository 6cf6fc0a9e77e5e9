"""How well the LLM annotators agree with human labels (``recllmsim annotate --evaluate``).

Flow: stage the human-labelled source (the release, or any labelled corpus) in a temporary
folder; draw ``sample`` conversations by seed (the ``sample`` smallest keys
``blake2b("<seed>\\0<conversation_id>")``, so the draw depends only on the ids and the seed);
write them, with the labels under test removed, as a corpus in ``OUT/sample`` (the source is
never modified); annotate that copy with :func:`annotate_corpus` (its cache,
``OUT/sample/.cache/llm.sqlite``, makes a rerun free); compare item by item and write
``OUT/report.json``.

Metrics (scikit-learn): for intent and hallucination, accuracy, macro-F1 and Cohen's κ over
the items both sides labelled, plus the confusion matrix (rows: human, columns: annotator);
for each rating, exact agreement, mean absolute difference and quadratic-weighted κ. Items the
annotator failed on are counted as ``errors`` and left out of the metrics. κ is null when it
is undefined (both sides gave one and the same value to every item).

Example:
    >>> cohen([1, 0, 1, 1], [1, 0, 0, 1])
    0.5
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from recllmsim_hf.corpus import Corpus, atomic_write_text, natural_key, write_corpus
from recllmsim_hf.errors import InputError
from recllmsim_hf.safety import claim_output, files_under, write_marker
from recllmsim_hf.schema import INTENT_LABELS, RATING_METRICS, Conversation, Manifest

from ..llm import LLMRunner
from .annotators import annotate_corpus
from .jobs import included, parse_what

EVALUATED = ("intent", "hallucination", "quality")
DEFAULT_WHAT = ",".join(EVALUATED)
SAMPLE_DIR = "sample"
REPORT = "report.json"


def sample_key(seed: int, conversation_id: str) -> int:
    """The draw order of a conversation: 64-bit blake2b of ``"<seed>\\0<id>"``."""
    digest = hashlib.blake2b(f"{seed}\0{conversation_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def draw(ids: list[str], n: int, seed: int) -> list[str]:
    """``n`` of ``ids`` chosen by seed, in natural id order.

    Example:
        >>> draw(["a", "b", "c", "d"], 2, seed=0) == draw(["d", "c", "b", "a"], 2, seed=0)
        True
    """
    chosen = sorted(ids, key=lambda i: sample_key(seed, i))[:n]
    return sorted(chosen, key=natural_key)


def _human_labelled(conv: Conversation, whats: list[str]) -> bool:
    return (
        ("intent" in whats and any(t.intent is not None for t in conv.turns))
        or ("hallucination" in whats and any(t.hallucination is not None for t in conv.turns))
        or ("quality" in whats and conv.ratings is not None)
    )


def _strip(conv: Conversation, whats: list[str]) -> Conversation:
    conv = conv.model_copy(deep=True)
    for turn in conv.turns:
        if "intent" in whats:
            turn.intent = None
        if "hallucination" in whats:
            turn.hallucination, turn.reason = None, None
    if "quality" in whats:
        conv.ratings = None
    conv.extra.pop("annotation", None)
    return conv


def evaluate_annotators(
    source: str | os.PathLike | None,
    out: str | os.PathLike,
    make_runner: Callable[[Path], LLMRunner],
    *,
    sample: int = 50,
    seed: int = 0,
    what: str | list[str] = DEFAULT_WHAT,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    executor=None,
) -> dict:
    """Annotate a seeded sample of ``source`` and measure agreement with its labels (see the module doc).

    ``executor`` (an :class:`~recllmsim_hf.generation.llm.executors.ExecutorSpec` or its name,
    default online) sends the sample's calls as ``annotate`` would (batch rounds under
    ``OUT/sample/.batch/annotate``).

    Example:
        >>> report = evaluate_annotators(release_dir, "eval", make_runner, sample=20)  # doctest: +SKIP
        >>> report["agreement"]["intent"]["accuracy"]  # doctest: +SKIP
        0.71
    """
    from recllmsim_hf.sources.staging import stage_source

    whats = parse_what(what)
    other = [w for w in whats if w not in EVALUATED]
    if other:
        raise InputError(
            f"--what: --evaluate compares {', '.join(EVALUATED)} with human labels, but got {other[0]!r}; "
            "drop it (summaries and translations have no human reference here)"
        )
    if sample < 1:
        raise InputError(f"--sample: must be at least 1, but got {sample}")
    local = [source] if source is not None and "://" not in str(source) else []
    out = claim_output(out, "evaluation", sources=local)
    with tempfile.TemporaryDirectory(prefix="recllmsim-eval-") as tmp:
        labelled = Corpus(stage_source(source, Path(tmp) / "staged", progress=progress))
        pool = {c.conversation_id: c for c in labelled.iter_conversations() if included(c)}
        pool = {k: c for k, c in pool.items() if _human_labelled(c, whats)}
    if not pool:
        raise InputError(f"{source}: no conversation carries {' / '.join(whats)} labels; nothing to compare")
    human = [pool[i] for i in draw(list(pool), sample, seed)]
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "evaluation")  # first, so that a rerun after a failure may write here again
    write_corpus(
        out / SAMPLE_DIR,
        [labelled.profiles[pid] for pid in sorted({c.profile_id for c in human}, key=natural_key)],
        [labelled.scenarios[sid] for sid in sorted({c.scenario_id for c in human}, key=natural_key)],
        [_strip(c, whats) for c in human],
        Manifest(name="annotator evaluation sample", description=f"{len(human)} conversations, seed {seed}"),
    )
    annotation = annotate_corpus(
        out / SAMPLE_DIR, whats, make_runner, progress=progress, log=log, executor=executor
    )
    machine = {c.conversation_id: c for c in Corpus(out / SAMPLE_DIR).iter_conversations()}
    report = {
        "source": str(source) if source is not None else None,
        "sample": len(human),
        "available": len(pool),
        "seed": seed,
        "what": whats,
        "model": annotation["model"],
        "prompt_version": annotation["prompt_version"],
        "agreement": agreement(human, machine, whats),
        "annotation": annotation,
    }
    atomic_write_text(out / REPORT, json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    write_marker(out, "evaluation", files_under(out))
    return report


def _pairs(human: list[Conversation], machine: dict[str, Conversation], what: str) -> tuple[list, list, int]:
    y_true, y_pred, errors = [], [], 0
    role, attr = ("user", "intent") if what == "intent" else ("assistant", "hallucination")
    for conv in human:
        for turn, mine in zip(conv.turns, machine[conv.conversation_id].turns, strict=True):
            if turn.role != role or getattr(turn, attr) is None:
                continue
            if getattr(mine, attr) is None:
                errors += 1
                continue
            y_true.append(getattr(turn, attr))
            y_pred.append(getattr(mine, attr))
    return y_true, y_pred, errors


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def cohen(y_true: list, y_pred: list, weights: str | None = None) -> float | None:
    """Cohen's κ (None when undefined)."""
    from sklearn.metrics import cohen_kappa_score

    if not y_true:
        return None
    with warnings.catch_warnings():  # an undefined kappa is reported as null, not warned about
        warnings.simplefilter("ignore")
        return _number(cohen_kappa_score(y_true, y_pred, weights=weights))


def classification(y_true: list, y_pred: list, labels: list, errors: int) -> dict:
    """Accuracy, macro-F1 (over the labels either side used), κ and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    result = {"n": len(y_true), "errors": errors, "accuracy": None, "macro_f1": None, "kappa": None}
    matrix = []
    if y_true:
        result["accuracy"] = _number(accuracy_score(y_true, y_pred))
        result["macro_f1"] = _number(f1_score(y_true, y_pred, average="macro", zero_division=0))
        result["kappa"] = cohen(y_true, y_pred)
        matrix = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    result["confusion"] = {"labels": [str(x) for x in labels], "matrix": matrix}
    return result


def agreement(human: list[Conversation], machine: dict[str, Conversation], whats: list[str]) -> dict:
    """Per-annotator agreement between human-labelled conversations and their annotated copies."""
    report: dict = {}
    if "intent" in whats:
        y_true, y_pred, errors = _pairs(human, machine, "intent")
        report["intent"] = classification(y_true, y_pred, list(INTENT_LABELS), errors)
    if "hallucination" in whats:
        y_true, y_pred, errors = _pairs(human, machine, "hallucination")
        report["hallucination"] = classification(y_true, y_pred, [False, True], errors)
        report["hallucination"]["positives"] = {"human": sum(y_true), "annotator": sum(y_pred)}
    if "quality" in whats:
        report["quality"] = {m: _rating(human, machine, m) for m in RATING_METRICS}
    return report


def _rating(human: list[Conversation], machine: dict[str, Conversation], metric: str) -> dict:
    y_true, y_pred, errors = [], [], 0
    for conv in human:
        truth = getattr(conv.ratings, metric) if conv.ratings else None
        mine = machine[conv.conversation_id].ratings
        guess = getattr(mine, metric) if mine else None
        if truth is None:
            continue
        if guess is None:
            errors += 1
            continue
        y_true.append(truth)
        y_pred.append(guess)
    n = len(y_true)
    diffs = [abs(a - b) for a, b in zip(y_true, y_pred, strict=True)]
    return {
        "n": n,
        "errors": errors,
        "scale": [0, RATING_METRICS[metric][1]],
        "exact": _number(diffs.count(0) / n) if n else None,
        "mean_abs_diff": _number(sum(diffs) / n) if n else None,
        "weighted_kappa": cohen(y_true, y_pred, weights="quadratic"),
        "human_mean": _number(sum(y_true) / n) if n else None,
        "annotator_mean": _number(sum(y_pred) / n) if n else None,
    }


def format_report(report: dict) -> str:
    """The agreement report as a few aligned lines of text."""

    def num(x: float | None) -> str:
        return "  n/a" if x is None else f"{x:5.3f}"

    lines = [
        f"{report['sample']} conversations (seed {report['seed']}, of {report['available']}) annotated by "
        f"{report['model']} ({report['prompt_version']})"
    ]
    agree = report["agreement"]
    for what in ("intent", "hallucination"):
        if what in agree:
            r = agree[what]
            lines.append(
                f"  {what:<26} n={r['n']:<5} accuracy {num(r['accuracy'])}  macro-F1 {num(r['macro_f1'])}  "
                f"kappa {num(r['kappa'])}  errors {r['errors']}"
            )
    for metric, r in agree.get("quality", {}).items():
        lines.append(
            f"  {metric:<26} n={r['n']:<5} exact    {num(r['exact'])}  "
            f"mean |diff| {num(r['mean_abs_diff'])}  weighted kappa {num(r['weighted_kappa'])}  "
            f"errors {r['errors']}"
        )
    return "\n".join(lines)
