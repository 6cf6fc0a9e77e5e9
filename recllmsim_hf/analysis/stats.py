"""`recllmsim stats`: the paper's descriptive tables, computed from a built dataset folder.

A built folder is what ``recllmsim build`` writes (``DIR/<table>/<split>-*.parquet``
plus ``README.md``). Everything here reads those parquet files with pyarrow only
(no ``datasets`` import), so the command starts fast.

The numbers, as in RecLLMSim §4-§5:

- Table 1: scenarios, conversations, average utterances and average tokens per
  conversation. Tokens are counted with :data:`TOKENIZER` (a regex word tokenizer:
  words and single punctuation marks); the paper used an unnamed LLM tokenizer, so
  its token figures are not comparable one to one. "Raw" needs the corpus before
  the generation filters, which a build does not keep: it is ``None`` here.
- Table 2: the mean of the seven quality ratings per task (unrated values skipped).
- Table 3: size, average tokens and label counts of each split of ``intent_utterances``.
- The number of assistant replies annotated as hallucinations.
- For the figures: the score distribution of each metric (Fig. 6) and the most
  frequent preference phrases per task (Fig. 5).

Example:
    >>> s = compute_stats("recllmsim")  # doctest: +SKIP
    >>> s["hallucinations"]["count"], s["table2"]["rows"][0]["task"]
    (39, 'travel planning')
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import RATING_METRICS

TOKENIZER = r"regex word tokenizer \w+|[^\w\s] (words and single punctuation marks)"
_TOKEN = re.compile(r"\w+|[^\w\s]")
DEFAULT_TOP_PHRASES = 15


def count_tokens(text: str | None) -> int:
    """Tokens of ``text`` under :data:`TOKENIZER`: ``count_tokens("Hi, Ann!") == 4``."""
    return len(_TOKEN.findall(text or ""))


# -- reading a built folder -------------------------------------------------------------------


def check_built(path: str | os.PathLike) -> Path:
    """The folder ``path`` if it holds a build (parquet shards per table), else an InputError."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such folder; pass the --out folder of `recllmsim build`")
    if not any(path.glob("*/*.parquet")):
        raise InputError(
            f"{path}: not a built dataset (no <table>/<split>-*.parquet files); "
            "run `recllmsim build --out DIR` first and pass DIR"
        )
    return path


def has_table(path: str | os.PathLike, table: str) -> bool:
    """Whether the build holds ``table``: a config without rows (e.g. ``quality_scores`` of an
    unannotated corpus) is left out of a build on purpose. The build's marker lists what it wrote;
    a build without one counts what is on disk."""
    from recllmsim_hf.safety import read_marker

    marker = read_marker(path)
    if marker is not None and marker.get("kind") == "build":
        return any(f.startswith(f"{table}/") for f in marker.get("files") or [])
    return Path(path, table).is_dir()


def shard_paths(path: str | os.PathLike, table: str, split: str = "train") -> list[Path]:
    """The parquet shards of one table and split, in order; an InputError when there are none or
    when they are not exactly ``<split>-00000-of-N`` .. ``<split>-(N-1)-of-N`` (a stray copy would
    count twice)."""
    paths = sorted(Path(path, table).glob(f"{split}-*.parquet"))
    if not paths:
        raise InputError(
            f"{Path(path, table)}: no {split}-*.parquet shard; rebuild the folder with `recllmsim build`"
        )
    total = re.search(r"-of-(\d{5})\.parquet$", paths[0].name)
    expected = [f"{split}-{i:05d}-of-{total[1]}.parquet" for i in range(int(total[1]))] if total else []
    for p in paths:
        if p.name not in expected:
            raise InputError(
                f"{p}: a shard that does not belong to the {split} split of {table} (expected "
                f"{', '.join(expected[:3]) or f'{split}-NNNNN-of-NNNNN.parquet'}), but got {p.name!r}; "
                "remove the stray file"
            )
    if len(paths) != len(expected):
        missing = sorted(set(expected) - {p.name for p in paths})[0]
        raise InputError(f"{Path(path, table)}: shard {missing} is missing; rebuild the folder")
    return paths


