"""`recllmsim stats`, synthetic vs human: the LLM users of ``LLM_agent_user`` beside the real
people of the release's two studies, from a built folder's parquet shards.

Three groups: ``LLM_agent_user`` (the ``conversations`` and ``profiles`` configs),
``real_human_user`` and ``human_exp_V2`` (``human_conversations``, by ``study``). Per group:

- conversations; people (synthetic: distinct profile texts, as ``profile_identification``
  counts persons; the release has 100 profile ids with 85 texts; human: distinct ``user_id``);
- turns per conversation (all turns, and user turns);
- length in characters (whitespace not counted) of a user utterance and of an assistant
  reply, in Chinese for every group: the synthetic turns' ``content_zh`` (the release's
  translation), the human turns' ``content`` (written in Chinese);
- intents: the share of labelled user utterances carrying each label (synthetic: the five
  intents, one per utterance; real_human_user: its four, several per utterance possible;
  human_exp_V2 has none);
- ratings per task on the four questionnaire metrics shared with the synthetic quality
  scores (memorization 0-1, detail level, practical usefulness, diversity 0-2): means;
- for ``human_exp_V2``, the same per assistant model.

Example:
    >>> compare_studies("recllmsim")["groups"]["human_exp_V2"]["conversations"]  # doctest: +SKIP
    1833
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from recllmsim_hf.analysis.stats import _grid, class_names, read_table, render_text, run_stats, shard_paths

SYNTHETIC = "LLM_agent_user"
SHARED_METRICS = ("memorization", "detail_level", "practical_usefulness", "diversity")


def _chars(text: str | None) -> int:
    return sum(1 for c in text or "" if not c.isspace())


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


class _Group:
    """Running sums for one group (or one assistant model)."""

    def __init__(self) -> None:
        self.conversations = 0
        self.people: set = set()
        self.turns: list[int] = []
        self.user_turns: list[int] = []
        self.user_chars: list[int] = []
        self.assistant_chars: list[int] = []
        self.intents: Counter = Counter()
        self.labelled = 0
        self.ratings: dict[str, dict[str, list]] = {}  # task -> metric -> values

    def add(self, person, task: str, turns: list[tuple[str, str | None]], ratings: dict | None) -> None:
        self.conversations += 1
        self.people.add(person)
        self.turns.append(len(turns))
        self.user_turns.append(sum(1 for role, _ in turns if role == "user"))
        for role, text in turns:
            (self.user_chars if role == "user" else self.assistant_chars).append(_chars(text))
        per_task = self.ratings.setdefault(task, {m: [] for m in SHARED_METRICS})
        for m in SHARED_METRICS:
            per_task[m].append((ratings or {}).get(m))

    def summary(
        self, task_order: list[str], intent_names: list[str] | None, people: int | None = None
    ) -> dict:
        tasks = {}
        for task in [t for t in task_order if t in self.ratings]:
            metrics = self.ratings[task]
            tasks[task] = {"conversations": len(metrics[SHARED_METRICS[0]])} | {
                m: _mean(v) for m, v in metrics.items()
            }
        overall = {m: _mean([v for t in self.ratings.values() for v in t[m]]) for m in SHARED_METRICS}
        return {
            "conversations": self.conversations,
            "people": len(self.people) if people is None else people,
            "turns_per_conversation": _mean(self.turns),
            "user_turns_per_conversation": _mean(self.user_turns),
            "user_utterance_chars": _mean(self.user_chars),
            "assistant_reply_chars": _mean(self.assistant_chars),
            "intents": None
            if not intent_names or not self.labelled
            else {
                "labelled_utterances": self.labelled,
                "shares": {n: round(self.intents[i] / self.labelled, 4) for i, n in enumerate(intent_names)},
            },
            "ratings": overall,
            "ratings_per_task": tasks,
        }


def _turn_intent_names(path: Path) -> list[str]:
    """The ClassLabel names of ``human_conversations.turns[].intents[]``."""
    import json

    import pyarrow.parquet as pq

    first = shard_paths(path, "human_conversations")[0]
    features = json.loads(pq.read_schema(first).metadata[b"huggingface"])["info"]["features"]
    return list(features["turns"]["feature"]["intents"]["feature"]["names"])


def has_human(path: str | os.PathLike) -> bool:
    return any(Path(path, "human_conversations").glob("train-*.parquet"))


def compare_studies(path: str | os.PathLike) -> dict | None:
    """The side-by-side numbers (see the module docstring), or None for a build without humans."""
    path = Path(path)
    if not has_human(path):
        return None
    tasks = class_names(path, "conversations", "task")
    synthetic = _Group()
    conv = read_table(path, "conversations", columns=["task", "profile", "turns", "ratings"]).to_pydict()
    for task, profile, turns, ratings in zip(
        conv["task"], conv["profile"], conv["turns"], conv["ratings"], strict=True
    ):
        synthetic.add(profile, tasks[task], [(t["role"], t["content_zh"]) for t in turns], ratings)
        for t in turns:
            if t["role"] == "user" and t["intent"] is not None:
                synthetic.labelled += 1
                synthetic.intents[t["intent"]] += 1
    synthetic_intents = class_names(path, "intent_utterances", "label")
    synthetic.intents = Counter({synthetic_intents.index(k): n for k, n in synthetic.intents.items()})

    studies = class_names(path, "human_conversations", "study")
    human_tasks = class_names(path, "human_conversations", "task")
    human_intents = _turn_intent_names(path)
    groups = {name: _Group() for name in studies}
    models: dict[str, _Group] = {}
    columns = ["study", "user_id", "task", "assistant_model", "turns", "ratings"]
    human = read_table(path, "human_conversations", columns=columns).to_pydict()
    for study, user, task, model, turns, ratings in zip(*(human[c] for c in columns), strict=True):
        pairs = [(t["role"], t["content"]) for t in turns]
        targets = [groups[studies[study]]]
        if model is not None:
            targets.append(models.setdefault(model, _Group()))
        for group in targets:
            group.add(user, human_tasks[task], pairs, ratings)
        for t in turns:
            if t["role"] == "user" and t["intents"]:
                groups[studies[study]].labelled += 1
                groups[studies[study]].intents.update(t["intents"])
    return {
        "groups": {
            SYNTHETIC: synthetic.summary(tasks, synthetic_intents, people=len(set(conv["profile"]))),
            **{name: group.summary(human_tasks, human_intents) for name, group in groups.items()},
        },
        "assistant_models": {
            "study": "human_exp_V2",
            "models": {name: models[name].summary(human_tasks, None) for name in sorted(models)},
        },
        "metrics": list(SHARED_METRICS),
        "note": "lengths are characters without whitespace, of Chinese text (synthetic: content_zh); "
        "people: synthetic = distinct profile texts, human = distinct user_id per study",
    }


def _cell(value) -> str | None:
    """A count as ``1,856``, a mean with the 4 decimals it is kept with (``0.9000``, not ``0.9``;
    fewer would round a rounded number twice)."""
    if value is None:
        return None
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4f}"


def render_comparison(comparison: dict) -> list[str]:
    """The comparison as text lines (tables): counts with thousands separators, means with 4 fixed
    decimals."""
    groups = comparison["groups"]
    names = list(groups)
    rows = [
        [label] + [_cell(groups[g][key]) for g in names]
        for label, key in (
            ("conversations", "conversations"),
            ("people", "people"),
            ("turns / conversation", "turns_per_conversation"),
            ("user turns / conversation", "user_turns_per_conversation"),
            ("chars / user utterance", "user_utterance_chars"),
            ("chars / assistant reply", "assistant_reply_chars"),
        )
    ]
    rows += [
        [f"rating: {m}"] + [_cell(groups[g]["ratings"][m]) for g in names] for m in comparison["metrics"]
    ]
    out = ["", "Synthetic vs human users (Chinese text; lengths in characters)"]
    out += _grid([""] + names, rows)
    out += ["", "Intents: share of labelled user utterances"]
    for g in names:
        intents = groups[g]["intents"]
        if intents:
            shares = ", ".join(f"{n} {s:.3f}" for n, s in intents["shares"].items())
            out.append(f"  {g} ({intents['labelled_utterances']:,} utterances): {shares}")
        else:
            out.append(f"  {g}: not annotated")
    out += ["", "Ratings per task (means)"]
    rows = []
    for g in names:
        for task, r in groups[g]["ratings_per_task"].items():
            rows.append([g, task, _cell(r["conversations"])] + [_cell(r[m]) for m in comparison["metrics"]])
    out += _grid(["group", "task", "#conv."] + comparison["metrics"], rows)
    models = comparison["assistant_models"]
    out += ["", f"{models['study']} per assistant model"]
    rows = [
        [
            name,
            _cell(r["conversations"]),
            _cell(r["people"]),
            _cell(r["turns_per_conversation"]),
            _cell(r["assistant_reply_chars"]),
        ]
        + [_cell(r["ratings"][m]) for m in comparison["metrics"]]
        for name, r in models["models"].items()
    ]
    out += _grid(["model", "#conv.", "#people", "turns", "chars/reply"] + comparison["metrics"], rows)
    return out


def run_all_stats(
    path: str | os.PathLike,
    plots: str | os.PathLike | None = None,
    top_phrases: int = 15,
    width: str = "page",
) -> dict:
    """What `recllmsim stats` reports: :func:`~recllmsim_hf.analysis.stats.run_stats` and, for a
    build with the human studies, ``"synthetic_vs_human"`` (its figure joins ``"figures"``)."""
    if plots is not None:  # refuse a folder the figures may not go to before the work, not after
        from recllmsim_hf.analysis.figure_style import check_figure_top, check_width
        from recllmsim_hf.safety import claim_output

        check_width(width)
        check_figure_top(top_phrases)
        claim_output(plots, "figures", flag="--plots")
    result = run_stats(path, top_phrases=top_phrases)
    comparison = compare_studies(path)
    if comparison is not None:
        result["synthetic_vs_human"] = comparison
    if plots is not None:
        from recllmsim_hf.analysis.figures import write_figures

        result["figures"] = [str(p) for p in write_figures(result, plots, width, comparison=comparison)]
    return result


def render_all_text(result: dict) -> str:
    """:func:`run_all_stats` as text: the paper's tables, then the comparison."""
    text = render_text(result)
    if "synthetic_vs_human" in result:
        text += "\n".join(render_comparison(result["synthetic_vs_human"])) + "\n"
    return text
