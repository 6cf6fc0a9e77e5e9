"""`recllmsim baseline intent`: intent detection baselines on a built dataset (RecLLMSim §5.1).

Models (``--models``):

- the paper's Table 4 classics, each on a default ``TfidfVectorizer`` of the utterance:
  ``svm`` (LinearSVC), ``decision_tree``, ``random_forest``, ``adaboost`` (100 stumps:
  scikit-learn >= 1.6 has only SAMME, and its default 50 stumps under-fit where the paper's
  SAMME.R did not), ``bernoulli_nb``;
- ``context``: our CPU model (:class:`ContextModel`), which adds the conversation context;
- ``llm-zero-shot`` / ``llm-few-shot``: an LLM through the openai client
  (:mod:`recllmsim_hf.generation.annotate.llm_intent`).

Models train on ``train`` and are scored on ``test`` (accuracy and macro-F1); ``validation``
was used only to choose the context model's settings. ``split_seeds`` re-draws the
train/validation/test split of the pooled utterances with the build's own split contract
(``recllmsim_hf.dataset.configs``: blake2b keys of the utterance ids, sorted, cut 8:1:1), so seed
``s`` gives exactly the split ``recllmsim build --seed s`` would write; the mean and
population std over those seeds are reported.

Example:
    >>> report = run_intent_baselines("recllmsim", ["svm"], seed=42)  # doctest: +SKIP
    >>> report["results"][0]["model"], round(report["results"][0]["accuracy"], 2)
    ('svm', 0.76)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from recllmsim_hf.analysis.context_model import ContextModel
from recllmsim_hf.analysis.intent_data import IntentData, IntentSplits, load_intent, resplit, scores
from recllmsim_hf.errors import InputError

CLASSIC_MODELS: tuple[str, ...] = ("svm", "decision_tree", "random_forest", "adaboost", "bernoulli_nb")
LLM_MODELS: tuple[str, ...] = ("llm-zero-shot", "llm-few-shot")
LOCAL_MODELS: tuple[str, ...] = CLASSIC_MODELS + ("context",)
ALL_MODELS: tuple[str, ...] = LOCAL_MODELS + LLM_MODELS
DEFAULT_MODELS: tuple[str, ...] = LOCAL_MODELS
# RecLLMSim Table 4, fine-tuning column: (accuracy, macro-F1) on the paper's own random split.
PAPER_TABLE4: dict[str, tuple[float, float]] = {
    "svm": (0.7577, 0.6274),
    "decision_tree": (0.6901, 0.5573),
    "random_forest": (0.7479, 0.5834),
    "adaboost": (0.7239, 0.5858),
    "bernoulli_nb": (0.6901, 0.5748),
}


# -- models -----------------------------------------------------------------------------------


class TextModel:
    """A scikit-learn text classifier behind the ``fit(IntentData)`` / ``predict(IntentData)`` interface."""

    def __init__(self, name: str, seed: int):
        from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.naive_bayes import BernoulliNB
        from sklearn.pipeline import make_pipeline
        from sklearn.svm import LinearSVC
        from sklearn.tree import DecisionTreeClassifier

        classifiers: dict[str, Callable] = {
            "svm": lambda: LinearSVC(random_state=seed),
            "decision_tree": lambda: DecisionTreeClassifier(random_state=seed),
            "random_forest": lambda: RandomForestClassifier(random_state=seed, n_jobs=2),
            "adaboost": lambda: AdaBoostClassifier(n_estimators=100, random_state=seed),
            "bernoulli_nb": lambda: BernoulliNB(),
        }
        self.pipeline = make_pipeline(TfidfVectorizer(), classifiers[name]())

    def fit(self, data: IntentData) -> TextModel:
        self.pipeline.fit(data.text, data.label)
        return self

    def predict(self, data: IntentData) -> np.ndarray:
        return self.pipeline.predict(data.text)


def make_model(name: str, seed: int, n_tasks: int = 4):
    """A fresh local model by ``--models`` name: ``make_model("svm", 42).fit(train).predict(test)``."""
    if name == "context":
        return ContextModel(seed, n_tasks)
    if name in CLASSIC_MODELS:
        return TextModel(name, seed)
    raise InputError(f"--models: unknown model {name!r}; choose from {', '.join(ALL_MODELS)}")


def evaluate_local(name: str, data: IntentSplits, seed: int) -> dict:
    """Train one local model on ``train``, score it on ``test``; returns one ``results`` entry."""
    train, test = data.splits["train"], data.splits["test"]
    if len(set(train.label.tolist())) < 2:
        raise InputError(f"intent_utterances train split: needs at least 2 labels to train {name!r}")
    model = make_model(name, seed, len(data.tasks))
    started = time.perf_counter()
    model.fit(train)
    trained = time.perf_counter()
    predicted = model.predict(test)
    done = time.perf_counter()
    return {
        "model": name,
        **scores(test.label, predicted, len(data.labels)),
        "train_seconds": round(trained - started, 3),
        "predict_seconds": round(done - trained, 3),
        "test_size": len(test),
    }


def _summary(name: str, runs: list[dict], seeds: list[int]) -> dict:
    acc = np.array([r["accuracy"] for r in runs])
    f1 = np.array([r["macro_f1"] for r in runs])
    secs = np.array([r["train_seconds"] for r in runs])
    return {
        "model": name,
        "split_seeds": seeds,
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": float(acc.std()),
        "macro_f1_mean": float(f1.mean()),
        "macro_f1_std": float(f1.std()),
        "train_seconds_mean": float(secs.mean()),
        "runs": [
            {"split_seed": s, "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}
            for s, r in zip(seeds, runs, strict=True)
        ],
    }


def run_intent_baselines(
    path: str | os.PathLike,
    models: list[str] | tuple[str, ...] = DEFAULT_MODELS,
    *,
    seed: int = 42,
    split_seeds: list[int] | None = None,
    split_by: str = "utterance",
    llm: Callable[[str, IntentSplits, int, bool], dict] | None = None,
    llm_label: str = "LLM",
    progress: bool = True,
) -> dict:
    """Score ``models`` on the folder's own test split, then (optionally) over re-drawn split seeds.

    ``llm`` scores the ``llm-*`` models: ``llm(name, data, seed, progress)`` returns one ``results``
    entry. The CLI hands in :func:`recllmsim_hf.generation.annotate.llm_intent.evaluator` (this module
    never imports the generation side). They are scored on the folder's own split only:
    re-running them per seed would multiply cost.
    Returns ``{"dataset", "labels", "seed", "results": [...], "over_seeds": [...] | None, "paper": {...}}``.
    """
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown or not models:
        raise InputError(
            f"--models: unknown model {unknown[0] if unknown else ''!r}; choose from {', '.join(ALL_MODELS)}"
        )
    if split_by not in ("utterance", "conversation"):
        raise InputError(f"--split-by: must be 'utterance' or 'conversation', but got {split_by!r}")
    data = load_intent(path)
    local = [m for m in models if m in LOCAL_MODELS]
    remote = [m for m in models if m in LLM_MODELS]
    seeds = list(split_seeds or [])
    steps = len(local) * (1 + len(seeds)) + len(remote)
    results, over = [], []
    with _Progress(steps, progress) as bar:
        for name in local:
            bar.step(f"{name} (built split)")
            results.append(evaluate_local(name, data, seed))
        for name in remote:
            if llm is None:
                raise InputError(
                    f"--models {name}: needs an LLM endpoint (--model, --base-url/--api-key)"
                )
            bar.step(f"{name} ({llm_label})")
            results.append(llm(name, data, seed, progress))
        resplits = {s: resplit(data, s, split_by) for s in seeds}
        for name in local:
            runs = []
            for s in seeds:
                bar.step(f"{name} (split seed {s})")
                runs.append(evaluate_local(name, resplits[s], seed))
            if runs:
                over.append(_summary(name, runs, seeds))
    return {
        "dataset": str(path),
        "labels": data.labels,
        "seed": seed,
        "results": results,
        "over_seeds": over or None,
        "paper": {m: {"accuracy": a, "macro_f1": f} for m, (a, f) in PAPER_TABLE4.items()},
    }


class _Progress:
    """A rich progress bar on stderr (or nothing), advanced one model run at a time."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar, self.started = total, enabled, None, 0

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task("intent baselines", total=self.total)
        return self

    def step(self, description: str) -> None:
        """Announce the next run; the runs before it are complete."""
        if self.bar is not None:
            self.bar.update(self.task, description=description, completed=self.started)
        self.started += 1

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.total)
            self.bar.__exit__(*exc)


