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

import json
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
    simulator_models: tuple[str, ...]  # "gpt-4o-mini (12)"
    assistant_models: tuple[str, ...]
    prompt_versions: tuple[str, ...]
    dates: str  # "2026-05-01" or "2026-05-01 to 2026-05-03", "" when not recorded
    tokens: str  # of all generated conversations: "1,234 prompt + 567 completion", "" when not recorded
    cost_usd: str  # of all generated conversations, "" when not recorded
    annotated_by_llm: int  # conversations with LLM annotation provenance
    annotator_models: tuple[str, ...]
    annotation_prompt_versions: tuple[str, ...]
    settings: tuple[tuple[str, str], ...]  # manifest.json "generation", flattened, secrets removed


def _read(folder: Path, table: str, columns: list[str]) -> dict[str, list[dict]]:
    import pyarrow.parquet as pq

    out: dict[str, list[dict]] = {}
    for path in sorted((folder / table).glob("*.parquet")):
        split = path.name.split("-", 1)[0]
        out.setdefault(split, []).extend(pq.read_table(path, columns=columns).to_pylist())
    return out


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def compute_stats(
    folder: str | os.PathLike, task_names: list[str], label_names: list[str], splits: tuple[str, ...]
) -> CardStats:
    """Statistics of a build folder's parquet shards (conversations per task, intents per split, ...)."""
    folder = Path(folder)
    convs = [
        r
        for rows in _read(
            folder, "conversations", ["task", "num_turns", "scenario_id", "profile_id"]
        ).values()
        for r in rows
    ]
    tasks = []
    for i, name in enumerate(task_names):
        mine = [c for c in convs if c["task"] == i]
        if not mine:
            continue
        tasks.append(
            TaskRow(
                task=name,
                conversations=len(mine),
                share=_pct(len(mine), len(convs)),
                avg_turns=_fmt(sum(c["num_turns"] for c in mine) / len(mine), 1),
                scenarios=len({c["scenario_id"] for c in mine}),
                profiles=len({c["profile_id"] for c in mine}),
            )
        )
    intent = _read(folder, "intent_utterances", ["label", "text_zh"])
    by_split = {s: Counter(r["label"] for r in intent.get(s, [])) for s in splits}
    label_rows = tuple(
        LabelRow(name, tuple(by_split[s][i] for s in splits), sum(by_split[s][i] for s in splits))
        for i, name in enumerate(label_names)
    )
    halls = [
        r for rows in _read(folder, "hallucinations", ["hallucination", "text_zh"]).values() for r in rows
    ]
    flagged = sum(1 for r in halls if r["hallucination"])
    quality = [
        r for rows in _read(folder, "quality_scores", ["task", *RATING_METRICS]).values() for r in rows
    ]
    rating_rows = []
    for i, name in [*enumerate(task_names), (None, "all tasks")]:
        mine = [q for q in quality if i is None or q["task"] == i]
        if not mine:
            continue
        means = []
        for metric in RATING_METRICS:
            values = [q[metric] for q in mine if q[metric] is not None]
            means.append(_fmt(sum(values) / len(values)) if values else "–")
        rating_rows.append(RatingRow(name, len(mine), tuple(means)))
    profiles = [r for rows in _read(folder, "profiles", ["duplicate_of", "text_zh"]).values() for r in rows]
    has_zh = any(r["text_zh"] for r in [*halls, *profiles, *(r for rows in intent.values() for r in rows)])
    return CardStats(
        conversations=len(convs),
        profiles=len(profiles),
        duplicate_profiles=sum(1 for p in profiles if p["duplicate_of"] is not None),
        scenarios=len({c["scenario_id"] for c in convs}),
        avg_turns=_fmt(sum(c["num_turns"] for c in convs) / len(convs), 1) if convs else "–",
        tasks=tuple(tasks),
        intents=IntentStats(
            splits=tuple(splits),
            split_sizes=tuple(sum(by_split[s].values()) for s in splits),
            rows=label_rows,
            total=sum(row.total for row in label_rows),
        ),
        hallucinations=HallucinationStats(len(halls), flagged, _pct(flagged, len(halls))),
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
            out.append((name, scrub(", ".join(str(v) for v in value))))
        elif value is not None:
            out.append((name, scrub(str(value))))
    return out


def _counted(counter: Counter) -> tuple[str, ...]:
    return tuple(
        f"{scrub(str(name))} ({n:,})"
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


def read_provenance(corpus: str | os.PathLike) -> Provenance:
    """How the corpus at ``corpus`` was made, from its manifest and its conversations' metadata."""
    from recllmsim_hf.configs import included
    from recllmsim_hf.corpus import CONVERSATIONS, MANIFEST
    from recllmsim_hf.schema import Manifest

    corpus = Path(corpus)
    manifest = Manifest()
    if (corpus / MANIFEST).is_file():
        manifest = Manifest.model_validate_json((corpus / MANIFEST).read_bytes())
    sims, assists, prompts, ann_models, ann_versions = Counter(), Counter(), Counter(), Counter(), Counter()
    dates: list[str] = []
    prompt_tokens = completion_tokens = generated = passed = annotated = 0
    cost, has_cost = 0.0, False
    with open(corpus / CONVERSATIONS, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            conv = json.loads(line)
            generated += 1
            gen = conv.get("generation") or {}
            # what was spent counts every generated conversation, kept or filtered out
            usage = gen.get("usage") or {}
            prompt_tokens += usage.get("prompt_tokens") or 0
            completion_tokens += usage.get("completion_tokens") or 0
            if gen.get("cost_usd") is not None:
                cost, has_cost = cost + gen["cost_usd"], True
            if gen.get("started_at"):
                dates.append(str(gen["started_at"])[:10])
            if not included(conv):
                continue
            passed += 1
            if gen:
                sims[gen.get("simulator_model")] += 1
                assists[gen.get("assistant_model")] += 1
                prompts[gen.get("prompt_version")] += 1
            annotation = (conv.get("extra") or {}).get("annotation")
            if annotation:
                annotated += 1
                _annotation_facts(annotation, ann_models, ann_versions)
    settings = tuple(_flatten(manifest.generation))
    if sims or settings:
        kind = "generated"
    elif manifest.created_by == "recllmsim release importer":
        kind = "release"
    else:
        kind = "unknown"
    dates.sort()
    return Provenance(
        kind=kind,
        corpus_name=scrub(manifest.name),
        generated=generated,
        passed_filters=passed,
        simulator_models=_counted(sims),
        assistant_models=_counted(assists),
        prompt_versions=_counted(prompts),
        dates="" if not dates else dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}",
        tokens=f"{prompt_tokens:,} prompt + {completion_tokens:,} completion" if sims else "",
        cost_usd=f"{cost:.2f}" if has_cost else "",
        annotated_by_llm=annotated,
        annotator_models=_counted(ann_models),
        annotation_prompt_versions=_counted(ann_versions),
        settings=settings,
    )
