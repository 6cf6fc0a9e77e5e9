"""The figures of `recllmsim stats --plots OUT [--width column|page]`, from :mod:`.stats` numbers.

- ``score_distribution.{png,pdf,svg}``: one panel per task; in each, one 100 % bar per quality
  metric split into the shares of its scores (the paper's Fig. 6, per task).
- ``preference_phrases.{png,pdf,svg}``: the most frequent preference phrases of each task as
  horizontal bars (the paper's Fig. 5 shows word clouds of the same counts; the phrase rules are
  in :mod:`recllmsim_hf.analysis.phrases`).

Sizes, fonts (>= 7 pt at the printed size), the colour-blind-safe palette and the byte-stable
PNG/PDF/SVG writing are in :mod:`recllmsim_hf.analysis.figure_style`.

Example:
    >>> from recllmsim_hf.analysis.stats import compute_stats
    >>> write_figures(compute_stats("recllmsim"), "plots", width="column")  # doctest: +SKIP
    [PosixPath('plots/score_distribution.png'), PosixPath('plots/score_distribution.pdf'), ...]
"""

from __future__ import annotations

import os
from pathlib import Path

from recllmsim_hf.analysis.figure_style import (
    DEFAULT_WIDTH,
    FONT_PT,
    OKABE_ITO,
    check_width,
    figure_context,
    left_titles,
    save_figure,
)

SCORE_FIGURE = "score_distribution"
PHRASE_FIGURE = "preference_phrases"
# score -> colour: low = vermillion, middle = sky blue, high = blue (the same value, the same colour)
SCORE_COLOURS = {"0": OKABE_ITO[5], "1": OKABE_ITO[1], "2": OKABE_ITO[4]}
_DARK = {OKABE_ITO[5], OKABE_ITO[4], OKABE_ITO[2], OKABE_ITO[6], OKABE_ITO[7]}
TASK_COLOURS = (OKABE_ITO[4], OKABE_ITO[0], OKABE_ITO[2], OKABE_ITO[6], OKABE_ITO[5], OKABE_ITO[1])
_BAR_IN = 0.15  # inches per bar row
_MIN_BAR_ROWS = 6  # fewer rows leave a panel no height for its bars once title and axis are placed
_LABEL_MIN_SHARE = 12.0  # a segment narrower than this (percent) carries no number


def _grid(n: int, width: str) -> tuple[int, int]:
    """(rows, cols): one column at column width, two at page width (one for a single panel)."""
    cols = 1 if width == "column" or n == 1 else 2
    return -(-n // cols), cols


def _score_tasks(distribution: dict) -> list[str]:
    tasks: list[str] = []
    for data in distribution.values():
        for task, counts in data.get("by_task", {}).items():
            if task not in tasks and sum(counts.values()):
                tasks.append(task)
    return tasks


def _score_figure(plt, distribution: dict, width: str = DEFAULT_WIDTH):
    # a metric nobody rated is left out; one a task's raters skipped says "not rated" in its row
    distribution = {
        m: d for m, d in distribution.items() if any(sum(c.values()) for c in d.get("by_task", {}).values())
    }
    metrics = list(distribution)
    tasks = _score_tasks(distribution)
    if not tasks:
        return None
    rows, cols = _grid(len(tasks), width)
    panel_h = 0.35 + _BAR_IN * len(metrics)
    fig, axes = plt.subplots(
        rows, cols, figsize=(check_width(width), 0.45 + rows * panel_h), squeeze=False, sharey=True,
        layout="constrained",
    )  # fmt: skip
    fig.get_layout_engine().set(wspace=0.08)  # "100" of one panel clear of the "0" of the next
    labels = [f"{d['name']} (0-{len(d['counts']) - 1})" for d in distribution.values()]
    scores = sorted({s for d in distribution.values() for s in d["counts"]}, key=int)
    flat = list(axes.flat)
    titles = []
    for ax, task in zip(flat, tasks, strict=False):
        rated = 0
        for y, metric in enumerate(metrics):
            counts = distribution[metric]["by_task"].get(task, {})
            total = sum(counts.values())
            rated = max(rated, total)
            if not total:
                ax.text(1, y, "not rated", ha="left", va="center", style="italic")
            left = 0.0
            for score in scores:
                if score not in counts or not total:
                    continue
                share = 100 * counts[score] / total
                colour = SCORE_COLOURS.get(score, OKABE_ITO[int(score) % len(OKABE_ITO)])
                ax.barh(y, share, left=left, height=0.72, color=colour, linewidth=0)
                if share >= _LABEL_MIN_SHARE:
                    ax.text(
                        left + share / 2, y, f"{share:.0f}", ha="center", va="center",
                        color="white" if colour in _DARK else "black",
                    )  # fmt: skip
                left += share
        titles.append((ax, f"{task} (n = {rated:,})"))
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_yticks(range(len(metrics)), labels)
        ax.set_ylim(len(metrics) - 0.5, -0.5)  # the paper's metric order, top to bottom
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
    for ax in flat[len(tasks) :]:
        ax.remove()
    fig.supxlabel("share of the task's rated conversations (%)", fontsize=FONT_PT)
    handles = [plt.Rectangle((0, 0), 1, 1, color=SCORE_COLOURS.get(s, "grey")) for s in scores]
    fig.legend(
        handles, [f"score {s}" for s in scores], loc="outside upper center", ncols=len(scores),
        handlelength=1.0, columnspacing=1.2,
    )  # fmt: skip
    left_titles(fig, titles)
    return fig


def _phrase_figure(plt, phrases: dict, width: str = DEFAULT_WIDTH):
    tasks = [t for t in phrases if phrases[t]]
    if not tasks:
        return None
    rows, cols = _grid(len(tasks), width)
    longest = max(_MIN_BAR_ROWS, *(len(phrases[t]) for t in tasks))  # a 1-phrase panel still has room
    panel_h = 0.45 + _BAR_IN * longest
    fig, axes = plt.subplots(
        rows, cols, figsize=(check_width(width), rows * panel_h), squeeze=False, layout="constrained"
    )
    flat = list(axes.flat)
    for i, (ax, task) in enumerate(zip(flat, tasks, strict=False)):
        items = phrases[task]
        names, counts = [p for p, _ in items], [n for _, n in items]
        bars = ax.barh(range(len(items)), counts, height=0.72, color=TASK_COLOURS[i % len(TASK_COLOURS)])
        ax.bar_label(bars, padding=1.5)
        ax.set_yticks(range(len(items)), names)
        ax.set_ylim(longest - 0.5, -0.5)  # largest on top; every panel the same bar pitch
        ax.set_xlim(0, max(counts) * 1.18)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("conversations naming it")
    for ax in flat[len(tasks) :]:
        ax.remove()
    left_titles(fig, list(zip(flat, tasks, strict=False)))
    return fig


def _save(fig, path: Path) -> list[Path]:
    """Write ``fig`` as ``path`` with its suffix replaced by .png, .pdf and .svg."""
    return save_figure(fig, path.parent, path.stem)


def write_figures(
    stats: dict, out: str | os.PathLike, width: str = DEFAULT_WIDTH, comparison: dict | None = None
) -> list[Path]:
    """Write the figures of ``stats`` (from ``compute_stats``) into the folder ``out``, each as
    PNG, PDF and SVG; ``width`` is ``"column"`` (3.3 in) or ``"page"`` (6.9 in). ``comparison``
    (from ``human_stats.compare_studies``) adds the synthetic-vs-human figure. The folder gets the
    project's output marker listing every file, so a rerun may replace exactly these."""
    from recllmsim_hf.safety import claim_output, write_marker

    check_width(width)
    shown = Path(out)
    out = claim_output(out, "figures", flag="--plots")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (SCORE_FIGURE, _score_figure, stats["score_distribution"]),
        (PHRASE_FIGURE, _phrase_figure, stats["preference_phrases"]),
    ]
    if comparison is not None:
        jobs.append((COMPARISON_FIGURE, _comparison_figure, comparison))
    written: list[Path] = []
    with figure_context() as plt:
        for stem, draw, data in jobs:
            fig = draw(plt, data, width)
            if fig is None:  # nothing to draw (e.g. a corpus without ratings): no empty figure
                continue
            try:
                written += [shown / p.name for p in _save(fig, out / stem)]
            finally:
                plt.close(fig)
    write_marker(out, "figures", [p.name for p in written])
    return written