def read_table(path: str | os.PathLike, table: str, split: str = "train", columns: list[str] | None = None):
    """One split of one table as a ``pyarrow.Table`` (all its shards concatenated)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [pq.read_table(p, columns=columns) for p in shard_paths(path, table, split)]
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def class_names(path: str | os.PathLike, table: str, column: str, split: str = "train") -> list[str]:
    """The ClassLabel names of ``column`` (or of its items, for a list of ClassLabel), read from the
    ``datasets`` metadata the parquet file carries."""
    import pyarrow.parquet as pq

    first = shard_paths(path, table, split)[0]
    meta = (pq.read_schema(first).metadata or {}).get(b"huggingface")
    try:
        spec = json.loads(meta)["info"]["features"][column]
        return list((spec if "names" in spec else spec["feature"])["names"])
    except (TypeError, KeyError, ValueError):
        raise InputError(
            f"{first}: no ClassLabel names for column {column!r} in its metadata; "
            "rebuild the folder with `recllmsim build`"
        ) from None


def intent_splits(path: str | os.PathLike) -> list[str]:
    """The splits of ``intent_utterances`` present in the folder, in train/validation/test order."""
    return [s for s in ("train", "validation", "test") if any(Path(path, "intent_utterances").glob(f"{s}-*"))]


# -- the numbers ------------------------------------------------------------------------------


def _table1(path: Path) -> dict:
    conv = read_table(path, "conversations", columns=["scenario_id", "turns", "filter_passed"])
    turns = conv.column("turns").to_pylist()
    n = len(turns)
    utterances = sum(len(t) for t in turns)
    tokens = sum(count_tokens(x["content"]) for t in turns for x in t)
    verdicts = Counter(conv.column("filter_passed").to_pylist())
    filtered = {
        "scenarios": len(set(conv.column("scenario_id").to_pylist())),
        "conversations": n,
        "avg_utterances": round(utterances / n, 2) if n else None,
        "avg_tokens": round(tokens / n, 2) if n else None,
    }
    return {
        "raw": None,
        "filtered": filtered,
        "filter_passed": {"true": verdicts[True], "false": verdicts[False], "null": verdicts[None]},
        "note": "raw (before the generation filters) is not kept in a build; filtered = conversations "
        "in the build (filter_passed true, or null where no filter ran, e.g. the release)",
    }


def _quality(path: Path) -> tuple[dict, dict]:
    metrics = {m: name for m, (name, _) in RATING_METRICS.items()}
    if not has_table(path, "quality_scores"):  # nothing rated: empty table, zero counts
        zero = {
            m: {"name": n, "counts": {str(s): 0 for s in range(t + 1)}}
            for m, (n, t) in RATING_METRICS.items()
        }
        return {"metrics": metrics, "rows": []}, zero
    tasks = class_names(path, "quality_scores", "task")
    table = read_table(path, "quality_scores").to_pydict()
    rows = []
    for task_id, task in enumerate(tasks):
        idx = [i for i, t in enumerate(table["task"]) if t == task_id]
        if not idx:
            continue
        row: dict = {"task": task, "conversations": len(idx)}
        for metric in RATING_METRICS:
            values = [table[metric][i] for i in idx if table[metric][i] is not None]
            row[metric] = round(sum(values) / len(values), 6) if values else None
        rows.append(row)
    distribution = {}
    for metric, (name, top) in RATING_METRICS.items():
        counts = Counter(v for v in table[metric] if v is not None)
        by_task: dict[str, dict[str, int]] = {}
        for task_id, task in enumerate(tasks):
            of_task = Counter(v for t, v in zip(table["task"], table[metric], strict=True) if t == task_id)
            of_task.pop(None, None)
            if of_task:
                by_task[task] = {str(s): of_task.get(s, 0) for s in range(top + 1)}
        distribution[metric] = {
            "name": name,
            "counts": {str(s): counts.get(s, 0) for s in range(top + 1)},
            "by_task": by_task,  # rated conversations only; a task nobody rated on it is left out
        }
    return {"metrics": {m: name for m, (name, _) in RATING_METRICS.items()}, "rows": rows}, distribution


def _table3(path: Path) -> dict:
    if not has_table(path, "intent_utterances"):
        return {"splits": [], "labels": {}}
    labels = class_names(path, "intent_utterances", "label")
    splits, total = [], Counter()
    for split in intent_splits(path):
        t = read_table(path, "intent_utterances", split, columns=["text", "label"])
        texts, ids = t.column("text").to_pylist(), t.column("label").to_pylist()
        counts = Counter(ids)
        total.update(counts)
        splits.append(
            {
                "split": split,
                "samples": len(ids),
                "avg_tokens": round(sum(map(count_tokens, texts)) / len(ids), 2) if ids else None,
                "labels": {name: counts.get(i, 0) for i, name in enumerate(labels)},
            }
        )
    return {"splits": splits, "labels": {name: total.get(i, 0) for i, name in enumerate(labels)}}


def _hallucinations(path: Path) -> dict:
    if not has_table(path, "hallucinations"):
        return {"count": 0, "annotated_replies": 0}
    flags = read_table(path, "hallucinations", columns=["hallucination"]).column("hallucination").to_pylist()
    return {"count": sum(1 for f in flags if f), "annotated_replies": len(flags)}


def _phrases(path: Path, top: int) -> dict:
    """The top preference phrases per task, by the rules of :mod:`recllmsim_hf.analysis.phrases`."""
    from recllmsim_hf.analysis.phrases import top_phrases

    tasks = class_names(path, "conversations", "task")
    conv = read_table(path, "conversations", columns=["task", "preference_summary", "turns"])
    rows = zip(
        conv.column("task").to_pylist(),
        conv.column("preference_summary").to_pylist(),
        conv.column("turns").to_pylist(),
        strict=True,
    )
    found = top_phrases(((tasks[t], summ, [x["content"] for x in turns]) for t, summ, turns in rows), top)
    return {task: found[task] for task in tasks if task in found}


def compute_stats(path: str | os.PathLike, top_phrases: int = DEFAULT_TOP_PHRASES) -> dict:
    """All numbers of `recllmsim stats` for the built folder ``path`` (see the module docstring)."""
    path = check_built(path)
    table2, distribution = _quality(path)
    return {
        "dataset": str(path),
        "tokenizer": TOKENIZER,
        "table1": _table1(path),
        "table2": table2,
        "table3": _table3(path),
        "hallucinations": _hallucinations(path),
        "score_distribution": distribution,
        "preference_phrases": _phrases(path, top_phrases),
    }


# -- text rendering ---------------------------------------------------------------------------

_SHORT = {
    "preference_alignment": "Pref.Align",
    "additional_preferences": "Add'l.Pref",
    "role_playing_completeness": "RP.Compl",
    "memorization": "Memo",
    "detail_level": "Detail",
    "practical_usefulness": "Pract.Usef",
    "diversity": "Div",
}


def _num(value, digits: int = 2) -> str | None:
    """One format for every number of a table: counts ``1,856``, means with fixed ``digits``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _grid(header: list[str], rows: list[list]) -> list[str]:
    cells = [header] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        cols = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cols))

    return [fmt(cells[0]), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells[1:]]


