"""What the dataset card says about the human studies and profile identification, computed from the build.

:func:`compute_human_stats` reads the parquet shards of the four human-study configs of a build
folder (None when the build has none of them); :data:`CONFIG_DOCS` is the per-config text of the
card (what a row is, its fields, how it is split), kept as data so other card sections (e.g. a
generated "Data fields" section) sit beside it.

Example:
    >>> sizes = {"human_conversations": {"train": 2124}}
    >>> stats = compute_human_stats(Path("recllmsim"), sizes)  # doctest: +SKIP
    >>> [s.conversations for s in stats.studies]  # doctest: +SKIP
    [291, 1833]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from recllmsim_hf.human_schema import (
    HALLUCINATION_JUDGEMENTS_ZH,
    HUMAN_INTENT_LABELS,
    HUMAN_INTENTS_ZH,
    HUMAN_RATINGS,
    HUMAN_TASKS,
    QUESTIONNAIRE,
    STRATEGY_VALUES,
    STUDIES,
)
from recllmsim_hf.schema import TASKS

STUDY_TEXT = {
    "real_human_user": (
        "the first study: real people (mostly students) chatting with an LLM assistant under the "
        "four tasks; user turns are labelled with one or more intents"
    ),
    "human_exp_V2": (
        "a second, larger study of real people; each conversation names its assistant model, and "
        "assistant turns carry a 1-5 satisfaction score (and a reason when low); no intent labels"
    ),
}


def strategy_values_text() -> str:
    """The value sets of the strategy fields, for the card: ``"`information_request` Planning /
    Sequential; `order` Comprehensive / Breadth / Depth (`strategy`), ..."``."""
    by_field: dict[str, dict[str, list[str]]] = {}
    for key, fields in STRATEGY_VALUES.items():
        for field, values in fields.items():
            text = " / ".join(values) if isinstance(values[0], str) else f"{values[0]}-{values[-1]}"
            by_field.setdefault(field, {}).setdefault(text, []).append(f"`{key.lower()}`")
    parts = []
    for field, texts in by_field.items():
        if len(texts) == 1:
            parts.append(f"`{field}` {next(iter(texts))}")
        else:
            parts.append(f"`{field}` " + ", ".join(f"{t} ({', '.join(cols)})" for t, cols in texts.items()))
    return "; ".join(parts)


# Per-config card text: (what a row is, the fields, how it is split). Row counts are computed.
CONFIG_DOCS: dict[str, tuple[str, str, str]] = {
    "human_conversations": (
        "one conversation of a real person with an LLM assistant (Chinese)",
        (
            "`conversation_id` (`<study>-User_<k>-<task>-<n>`), `study`, `user_id` "
            "(`<study>/User_<k>`: the two studies number their users separately and are never "
            "merged), `task` (same ClassLabel as the synthetic configs), `assistant_model` (null "
            "where the file names none), `scenario_zh`, `turns` [{role, content, `intents`, "
            "`hallucination`, `satisfaction`, `reason`}], `ratings` (the questionnaire on the "
            "synthetic scales), `questionnaire` (the answers as given), `strategy*` "
            "(user-behaviour annotations, typed: `final` and the numbered `runs` 1-3; each field takes "
            f"its values from a closed set, the release's own names: {strategy_values_text()}), `profile` "
            "(Chinese and English values), `extra` (JSON), `source_file`"
        ),
        "one `train` split",
    ),
    "human_profiles": (
        "one participant of a study",
        (
            "`study`, `user_id`, `gender`, `age`, `background` (human_exp_V2's field of study; "
            "English names are ours), each profile attribute in English and Chinese (`*_zh`), "
            "`num_conversations`, `num_profile_versions` (files of a person may restate the "
            "profile differently; the row holds the version most of their files state)"
        ),
        "one `train` split",
    ),
    "human_intent_utterances": (
        "one user utterance of real_human_user with its intent labels (multi-label)",
        (
            "`utterance_id`, `conversation_id`, `study`, `user_id`, `task`, `turn_index`, `text` "
            "(Chinese), `context` (the nearest assistant turn before it, empty if none), "
            "`labels` (list of ClassLabel)"
        ),
        (
            "8:1:1 by {split_by}, the unit and seeded rule of `intent_utterances` in this build, so "
            "a classifier trained on synthetic intents is tested on human ones the same way (by "
            "utterance is the paper's setting; `--split-by conversation` keeps each conversation "
            "in one split)"
        ),
    ),
    "profile_identification": (
        ("one conversation, synthetic (LLM_agent_user) or human, with the user's profile as label sets"),
        (
            "`conversation_id`, `source` (synthetic / human), `study` (null for synthetic rows), "
            "`user_id`, `task`, `text` (the user's turns, one a line, Chinese for both sources), "
            "`text_en` (synthetic rows: English), and for each attribute (personality, "
            "occupation, daily_interests, travel_habits, dining_preferences, spending_habits, "
            "other_aspects) a list of ClassLabel over one English vocabulary "
            "(user_profiling/desc_translated.json); synthetic labels from `profile_mapped`, human"
            " from `profile`"
        ),
        (
            "8:1:1 by person (a person's conversations share one label set), cut separately "
            "within synthetic, real_human_user and human_exp_V2: the human test split never "
            "depends on which training data a setup uses, so synthetic->human, human->human and "
            "synthetic+human->human results compare"
        ),
    ),
}


