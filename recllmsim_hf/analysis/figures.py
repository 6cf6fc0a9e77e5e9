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

    from recllmsim_hf.safety import claim_output, write_marker

    shown = Path(out)
    out = claim_output(out, "figures", flag="--plots")
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
        written.append(shown / name)
    write_marker(out, "figures", [p.name for p in written])
    return written