def render_text(stats: dict) -> str:
    """The tables of :func:`compute_stats` as aligned plain text."""
    t1 = stats["table1"]
    out = [f"Table 1. Statistics (tokens: {stats['tokenizer']})"]
    rows = []
    for name in ("raw", "filtered"):
        r = t1[name] or {}
        rows.append(
            [
                name,
                *map(
                    _num,
                    (
                        r.get("scenarios"),
                        r.get("conversations"),
                        r.get("avg_utterances"),
                        r.get("avg_tokens"),
                    ),
                ),
            ]
        )
    out += _grid(["", "#scenarios", "#conv.", "avg #utt.", "avg #tokens"], rows)
    out += [f"  ({t1['note']})", "", "Table 2. Mean quality score per task"]
    metrics = list(stats["table2"]["metrics"])
    rows = [
        [r["task"], _num(r["conversations"])] + [_num(r[m], 3) for m in metrics]
        for r in stats["table2"]["rows"]
    ]
    out += _grid(["task", "#conv."] + [_SHORT.get(m, m) for m in metrics], rows)
    out += ["", "Table 3. Intent splits"]
    t3 = stats["table3"]
    names = list(t3["labels"])
    rows = [
        [s["split"], _num(s["samples"]), _num(s["avg_tokens"])] + [_num(s["labels"][n]) for n in names]
        for s in t3["splits"]
    ]
    total = sum(s["samples"] for s in t3["splits"])
    rows.append(["total", _num(total), None] + [_num(t3["labels"][n]) for n in names])
    out += _grid(["split", "#samples", "avg #tokens"] + names, rows)
    h = stats["hallucinations"]
    out += ["", f"Hallucinations: {h['count']:,} of {h['annotated_replies']:,} annotated assistant replies"]
    return "\n".join(out) + "\n"


def run_stats(
    path: str | os.PathLike,
    plots: str | os.PathLike | None = None,
    top_phrases: int = DEFAULT_TOP_PHRASES,
    width: str = "page",
) -> dict:
    """:func:`compute_stats`, plus the figures written into ``plots`` (listed under ``"figures"``),
    ``width`` ``"column"`` (3.3 in) or ``"page"`` (6.9 in) wide."""
    if plots is not None:  # refuse a bad width, --top or a folder the figures may not go to before the work
        from recllmsim_hf.analysis.figure_style import check_figure_top, check_width
        from recllmsim_hf.safety import claim_output

        check_width(width)
        check_figure_top(top_phrases)
        claim_output(plots, "figures", flag="--plots")
    result = compute_stats(path, top_phrases)
    if plots is not None:
        from recllmsim_hf.analysis.figures import write_figures

        result["figures"] = [str(p) for p in write_figures(result, plots, width=width)]
    return result
