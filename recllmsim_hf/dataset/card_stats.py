"""What the dataset card says about the data: statistics and provenance, computed, never typed in.

:func:`compute_stats` reads the parquet shards of a build folder (so the card describes exactly
what ``load_dataset`` returns); :func:`read_provenance` reads the corpus folder the build came
from (``manifest.json`` and each conversation's ``generation`` / ``extra["annotation"]``) to say
how a generated corpus was made. Both return frozen dataclasses, the typed context of the
template in ``dataset_card/``.

Example:
    >>> stats = compute_stats("recllmsim", list(TASKS), list(INTENT_LABELS), ("train",))  # doctest: +SKIP
    >>> stats.conversations, stats.hallucinations.flagged  # doctest: +SKIP
    (1856, 39)
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from recllmsim_hf.schema import RATING_METRICS

# Keys and values that must never reach a card (a manifest written by hand may hold anything).
_SECRET_KEY = re.compile(r"api[_-]?key|token|secret|password|passwd|authori[sz]ation|credential|cookie", re.I)
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_-]{6,}|hf_[A-Za-z0-9]{6,}|Bearer\s+\S+)")
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


@dataclass(frozen=True)
class TaskRow:
    task: str
    conversations: int
    share: str
    avg_turns: str
    scenarios: int
    profiles: int


@dataclass(frozen=True)
class LabelRow:
    label: str
    counts: tuple[int, ...]  # one per split of IntentStats.splits
    total: int


@dataclass(frozen=True)
class IntentStats:
    splits: tuple[str, ...]
    split_sizes: tuple[int, ...]
    rows: tuple[LabelRow, ...]
    total: int


@dataclass(frozen=True)
class HallucinationStats:
    judged: int
    flagged: int
    share: str


@dataclass(frozen=True)
class RatingRow:
    task: str
    rated: int
    means: tuple[str, ...]  # one per metric of CardStats.metrics, "–" when nobody rated it


@dataclass(frozen=True)
class CardStats:
    conversations: int
    profiles: int
    duplicate_profiles: int
    scenarios: int
    avg_turns: str
    tasks: tuple[TaskRow, ...]
    intents: IntentStats
    hallucinations: HallucinationStats
    metrics: tuple[str, ...]  # "Preference Alignment (0-2)", ...
    ratings: tuple[RatingRow, ...]
    has_chinese: bool


@dataclass(frozen=True)
class Provenance:
    """How the corpus was made. ``kind``: "release" (the paper's data), "generated" or "unknown"."""

    kind: str
    corpus_name: str
    generated: int  # conversations in the corpus, before the generation filters
    passed_filters: int  # those in the dataset
    simulator_models: tuple[str, ...]  # "gpt-4o-mini (12 conversations)"
    assistant_models: tuple[str, ...]
    prompt_versions: tuple[str, ...]
    dates: str  # "2026-05-01" or "2026-05-01 to 2026-05-03", "" when not recorded
    tokens: str  # of all generated conversations: "1,234 prompt + 567 completion tokens", "" if not recorded
    cost_usd: str  # of all generated conversations, "" when not recorded
    annotated_by_llm: int  # conversations with LLM annotation provenance
    annotator_models: tuple[str, ...]  # "gpt-4o-mini (4 conversations)": each conversation once per model
    annotation_prompt_versions: tuple[str, ...]
    settings: tuple[tuple[str, str], ...]  # manifest.json "generation", flattened, secrets removed


def _batches(folder: Path, table: str, columns: list[str]):
    """(split, record batch) over a table's shards, a bounded batch at a time: memory does
    not grow with the corpus."""
    import pyarrow.parquet as pq

    for path in sorted((folder / table).glob("*.parquet")):
        split = path.name.split("-", 1)[0]
        yield from ((split, b) for b in pq.ParquetFile(path).iter_batches(batch_size=65536, columns=columns))


def _ints(column, missing: int = -1):
    import pyarrow.compute as pc

    return pc.fill_null(column, missing).to_numpy(zero_copy_only=False)


def _any_text(column) -> bool:
    import pyarrow.compute as pc

    return bool(pc.any(pc.greater(pc.utf8_length(column), 0)).as_py())


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def compute_stats(
    folder: str | os.PathLike, task_names: list[str], label_names: list[str], splits: tuple[str, ...]
) -> CardStats:
    """Statistics of a build folder's parquet shards (conversations per task, intents per split, ...)."""
    import numpy as np
    import pyarrow.compute as pc

    folder = Path(folder)
    n_tasks = len(task_names)
    conv_count, turn_sum = np.zeros(n_tasks, np.int64), np.zeros(n_tasks, np.int64)
    scenario_sets: list[set] = [set() for _ in task_names]
    profile_sets: list[set] = [set() for _ in task_names]
    for _, batch in _batches(folder, "conversations", ["task", "num_turns", "scenario_id", "profile_id"]):
        task, turns = _ints(batch.column("task")), _ints(batch.column("num_turns"), 0)
        conv_count += np.bincount(task, minlength=n_tasks)
        turn_sum += np.bincount(task, weights=turns, minlength=n_tasks).astype(np.int64)
        for t, sid, pid in zip(
            task, batch.column("scenario_id").to_pylist(), batch.column("profile_id").to_pylist(), strict=True
        ):
            scenario_sets[t].add(sid)
            profile_sets[t].add(pid)
    n_convs = int(conv_count.sum())
    tasks = [
        TaskRow(
            task=name,
            conversations=int(conv_count[i]),
            share=_pct(int(conv_count[i]), n_convs),
            avg_turns=_fmt(turn_sum[i] / conv_count[i], 1),
            scenarios=len(scenario_sets[i]),
            profiles=len(profile_sets[i]),
        )
        for i, name in enumerate(task_names)
        if conv_count[i]
    ]
    has_zh = False
    by_split = {s: np.zeros(len(label_names), np.int64) for s in splits}
    for split, batch in _batches(folder, "intent_utterances", ["label", "text_zh"]):
        by_split[split] += np.bincount(_ints(batch.column("label")), minlength=len(label_names))
        has_zh = has_zh or _any_text(batch.column("text_zh"))
    label_rows = tuple(
        LabelRow(name, tuple(int(by_split[s][i]) for s in splits), int(sum(by_split[s][i] for s in splits)))
        for i, name in enumerate(label_names)
    )
    judged = flagged = 0
    for _, batch in _batches(folder, "hallucinations", ["hallucination", "text_zh"]):
        judged += batch.num_rows
        flagged += int(pc.sum(batch.column("hallucination")).as_py() or 0)
        has_zh = has_zh or _any_text(batch.column("text_zh"))
    metrics = list(RATING_METRICS)
    rated = np.zeros(n_tasks, np.int64)
    sums = np.zeros((n_tasks, len(metrics)), np.int64)
    counts = np.zeros((n_tasks, len(metrics)), np.int64)
    for _, batch in _batches(folder, "quality_scores", ["task", *metrics]):
        task = _ints(batch.column("task"))
        rated += np.bincount(task, minlength=n_tasks)
        for j, metric in enumerate(metrics):
            values = _ints(batch.column(metric))
            known = values >= 0
            sums[:, j] += np.bincount(task[known], weights=values[known], minlength=n_tasks).astype(np.int64)
            counts[:, j] += np.bincount(task[known], minlength=n_tasks)
    rating_rows = []
    for i, name in [*enumerate(task_names), (None, "all tasks")]:
        n = int(rated.sum() if i is None else rated[i])
        if not n:
            continue
        s_row = sums.sum(axis=0) if i is None else sums[i]
        c_row = counts.sum(axis=0) if i is None else counts[i]
        means = tuple(_fmt(int(s_row[j]) / int(c_row[j])) if c_row[j] else "–" for j in range(len(metrics)))
        rating_rows.append(RatingRow(name, n, means))
    n_profiles = duplicates = 0
    for _, batch in _batches(folder, "profiles", ["duplicate_of", "text_zh"]):
        n_profiles += batch.num_rows
        duplicates += batch.num_rows - batch.column("duplicate_of").null_count
        has_zh = has_zh or _any_text(batch.column("text_zh"))
    scenarios = set().union(*scenario_sets)
    return CardStats(
        conversations=n_convs,
        profiles=n_profiles,
        duplicate_profiles=duplicates,
        scenarios=len(scenarios),
        avg_turns=_fmt(int(turn_sum.sum()) / n_convs, 1) if n_convs else "–",
        tasks=tuple(tasks),
        intents=IntentStats(
            splits=tuple(splits),
            split_sizes=tuple(int(by_split[s].sum()) for s in splits),
            rows=label_rows,
            total=sum(row.total for row in label_rows),
        ),
        hallucinations=HallucinationStats(judged, flagged, _pct(flagged, judged)),
        metrics=tuple(f"{release} (0-{top})" for release, top in RATING_METRICS.values()),
        ratings=tuple(rating_rows),
        has_chinese=has_zh,
    )


def scrub(text: str) -> str:
    """Remove anything that looks like a credential from a string bound for the card."""
    return _SECRET_VALUE.sub("<redacted>", _URL_USERINFO.sub("", text))


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for key in sorted(data):
        name = f"{prefix}{key}"
        if _SECRET_KEY.search(str(key)):
            continue
        value = data[key]
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            if value:  # an empty list says nothing: no line for it
                out.append((name, scrub(", ".join(str(v) for v in value))))
        elif value is not None and str(value).strip():
            out.append((name, scrub(str(value))))
    return out


def _counted(counter: Counter, unit: str = "conversation") -> tuple[str, ...]:
    """``"gpt-4o-mini (12 conversations)"``, most frequent first: the count says what it counts."""
    return tuple(
        f"{scrub(str(name))} ({n:,} {unit}{'' if n == 1 else 's'})"
        for name, n in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    )


def _annotation_facts(annotation, models: Counter, versions: Counter) -> None:
    """Collect annotator models and prompt versions from ``extra["annotation"]`` (any nesting)."""
    if isinstance(annotation, dict):
        for key, value in annotation.items():
            if isinstance(value, str) and key in ("model", "annotator_model"):
                models[value] += 1
            elif isinstance(value, str) and key == "prompt_version":
                versions[value] += 1
            elif isinstance(value, dict | list):
                _annotation_facts(value, models, versions)
    elif isinstance(annotation, list):
        for item in annotation:
            _annotation_facts(item, models, versions)


class ProvenanceTally:
    """Counts what :class:`Provenance` reports, one conversation line at a time, so a build can
    tally while it writes (one pass over the corpus instead of two)."""

    def __init__(self) -> None:
        self.sims, self.assists, self.prompts = Counter(), Counter(), Counter()
        self.ann_models, self.ann_versions = Counter(), Counter()
        self.first_date = self.last_date = ""
        self.prompt_tokens = self.completion_tokens = self.generated = self.passed = self.annotated = 0
        self.cost, self.has_cost = 0.0, False

    def add(self, conv: dict, included: bool) -> None:
        """Count one line of ``conversations.jsonl``; ``included``: it passed the generation filters."""
        self.generated += 1
        gen = conv.get("generation") or {}
        # what was spent counts every generated conversation, kept or filtered out
        usage = gen.get("usage") or {}
        self.prompt_tokens += usage.get("prompt_tokens") or 0
        self.completion_tokens += usage.get("completion_tokens") or 0
        if gen.get("cost_usd") is not None:
            self.cost, self.has_cost = self.cost + gen["cost_usd"], True
        if gen.get("started_at"):
            date = str(gen["started_at"])[:10]
            self.first_date = min(self.first_date, date) if self.first_date else date
            self.last_date = max(self.last_date, date)
        if not included:
            return
        self.passed += 1
        if gen:
            self.sims[gen.get("simulator_model")] += 1
            self.assists[gen.get("assistant_model")] += 1
            self.prompts[gen.get("prompt_version")] += 1
        annotation = (conv.get("extra") or {}).get("annotation")
        if annotation:
            self.annotated += 1
            models, versions = Counter(), Counter()
            _annotation_facts(annotation, models, versions)
            self.ann_models.update(set(models))  # a conversation counts once per model, not per annotator
            self.ann_versions.update(set(versions))

    def result(self, corpus: str | os.PathLike) -> Provenance:
        """The provenance of ``corpus`` (its manifest) with the conversations counted so far."""
        from recllmsim_hf.corpus import MANIFEST
        from recllmsim_hf.schema import RELEASE_IMPORTER, Manifest

        manifest = Manifest()
        if (Path(corpus) / MANIFEST).is_file():
            manifest = Manifest.model_validate_json((Path(corpus) / MANIFEST).read_bytes())
        settings = tuple(_flatten(manifest.generation))
        if self.sims or settings:
            kind = "generated"
        elif manifest.created_by == RELEASE_IMPORTER:
            kind = "release"
        else:
            kind = "unknown"
        first, last = self.first_date, self.last_date
        return Provenance(
            kind=kind,
            corpus_name=scrub(manifest.name),
            generated=self.generated,
            passed_filters=self.passed,
            simulator_models=_counted(self.sims),
            assistant_models=_counted(self.assists),
            prompt_versions=_counted(self.prompts),
            dates="" if not first else first if first == last else f"{first} to {last}",
            tokens=f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens"
            if self.sims
            else "",
            cost_usd=f"{self.cost:.2f}" if self.has_cost else "",
            annotated_by_llm=self.annotated,
            annotator_models=_counted(self.ann_models),
            annotation_prompt_versions=_counted(self.ann_versions),
            settings=settings,
        )


def read_provenance(corpus: str | os.PathLike) -> Provenance:
    """How the corpus at ``corpus`` was made, from its manifest and its conversations' metadata."""
    from recllmsim_hf.dataset.configs import conversation_lines, included

    tally = ProvenanceTally()
    for conv in conversation_lines(Path(corpus)):
        tally.add(conv, included(conv))
    return tally.result(corpus)