@dataclass(frozen=True)
class StudyRow:
    study: str
    about: str
    conversations: int
    people: int
    avg_turns: str
    tasks: tuple[int, ...]  # conversations per task of HumanStats.tasks
    models: tuple[str, ...]  # "gpt-4-turbo-preview (526)"; empty when no file names one
    ratings: tuple[str, ...]  # mean per metric of HumanStats.metrics


@dataclass(frozen=True)
class ConfigDoc:
    name: str
    rows: str
    row: str
    fields: str
    splits: str


@dataclass(frozen=True)
class HumanStats:
    studies: tuple[StudyRow, ...]
    tasks: tuple[str, ...]
    metrics: tuple[str, ...]
    configs: tuple[ConfigDoc, ...]
    intents: tuple[tuple[str, str, tuple[int, ...]], ...]  # (English, Chinese, count per split)
    intent_splits: tuple[str, ...]
    questionnaire: tuple[tuple[str, str, str, str], ...]  # (summary, rating, query, "很有用 = 2, ...")
    hallucination: str  # "否 = no, 是 = yes, 无法判断 = cannot tell"
    task_names: str  # "旅行规划 = travel planning, ..."
    identification: tuple[tuple[str, tuple[int, ...]], ...]  # (group, rows per split)


def _read(folder: Path, table: str, columns: list[str]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for path in sorted((folder / table).glob("*.parquet")):
        t = pq.read_table(path, columns=columns)
        parts.append(t.append_column("_split", pa.array([path.name.split("-", 1)[0]] * t.num_rows)))
    return pa.concat_tables(parts).to_pylist() if parts else []


def compute_human_stats(
    folder: Path, sizes: dict[str, dict[str, int]], split_by: str = "utterance"
) -> HumanStats | None:
    """Statistics of the human-study configs of a build (None when it has none); ``split_by`` is the
    build's split unit, named in the text of ``human_intent_utterances``."""
    shipped = [name for name in CONFIG_DOCS if sum(sizes.get(name, {}).values())]
    if not shipped:
        return None
    convs = _read(
        folder, "human_conversations", ["study", "user_id", "task", "assistant_model", "num_turns", "ratings"]
    )
    studies = []
    for sid, study in enumerate(STUDIES):
        rows = [r for r in convs if r["study"] == sid]
        if not rows:
            continue
        per_task = Counter(r["task"] for r in rows)
        models = Counter(r["assistant_model"] for r in rows if r["assistant_model"])
        means = []
        for metric in HUMAN_RATINGS:
            vals = [r["ratings"][metric] for r in rows if r["ratings"] and r["ratings"][metric] is not None]
            means.append(f"{sum(vals) / len(vals):.2f}" if vals else "–")
        studies.append(
            StudyRow(
                study,
                STUDY_TEXT[study],
                len(rows),
                len({r["user_id"] for r in rows}),
                f"{sum(r['num_turns'] for r in rows) / len(rows):.1f}",
                tuple(per_task.get(i, 0) for i in range(len(TASKS))),
                tuple(f"{m} ({n:,})" for m, n in sorted(models.items(), key=lambda kv: (-kv[1], kv[0]))),
                tuple(means),
            )
        )
    splits = ("train", "validation", "test")
    utterances = _read(folder, "human_intent_utterances", ["labels"])
    intents = []
    zh = {en: z for z, en in HUMAN_INTENTS_ZH.items()}
    for i, label in enumerate(HUMAN_INTENT_LABELS):
        counts = Counter(r["_split"] for r in utterances if i in r["labels"])
        intents.append((label, zh.get(label, ""), tuple(counts.get(s, 0) for s in splits)))
    ident = _read(folder, "profile_identification", ["source", "study"])
    groups = Counter(("synthetic" if r["source"] == 0 else STUDIES[r["study"]], r["_split"]) for r in ident)
    identification = tuple(
        (g, tuple(groups.get((g, s), 0) for s in splits))
        for g in ("synthetic", *STUDIES)
        if any(groups.get((g, s)) for s in splits)
    )
    configs = tuple(
        ConfigDoc(
            name,
            " / ".join(f"{n:,}" for n in sizes[name].values()),
            *(text.replace("{split_by}", split_by) for text in CONFIG_DOCS[name]),
        )
        for name in shipped
    )
    return HumanStats(
        studies=tuple(studies),
        tasks=TASKS,
        metrics=tuple(
            f"{m} (0-{max(q.scores.values())})" for m, q in zip(HUMAN_RATINGS, QUESTIONNAIRE, strict=True)
        ),
        configs=configs,
        intents=tuple(intents),
        intent_splits=splits,
        questionnaire=tuple(
            (q.summary, q.rating, q.query, ", ".join(f"{o} = {s}" for o, s in q.scores.items()))
            for q in QUESTIONNAIRE
        ),
        hallucination=", ".join(f"{zh_} = {en}" for zh_, en in HALLUCINATION_JUDGEMENTS_ZH.items()),
        task_names=", ".join(f"{zh_} = {en}" for zh_, en in HUMAN_TASKS.items()),
        identification=identification,
    )
