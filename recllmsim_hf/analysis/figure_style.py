"""How the project's figures look and are written: paper sizes, fonts, palette, stable bytes.

- **Sizes.** ``--width column`` draws a figure 3.3 in wide (one column of a two-column paper),
  ``--width page`` 6.9 in (the full text width); fonts are :data:`FONT_PT` (7 pt, ticks and
  legends) and :data:`TITLE_PT` (8 pt) at that size, so a figure is placed at 100 % and never
  scaled.
- **Palette.** :data:`OKABE_ITO`, the colour-blind-safe palette of Okabe and Ito (2008), in
  their order (black last, for text).
- **Files.** :func:`save_figure` writes ``STEM.png`` (300 dpi), ``STEM.pdf`` and ``STEM.svg``,
  each through a temporary file renamed into place, with no date, software version or random id
  inside: the same numbers give the same bytes.

Example:
    >>> with figure_context():  # doctest: +SKIP
    ...     fig = plt.figure(figsize=(WIDTHS["column"], 2.0))
    >>> save_figure(fig, Path("plots"), "scores")  # doctest: +SKIP
    [PosixPath('plots/scores.png'), PosixPath('plots/scores.pdf'), PosixPath('plots/scores.svg')]
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from recllmsim_hf.corpus import FILE_MODE

WIDTHS: dict[str, float] = {"column": 3.3, "page": 6.9}  # inches
DEFAULT_WIDTH = "page"
# --top with --plots: one bar per phrase; 2,000 took 142 s and 1.3 GB, and more never finished
MAX_FIGURE_PHRASES = 100
FONT_PT = 7.0
TITLE_PT = 8.0
DPI = 300
FORMATS: tuple[str, ...] = ("png", "pdf", "svg")
OKABE_ITO: tuple[str, ...] = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
)
# No library version, date or producer in the files: their bytes depend on the data only.
_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}
_RC = {
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same glyphs on every machine
    "font.size": FONT_PT,
    "axes.titlesize": TITLE_PT,
    "axes.labelsize": FONT_PT,
    "xtick.labelsize": FONT_PT,
    "ytick.labelsize": FONT_PT,
    "legend.fontsize": FONT_PT,
    "figure.titlesize": TITLE_PT,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # TrueType: text stays text in the PDF (editable, accepted by publishers)
    "svg.hashsalt": "recllmsim",  # fixed ids inside the SVG
    "svg.fonttype": "path",  # looks the same without the font installed
    "path.simplify": False,
}


def check_width(width: str) -> float:
    """Inches of a figure ``width`` name; an InputError naming the choices otherwise."""
    from recllmsim_hf.errors import InputError

    if width not in WIDTHS:
        raise InputError(f"--width: must be one of {list(WIDTHS)}, but got {width!r}")
    return WIDTHS[width]


def check_figure_top(top: int) -> None:
    """An InputError when ``--top`` asks a figure for more phrases per task than it can show."""
    from recllmsim_hf.errors import InputError

    if top > MAX_FIGURE_PHRASES:
        raise InputError(
            f"--top: a figure shows at most {MAX_FIGURE_PHRASES} phrases per task, but got {top}; "
            "use --json without --plots for more"
        )


@contextlib.contextmanager
def figure_context():
    """matplotlib (Agg backend) with the project's style; yields ``pyplot``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(_RC):
        yield plt


def left_titles(fig, titles: list[tuple[object, str]]) -> None:
    """Set each ``(axes, text)`` title flush with the left edge of that panel's tick labels
    (not of its plot area), so a long task name never runs past the figure's right edge."""
    placed = [(ax, ax.set_title(text, loc="left")) for ax, text in titles]
    fig.canvas.draw()  # lays the panels out, so the tick labels have their final extents
    fig.set_layout_engine("none")  # keep that layout: moving the titles must not re-run it
    renderer = fig.canvas.get_renderer()
    for ax, title in placed:
        box = ax.yaxis.get_tightbbox(renderer)
        if box is not None:
            title.set_x(min(0.0, ax.transAxes.inverted().transform((box.x0, box.y0))[0]))


def _write(fig, path: Path, fmt: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{fmt}", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format=fmt, dpi=DPI, metadata=_METADATA[fmt])
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_figure(fig, out: Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``out/STEM.png`` (300 dpi), ``.pdf`` and ``.svg``; returns the paths."""
    paths = []
    with figure_context():  # the same rc at save time (svg.hashsalt, pdf.fonttype are read here)
        for fmt in FORMATS:
            path = out / f"{stem}.{fmt}"
            _write(fig, path, fmt)
            paths.append(path)
    return paths