COMPARISON_FIGURE = "synthetic_vs_human"
# short tick labels of the four ratings both kinds of users have (the full names overlap at 7 pt)
_SHORT_METRICS = {"memorization": "memory", "detail_level": "detail", "practical_usefulness": "usefulness"}


def _comparison_figure(plt, comparison: dict, width: str = DEFAULT_WIDTH):
    """Three panels, stacked: the four shared ratings per group, turn lengths per group, and the
    ratings per assistant model of the second study."""
    import numpy as np

    groups, metrics = comparison["groups"], comparison["metrics"]
    models = comparison["assistant_models"]["models"]
    panels = [
        ("Questionnaire ratings: synthetic vs human users", "mean rating", metrics,
         {g: [groups[g]["ratings"][m] for m in metrics] for g in groups}),
        ("Length of a turn", "mean characters", ["user utterance", "assistant reply"],
         {g: [groups[g]["user_utterance_chars"], groups[g]["assistant_reply_chars"]] for g in groups}),
    ]  # fmt: skip
    if models:
        panels.append((
            f"{comparison['assistant_models']['study']}: ratings per assistant model", "mean rating", metrics,
            {m: [models[m]["ratings"][k] for k in metrics] for m in models},
        ))  # fmt: skip
    fig, axes = plt.subplots(len(panels), 1, figsize=(check_width(width), 2.1 * len(panels)), squeeze=False)
    for ax, (title, ylabel, ticks, series) in zip(axes[:, 0], panels, strict=True):
        bar = 0.8 / max(1, len(series))
        x = np.arange(len(ticks))
        for i, (name, values) in enumerate(series.items()):
            heights = [0 if v is None else v for v in values]
            ax.bar(x + (i - (len(series) - 1) / 2) * bar, heights, bar, label=name,
                   color=TASK_COLOURS[i % len(TASK_COLOURS)])  # fmt: skip
        ax.set_xticks(x, [_SHORT_METRICS.get(t, t).replace("_", " ") for t in ticks])
        ax.set_ylabel(ylabel)
        top = max([v for values in series.values() for v in values if v is not None] + [1])
        ax.set_ylim(0, top * 1.15)
        longest = max(len(name) for name in series)
        if width == "page":
            ncol = len(series) if longest * len(series) < 100 else 2
        else:
            ncol = 1 if longest > 16 else 2
        ax.legend(ncol=ncol, loc="upper left", bbox_to_anchor=(0, -0.18))
        ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig
