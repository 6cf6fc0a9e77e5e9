"""The figures of `stats --plots`: paper sizes, readable fonts, shares per task, stable bytes."""

from __future__ import annotations

import json
import struct

import pytest

from recllmsim_hf.analysis import figures
from recllmsim_hf.analysis.figure_style import OKABE_ITO, WIDTHS, figure_context
from recllmsim_hf.analysis.stats import compute_stats
from recllmsim_hf.errors import InputError
from recllmsim_hf.safety import MARKER

TASKS = ["travel planning", "skills learning planning", "recipe planning", "preparing gifts"]


@pytest.fixture(scope="module")
def release_stats(built_release):
    return compute_stats(built_release)


def _texts(fig):
    from matplotlib.text import Text

    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _assert_print_ready(fig, width: str) -> None:
    """Exactly the paper width, every text >= 7 pt and inside the figure."""
    assert tuple(round(x, 3) for x in fig.get_size_inches())[0] == WIDTHS[width]
    texts = _texts(fig)
    assert texts and min(t.get_fontsize() for t in texts) >= 7
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches, what is drawn only
    w, h = fig.get_size_inches()
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01 and drawn.x1 <= w + 0.01 and drawn.y1 <= h + 0.01


@pytest.mark.parametrize("width", ["column", "page"])
def test_score_figure_is_shares_per_task_without_empty_panels(release_stats, width):
    dist = release_stats["score_distribution"]
    with figure_context() as plt:
        fig = figures._score_figure(plt, dist, width)
        _assert_print_ready(fig, width)
        assert len(fig.axes) == 4  # one panel per task, none empty
        titles = [ax.get_title(loc="left") for ax in fig.axes]
        assert titles == [
            "travel planning (n = 557)",
            "skills learning planning (n = 473)",
            "recipe planning (n = 352)",
            "preparing gifts (n = 474)",
        ]
        travel = fig.axes[0]
        assert [t.get_text() for t in travel.get_yticklabels()][:2] == [
            "Preference Alignment (0-2)",
            "Additional Preferences (0-1)",
        ]
        rows: dict[float, list] = {}
        for bar in travel.patches:
            rows.setdefault(round(bar.get_y() + bar.get_height() / 2, 3), []).append(bar)
        assert len(rows) == 7
        assert all(sum(b.get_width() for b in bars) == pytest.approx(100) for bars in rows.values())
        additional = sorted(rows[1.0], key=lambda b: b.get_x())
        assert [round(b.get_width(), 1) for b in additional] == [56.4, 43.6]  # 314 and 243 of 557
        bars = [bar for ax in fig.axes for bar in ax.patches]
        colours = {tuple(round(x, 4) for x in bar.get_facecolor()[:3]) for bar in bars}
        okabe = {tuple(round(int(c[i : i + 2], 16) / 255, 4) for i in (1, 3, 5)) for c in OKABE_ITO}
        assert len(colours) == 3 and colours <= okabe
        plt.close(fig)


@pytest.mark.parametrize("width", ["column", "page"])
def test_phrase_figure_keeps_case_and_drops_moods(release_stats, width):
    with figure_context() as plt:
        fig = figures._phrase_figure(plt, release_stats["preference_phrases"], width)
        _assert_print_ready(fig, width)
        assert [ax.get_title(loc="left") for ax in fig.axes] == TASKS
        labels = {ax.get_title(loc="left"): [t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes}
        assert labels["skills learning planning"][0] == "practice"  # merged, most frequent on top
        assert {"Python", "Adobe Premiere Pro"} <= set(labels["skills learning planning"])
        assert "DIY" in labels["preparing gifts"] and "Barcelona" in labels["travel planning"]
        assert not {"excited", "confident", "grateful"} & set(labels["recipe planning"])
        plt.close(fig)


def test_phrase_panels_with_one_phrase_still_show_their_bars():
    phrases = {"recipe planning": [["vegan", 3]], "preparing gifts": [["handmade", 5]]}
    with figure_context() as plt:
        fig = figures._phrase_figure(plt, phrases, "page")
        _assert_print_ready(fig, "page")
        for ax in fig.axes:
            (bar,) = ax.patches
            extent = bar.get_window_extent(fig.canvas.get_renderer())
            assert extent.height / fig.dpi >= 0.04  # inches: a visible bar, not a line on the axis
            assert ax.get_window_extent().height / fig.dpi >= 0.3
        plt.close(fig)


def _png_dpi(data: bytes) -> float:
    at = data.index(b"pHYs")
    x, _, unit = struct.unpack(">IIB", data[at + 4 : at + 13])
    assert unit == 1  # metres
    return x * 0.0254


def test_write_figures_png_pdf_svg_byte_stable(release_stats, tmp_path):
    first = figures.write_figures(release_stats, tmp_path / "a", width="column")
    second = figures.write_figures(release_stats, tmp_path / "b", width="column")
    assert [p.name for p in first] == [
        "score_distribution.png", "score_distribution.pdf", "score_distribution.svg",
        "preference_phrases.png", "preference_phrases.pdf", "preference_phrases.svg",
    ]  # fmt: skip
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    # the output marker lists every file written: a rerun may replace exactly these
    marker = json.loads((tmp_path / "a" / MARKER).read_text())
    assert marker["kind"] == "figures" and marker["files"] == sorted(p.name for p in first)
    png = first[0].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and round(_png_dpi(png)) == 300
    assert struct.unpack(">I", png[16:20])[0] == 990  # 3.3 in at 300 dpi
    pdf, svg = first[1].read_bytes(), first[2].read_text()
    assert pdf.startswith(b"%PDF") and b"/MediaBox [ 0 0 237.6 " in pdf
    assert b"CreationDate" not in pdf and b"matplotlib" not in pdf.lower()
    assert 'width="237.6pt"' in svg and "<dc:date>" not in svg and "Matplotlib v" not in svg
    left = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert left == sorted([MARKER] + [p.name for p in first])  # no temp file left


def test_nothing_to_draw_writes_nothing(tmp_path):
    empty = {"score_distribution": {"diversity": {"name": "Diversity", "counts": {}, "by_task": {}}},
             "preference_phrases": {}}  # fmt: skip
    assert figures.write_figures(empty, tmp_path / "p") == []


def test_bad_width_and_plots_path(release_stats, tmp_path):
    with pytest.raises(InputError, match=r"--width: must be one of \['column', 'page'\], but got 'a4'"):
        figures.write_figures(release_stats, tmp_path, width="a4")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"exists and is not a folder"):
        figures.write_figures(release_stats, tmp_path / "file")


def test_unrated_metrics_are_said_not_drawn_empty(release_stats):
    import copy

    dist = copy.deepcopy(release_stats["score_distribution"])
    dist["diversity"]["by_task"].pop("recipe planning")  # the raters of one task skipped it
    dist["memorization"]["by_task"] = {}  # nobody rated it
    with figure_context() as plt:
        fig = figures._score_figure(plt, dist, "page")
        _assert_print_ready(fig, "page")
        recipe = fig.axes[2]
        labels = [t.get_text() for t in recipe.get_yticklabels()]
        assert len(labels) == 6 and not any(label.startswith("Memorization") for label in labels)
        notes = [t for t in recipe.texts if t.get_text() == "not rated"]
        assert len(notes) == 1 and notes[0].get_position()[1] == labels.index("Diversity (0-2)")
        assert not [t for t in fig.axes[0].texts if t.get_text() == "not rated"]
        plt.close(fig)
