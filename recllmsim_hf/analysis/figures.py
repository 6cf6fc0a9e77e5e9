"""The figures of `recllmsim stats --plots OUT`, drawn from the numbers of :mod:`recllmsim_hf.analysis.stats`.

- ``score_distribution.png``: one bar chart per quality metric, conversations per score
  (the paper's Fig. 6).
- ``preference_phrases.png``: the most frequent preference phrases of each task as
  horizontal bars (the paper's Fig. 5 shows word clouds of the same counts).

matplotlib is imported inside :func:`write_figures` with the Agg backend (no display
needed). Each PNG is written to a temporary file and renamed into place, and carries no
date, so the same numbers give the same bytes.

Example:
    >>> from recllmsim_hf.analysis.stats import compute_stats
    >>> write_figures(compute_stats("recllmsim"), "plots")  # doctest: +SKIP
    [PosixPath('plots/score_distribution.png'), PosixPath('plots/preference_phrases.png')]
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from recllmsim_hf.corpus import FILE_MODE
from recllmsim_hf.errors import InputError

SCORE_FIGURE = "score_distribution.png"
PHRASE_FIGURE = "preference_phrases.png"
_PNG_METADATA = {"Software": None}  # no library version in the file: bytes depend on the data only


def _save(fig, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=110, metadata=_PNG_METADATA)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _score_figure(plt, distribution: dict):
    metrics = list(distribution)
    cols = 4
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        counts = distribution[metric]["counts"]
        scores, values = list(counts), list(counts.values())
        bars = ax.bar(scores, values, color="#4C72B0")
        ax.bar_label(bars, fontsize=8)
        ax.set_title(distribution[metric]["name"], fontsize=10)
        ax.set_xlabel("score")
        ax.set_ylabel("conversations")
        ax.set_ylim(0, max(values + [1]) * 1.15)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle("Score distribution of the seven quality metrics")
    fig.tight_layout()
    return fig


def _phrase_figure(plt, phrases: dict):
    tasks = [t for t in phrases if phrases[t]]
    cols = 2
    rows = max(1, math.ceil(len(tasks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.2 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        items = phrases[task][::-1]  # largest on top
        ax.barh([p for p, _ in items], [n for _, n in items], color="#55A868")
        ax.set_title(task, fontsize=11)
        ax.set_xlabel("conversations mentioning the phrase")
        ax.set_ylabel("preference phrase")
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    fig.suptitle("Most frequent user preference phrases per task")
    fig.tight_layout()
    return fig


def write_figures(stats: dict, out: str | os.PathLike) -> list[Path]:
    """Write the two PNG figures of ``stats`` (from ``compute_stats``) into the folder ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--plots {out}: exists and is not a folder; pass a folder path")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw, data in (
        (SCORE_FIGURE, _score_figure, stats["score_distribution"]),
        (PHRASE_FIGURE, _phrase_figure, stats["preference_phrases"]),
    ):
        fig = draw(plt, data)
        try:
            _save(fig, out / name)
        finally:
            plt.close(fig)
        written.append(out / name)
    return written


COMPARISON_FIGURE = "synthetic_vs_human.png"
_GROUP_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860")


def _comparison_figure(plt, comparison: dict):
    """Three panels: the four shared ratings per group, lengths per group, ratings per assistant model."""
    import numpy as np

    groups, metrics = comparison["groups"], comparison["metrics"]
    models = comparison["assistant_models"]["models"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    panels = (
        (axes[0], {g: [groups[g]["ratings"][m] for m in metrics] for g in groups}, metrics, "mean rating"),
        (
            axes[1],
            {g: [groups[g]["user_utterance_chars"], groups[g]["assistant_reply_chars"]] for g in groups},
            ["user utterance", "assistant reply"],
            "mean characters (Chinese)",
        ),
        (axes[2], {m: [models[m]["ratings"][k] for k in metrics] for m in models}, metrics, "mean rating"),
    )
    titles = (
        "Questionnaire ratings: synthetic vs human users",
        "Length of a turn",
        f"{comparison['assistant_models']['study']}: ratings per assistant model",
    )
    for (ax, series, ticks, ylabel), title in zip(panels, titles, strict=True):
        width = 0.8 / max(1, len(series))
        x = np.arange(len(ticks))
        for i, (name, values) in enumerate(series.items()):
            heights = [0 if v is None else v for v in values]
            ax.bar(
                x + (i - (len(series) - 1) / 2) * width,
                heights,
                width,
                label=name,
                color=_GROUP_COLORS[i % 6],
            )
        ax.set_xticks(x, [t.replace("_", " ") for t in ticks], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        top = max([v for values in series.values() for v in values if v is not None] + [1])
        ax.set_ylim(0, top * 1.3)  # room for the legend above the bars
        ax.legend(fontsize=7, ncol=2, loc="upper center")
    fig.tight_layout()
    return fig


def write_comparison_figure(comparison: dict, out: str | os.PathLike) -> Path:
    """Write ``synthetic_vs_human.png`` (from ``human_stats.compare_studies``) into the folder ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig = _comparison_figure(plt, comparison)
    try:
        _save(fig, out / COMPARISON_FIGURE)
    finally:
        plt.close(fig)
    return out / COMPARISON_FIGURE
