"""`recllmsim baseline profile`: do simulated users help identify real users' profiles?

Reads the ``profile_identification`` config of a built folder (one row a conversation: the
user's turns as ``text``, and per attribute the set of the user's profile labels) and, for
each of the seven attributes, trains a one-vs-rest logistic regression on TF-IDF features,
in four settings that differ only in the training rows:

==========================  ===============================  =====================
setting                     trained on (``train`` split)     scored on (``test``)
==========================  ===============================  =====================
``synthetic->synthetic``    synthetic rows                   synthetic rows
``synthetic->human``        synthetic rows                   human rows
``human->human``            human rows (both studies)        human rows
``synthetic+human->human``  synthetic and human rows         human rows
==========================  ===============================  =====================

The human test split is the same in the last three settings (the build splits each group
by person on its own), so their numbers compare.

Text: ``text``, which is Chinese for every row (the synthetic rows carry the release's
Chinese translation of the simulated user's turns), so synthetic and human rows share one
language. Tokenisation (:func:`tokenize`): runs of CJK characters give their characters
and character bigrams (Chinese has no spaces; bigrams catch most two-character words);
runs of Latin letters and digits give lower-cased words (English words, model names,
numbers inside the Chinese text). TF-IDF: sublinear term frequency, terms in at least two
training rows, fitted on the training rows of each setting.

Model: one binary ``LogisticRegression`` (liblinear's dual solver, C=4, seeded) per label of the
attribute's vocabulary; a label that is always or never present in the training rows gets
that constant score. Metrics on the test rows that have at least one label for the
attribute: hit-rate@k (a top-k label is right), recall@k (share of the true labels in the
top k), micro-F1 of the predicted sets (labels scored >= 0.5, else the top one). Ties in
the ranking go to the lower label id. ``prior`` rows score every test row with the labels'
training frequencies: what a model must beat.

Example:
    >>> report = run_profile_baselines("recllmsim")  # doctest: +SKIP
    >>> report["settings"][1]["setting"], report["settings"][1]["mean"]["hit@3"]  # doctest: +SKIP
    ('synthetic->human', 0.4...)
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

import numpy as np

from recllmsim_hf.analysis.stats import check_built, class_names, read_table
from recllmsim_hf.errors import InputError

TABLE = "profile_identification"
ATTRIBUTES = (
    "personality",
    "occupation",
    "daily_interests",
    "travel_habits",
    "dining_preferences",
    "spending_habits",
    "other_aspects",
)
SETTINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "synthetic->synthetic": (("synthetic",), "synthetic"),
    "synthetic->human": (("synthetic",), "human"),
    "human->human": (("human",), "human"),
    "synthetic+human->human": (("synthetic", "human"), "human"),
}
METRICS = ("hit@1", "hit@3", "recall@1", "recall@3", "micro_f1")
TOKENISATION = (
    "CJK runs -> characters + character bigrams; Latin letters/digits -> lower-cased words; "
    "TF-IDF (sublinear tf, min_df=2) fitted on each setting's training rows"
)
C = 4.0
_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """``tokenize("我想去 Paris 3天")`` -> ``['我', '想', '去', '我想', '想去', 'paris', '3', '天']``."""
    out: list[str] = []
    for match in _RUN.finditer(text.lower()):
        run = match.group()
        if run[0] > "\u3000":
            out.extend(run)
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


@dataclass
class ProfileData:
    """One split of ``profile_identification``: texts, sources and a 0/1 label matrix per attribute."""

    text: list[str]
    source: np.ndarray  # names index into ``sources``
    labels: dict[str, np.ndarray]  # attribute -> (rows, labels) uint8

    def rows(self, mask: np.ndarray) -> ProfileData:
        return ProfileData(
            [t for t, keep in zip(self.text, mask, strict=True) if keep],
            self.source[mask],
            {a: y[mask] for a, y in self.labels.items()},
        )


def load_profile_splits(
    path: str | os.PathLike,
) -> tuple[dict[str, ProfileData], dict[str, list[str]], list[str]]:
    """(train and test data, label names per attribute, source names) of a built folder."""
    path = check_built(path)
    if not (path / TABLE).is_dir():
        raise InputError(
            f"{path}: no {TABLE} config; build from a source with the human studies and "
            "user_profiling/desc_translated.json (the default release has them)"
        )
    names = {a: class_names(path, TABLE, a) for a in ATTRIBUTES}
    sources = class_names(path, TABLE, "source")
    data = {}
    for split in ("train", "test"):
        table = read_table(path, TABLE, split, columns=["text", "source", *ATTRIBUTES])
        labels = {}
        for a in ATTRIBUTES:
            y = np.zeros((table.num_rows, len(names[a])), dtype=np.uint8)
            for i, ids in enumerate(table.column(a).to_pylist()):
                y[i, ids or []] = 1
            labels[a] = y
        text = [t or "" for t in table.column("text").to_pylist()]
        data[split] = ProfileData(text, np.asarray(table.column("source").to_pylist()), labels)
    return data, names, sources


def _scores(x_train, y: np.ndarray, x_test, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    out = np.zeros((x_test.shape[0], y.shape[1]))
    for j in range(y.shape[1]):
        column = y[:, j]
        if column.min() == column.max():  # always or never present: nothing to learn
            out[:, j] = float(column[0]) if len(column) else 0.0
            continue
        model = LogisticRegression(solver="liblinear", dual=True, C=C, random_state=seed)
        out[:, j] = model.fit(x_train, column).predict_proba(x_test)[:, 1]
    return out


def ranking_metrics(scores: np.ndarray, truth: np.ndarray) -> dict:
    """hit-rate@1/3, recall@1/3 and micro-F1 over the rows of ``truth`` with any label."""
    keep = truth.sum(axis=1) > 0
    scores, truth = scores[keep], truth[keep].astype(bool)
    if not len(truth):
        return {**dict.fromkeys(METRICS), "rows": 0}
    order = np.argsort(-scores, axis=1, kind="stable")  # ties: the lower label id first
    out = {}
    for k in (1, 3):
        top = np.take_along_axis(truth, order[:, :k], axis=1)
        out[f"hit@{k}"] = float(top.any(axis=1).mean())
        out[f"recall@{k}"] = float((top.sum(axis=1) / truth.sum(axis=1)).mean())
    predicted = scores >= 0.5
    none = ~predicted.any(axis=1)
    predicted[none, order[none, 0]] = True
    tp = int((predicted & truth).sum())
    fp, fn = int((predicted & ~truth).sum()), int((~predicted & truth).sum())
    out["micro_f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    out["rows"] = int(len(truth))
    return {m: (round(v, 4) if isinstance(v, float) else v) for m, v in out.items()}


def _mean(per_attribute: dict[str, dict]) -> dict:
    return {
        m: round(float(np.mean([r[m] for r in per_attribute.values() if r[m] is not None])), 4)
        for m in METRICS
    }


def run_setting(name: str, data: dict[str, ProfileData], sources: list[str], seed: int = 0) -> dict:
    """Train on the setting's training rows and score its test rows, attribute by attribute."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    train_from, test_on = SETTINGS[name]
    train = data["train"].rows(np.isin(data["train"].source, [sources.index(s) for s in train_from]))
    test = data["test"].rows(data["test"].source == sources.index(test_on))
    if not train.text or not test.text:
        raise InputError(f"{TABLE}: setting {name} has no training or no test rows in this build")
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer=tokenize, sublinear_tf=True, min_df=2, dtype=np.float64)
    x_train = vectorizer.fit_transform(train.text)
    x_test = vectorizer.transform(test.text)
    attributes, prior = {}, {}
    for a in ATTRIBUTES:
        y = train.labels[a]
        attributes[a] = ranking_metrics(_scores(x_train, y, x_test, seed), test.labels[a])
        frequency = np.tile(y.mean(axis=0), (len(test.text), 1))
        prior[a] = ranking_metrics(frequency, test.labels[a])
    return {
        "setting": name,
        "train_rows": len(train.text),
        "test_rows": len(test.text),
        "features": len(vectorizer.vocabulary_),
        "attributes": attributes,
        "mean": _mean(attributes),
        "prior": {"attributes": prior, "mean": _mean(prior)},
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_profile_baselines(path: str | os.PathLike, settings: list[str] | None = None, seed: int = 0) -> dict:
    """The four settings (or ``settings``) on a built folder; every number as a dict."""
    settings = list(SETTINGS) if settings is None else settings
    for name in settings:
        if name not in SETTINGS:
            raise InputError(f"--settings: must be among {list(SETTINGS)}, but got {name!r}")
    data, names, sources = load_profile_splits(path)
    return {
        "config": TABLE,
        "text": "text (Chinese for synthetic and human rows)",
        "tokenisation": TOKENISATION,
        "model": f"one-vs-rest LogisticRegression(solver='liblinear', dual=True, C={C}) per label",
        "seed": seed,
        "labels": {a: len(n) for a, n in names.items()},
        "settings": [run_setting(name, data, sources, seed) for name in settings],
    }


def render_profile_baselines(report: dict) -> str:
    """The report as text tables, one per setting."""
    lines = [f"profile identification ({report['tokenisation']})", ""]
    header = f"{'attribute':<20}" + "".join(f"{m:>10}" for m in METRICS)
    for result in report["settings"]:
        lines.append(
            f"{result['setting']}: train {result['train_rows']:,} rows, test {result['test_rows']:,} rows, "
            f"{result['features']:,} features, {result['seconds']:.1f} s"
        )
        lines.append(header)
        for a, r in [
            *result["attributes"].items(),
            ("mean", result["mean"]),
            ("prior (mean)", result["prior"]["mean"]),
        ]:
            cells = "".join(f"{'-' if r[m] is None else format(r[m], '.4f'):>10}" for m in METRICS)
            lines.append(f"{a:<20}{cells}")
        lines.append("")
    return "\n".join(lines)