def render_baselines(report: dict) -> str:
    """The report of :func:`run_intent_baselines` as aligned plain text."""
    lines = [f"Intent detection on {report['dataset']} (test split; train on train)"]
    lines.append(f"{'model':<16} {'accuracy':>8} {'macro-F1':>8} {'train s':>8}   paper acc / F1")
    for r in report["results"]:
        paper = report["paper"].get(r["model"])
        ref = f"{paper['accuracy']:.4f} / {paper['macro_f1']:.4f}" if paper else ""
        name = r["model"] if "llm_model" not in r else f"{r['model']} ({r['llm_model']})"
        lines.append(
            f"{name:<16} {r['accuracy']:>8.4f} {r['macro_f1']:>8.4f} {r['train_seconds']:>8.2f}   {ref}"
        )
        if r.get("failed"):
            lines.append(f"  {r['failed']} of {r['test_size']} requests failed: {r['first_error']}")
    if report.get("over_seeds"):
        seeds = ",".join(str(s) for s in report["over_seeds"][0]["split_seeds"])
        lines += ["", f"Mean ± std over split seeds {seeds}"]
        lines.append(f"{'model':<16} {'accuracy':>17} {'macro-F1':>17} {'train s':>8}")
        for s in report["over_seeds"]:
            acc = f"{s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f}"
            f1 = f"{s['macro_f1_mean']:.4f} ± {s['macro_f1_std']:.4f}"
            lines.append(f"{s['model']:<16} {acc:>17} {f1:>17} {s['train_seconds_mean']:>8.2f}")
    return "\n".join(lines) + "\n"
