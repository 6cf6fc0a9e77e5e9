"""Map the release's two studies of real people (``real_human_user/``, ``human_exp_V2/``) onto records.

Layout: ``<study>/User_<k>/<任务>/<n>.json`` (Chinese task folder names, see
:data:`~recllmsim_hf.human_schema.HUMAN_TASKS`), plus ``user_profiling/desc_translated.json``, the
Chinese -> English names of the profile values. Which names are conversation files, and why every
other name is a problem: :mod:`recllmsim_hf.sources.human_listing`. Field mapping (release key ->
record field):

======================  ==================================================================
folder ``<study>``       ``HumanConversation.study``
``User_<k>``             ``user_id`` = ``<study>/User_<k>`` (each study numbers its users on its
                         own: the two studies' ids never merge)
``<任务>``, task_type     ``task``: the synthetic English task name (the two must agree)
``chat_model``           ``assistant_model`` (human_exp_V2; None where the file names none)
``task_context``         ``scenario_zh``
``history[i]``           ``turns[i]``: ``role``, ``content``; ``intent`` (list of 推荐 / 规划 /
                         评估 / 其它) -> ``intents`` (Recommendation / Planning / Evaluation /
                         Others); ``hallucination`` (否 / 是 / 无法判断 -> no / yes / cannot
                         tell), ``satisfaction`` ("1".."5" -> 1-5), ``reason``
``questionnaire``        ``ratings`` by :data:`~recllmsim_hf.human_schema.QUESTIONNAIRE` (each query
                         text is checked: the scores assume that wording), and kept as given
                         in ``questionnaire``
``profile``              ``profile``: each value in Chinese (``*_zh``) and English (from
                         ``desc_translated.json``; gender is English in the release)
``profile.complete_tid`` ``extra["profile.complete_tid"]`` (the study's progress record)
``strategy*``            ``strategies[<column>]`` = ``{"final": A, "runs": [A1, A2, A3]}``; each
                         field's value is one of its closed set in
                         :data:`~recllmsim_hf.human_schema.STRATEGY_VALUES` (no field is free
                         text: labels such as Planning / Sequential, and 1-5 scores)
anything else            ``extra`` (kept, never dropped)
======================  ==================================================================

Required in every file: ``history``, ``task_context``, ``task_type``, ``profile`` and
``questionnaire`` (every file of both studies has them, commit d680f2f9); a missing one is a problem
"required field is missing". ``chat_model`` (human_exp_V2 only) and the ``strategy*`` keys are
optional (real_human_user has no ``chat_model``; ``strategy_V2`` and ``strategy_human*`` are in some
files only). ``conversation_id`` is ``<study>-User_<k>-<task_slug>-<n>``: derived, stable across
machines. Every value outside the known vocabularies (intents, questionnaire options, profile values,
strategy shapes and values) is a :class:`~recllmsim_hf.errors.Problem` naming file, field and value.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from recllmsim_hf.corpus import loads_file, natural_key
from recllmsim_hf.errors import Problem, ValidationFailed
from recllmsim_hf.human_schema import (
    HALLUCINATION_JUDGEMENTS_ZH,
    HUMAN_INTENTS_ZH,
    HUMAN_TASKS,
    QUESTIONNAIRE,
    STRATEGIES,
    STRATEGY_VALUES,
    HumanConversation,
    Person,
)
from recllmsim_hf.sources.human_listing import human_files, study_folders
from recllmsim_hf.sources.profiles import Vocabulary, map_profile, read_vocabulary, reporter
from recllmsim_hf.sources.release import MAX_FILE_BYTES

# Conversation files of each study in the pinned release archive (commit d680f2f9).
PINNED_HUMAN_FILES: dict[str, int] = {"real_human_user": 291, "human_exp_V2": 1833}
_MODELLED = {"chat_model", "history", "task_context", "task_type", "profile", "questionnaire", *STRATEGIES}
_TURN_MODELLED = {"role", "content", "intent", "hallucination", "satisfaction", "reason"}
# Every file of both studies has these (commit d680f2f9); chat_model is human_exp_V2's alone.
_REQUIRED = ("history", "task_context", "task_type", "profile", "questionnaire")
_QUESTIONS = {q.summary: q for q in QUESTIONNAIRE}


def _slug(text: str) -> str:
    return "_".join(text.lower().split())


def _turn(raw: Any, i: int, where: str, problems: list[Problem]) -> dict | None:
    bad = reporter(problems, where)
    field = f"history[{i}]"
    if not isinstance(raw, dict):
        bad(field, raw, "expected an object")
        return None
    role, content = raw.get("role"), raw.get("content")
    if role not in ("user", "assistant"):
        bad(f"{field}.role", role, "must be one of ['user', 'assistant']")
        return None
    if not isinstance(content, str):
        bad(f"{field}.content", content, "must be a string")
        return None
    turn: dict[str, Any] = {"role": role, "content": content}
    before = len(problems)
    if "intent" in raw:
        intents = raw["intent"]
        if role != "user" or not isinstance(intents, list):
            bad(f"{field}.intent", intents, "expected a list of labels on a user turn")
        else:
            known = [isinstance(label, str) and label in HUMAN_INTENTS_ZH for label in intents]
            for label, ok in zip(intents, known, strict=True):
                if not ok:
                    bad(f"{field}.intent", label, f"unknown intent, must be one of {list(HUMAN_INTENTS_ZH)}")
            if all(known):
                turn["intents"] = [HUMAN_INTENTS_ZH[label] for label in intents]
    for key in ("hallucination", "satisfaction", "reason"):
        if key in raw and role != "assistant":
            bad(f"{field}.{key}", raw[key], "only assistant turns carry this")
    if role == "assistant":
        if "hallucination" in raw:
            judged = raw["hallucination"]
            if not isinstance(judged, str) or judged not in HALLUCINATION_JUDGEMENTS_ZH:
                bad(f"{field}.hallucination", judged, f"must be one of {list(HALLUCINATION_JUDGEMENTS_ZH)}")
            else:
                turn["hallucination"] = HALLUCINATION_JUDGEMENTS_ZH[judged]
        if "satisfaction" in raw:
            score = raw["satisfaction"]
            text = str(score) if isinstance(score, (str, int)) and not isinstance(score, bool) else ""
            if text not in ("1", "2", "3", "4", "5"):
                bad(f"{field}.satisfaction", score, "must be a score from 1 to 5")
            else:
                turn["satisfaction"] = int(text)
        if "reason" in raw:
            if not isinstance(raw["reason"], str):
                bad(f"{field}.reason", raw["reason"], "must be a string")
            turn["reason"] = raw["reason"]
    turn["extra"] = {k: v for k, v in raw.items() if k not in _TURN_MODELLED}
    return turn if len(problems) == before else None


def _answers(raw: Any, where: str, problems: list[Problem]) -> tuple[dict, list]:
    bad = reporter(problems, where)
    if not isinstance(raw, list):
        bad("questionnaire", raw, "expected a list of {query, summary, option}")
        return {}, []
    ratings, answers = {}, []
    for i, item in enumerate(raw):
        field = f"questionnaire[{i}]"
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("summary", "query", "option")
        ):
            bad(field, item, "expected {query: str, summary: str, option: str}")
            continue
        question = _QUESTIONS.get(item["summary"])
        if question is None:
            bad(f"{field}.summary", item["summary"], f"unknown question, must be one of {list(_QUESTIONS)}")
            continue
        if item["query"] != question.query:
            problems.append(
                Problem(
                    where,
                    f"{field}.query",
                    item["query"],
                    f"not the known {question.summary} question; its scores may not hold",
                )
            )
        elif item["option"] not in question.scores:
            problems.append(
                Problem(
                    where,
                    f"{field}.option",
                    item["option"],
                    f"unknown option, must be one of {list(question.scores)}",
                )
            )
        elif question.rating in ratings:
            bad(f"{field}.summary", item["summary"], "question answered twice")
        else:
            ratings[question.rating] = question.scores[item["option"]]
        answers.append({k: item[k] for k in ("summary", "query", "option")})
        for key in sorted(set(item) - {"summary", "query", "option"}):
            bad(f"{field}.{key}", item[key], "unknown questionnaire key")
    return ratings, answers


def _strategy(key: str, raw: Any, where: str, problems: list[Problem]) -> dict | None:
    bad = reporter(problems, where)
    _, shape = STRATEGIES[key]
    runs = sorted((k for k in raw if k != "final"), key=natural_key) if isinstance(raw, dict) else []
    if not isinstance(raw, dict) or "final" not in raw or any(not k.isdigit() for k in runs):
        bad(key, raw, 'expected {"final": {...}, "1": {...}, ...}')
        return None
    if [int(k) for k in runs] != list(range(1, len(runs) + 1)):
        bad(key, runs, "numbered annotations must be 1, 2, 3, ...")
        return None
    out: dict[str, Any] = {"final": None, "runs": []}
    values, before = STRATEGY_VALUES[key], len(problems)
    for name in ["final", *runs]:
        item = raw[name]
        if not isinstance(item, dict):
            bad(f"{key}.{name}", item, f"expected an object with the fields {list(shape)}")
            continue
        if set(item) != set(shape):
            for field in shape:
                if field not in item:
                    bad(f"{key}.{name}.{field}", None, "required field is missing")
            for field in item:
                if field not in shape:
                    bad(f"{key}.{name}", field, f"unknown field, expected only {list(shape)}")
            continue
        for field, kind in shape.items():
            v = item[field]
            good = isinstance(v, str) if kind == "str" else (isinstance(v, int) and not isinstance(v, bool))
            if not good:
                bad(f"{key}.{name}.{field}", v, f"must be a{'n integer' if kind == 'int' else ' string'}")
            elif v not in values[field]:
                bad(f"{key}.{name}.{field}", v, f"unknown value, must be one of {list(values[field])}")
        if name == "final":
            out["final"] = dict(item)
        else:
            out["runs"].append(dict(item))
    return out if len(problems) == before else None


def parse_human_file(
    path: Path, rel: str, study: str, vocab: Vocabulary, problems: list[Problem]
) -> HumanConversation | None:
    """Map one human-study file (``rel`` = ``<study>/User_<k>/<任务>/<n>.json``); problems are
    appended to ``problems`` and None returned if there is any."""
    before, bad = len(problems), reporter(problems, rel)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            limit = f"{MAX_FILE_BYTES // 2**20} MB; real ones are < 1 MB"
            bad("", f"{size / 2**20:,.1f} MB", f"larger than a human-study file may be ({limit})")
            return None
        data = loads_file(path.read_bytes())
    except RecursionError:
        bad("", "deeply nested lists or objects", "nested too deeply to be a human-study file")
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        near = e.doc[max(0, e.pos - 40) : e.pos] if isinstance(e, json.JSONDecodeError) else path.name
        bad("", near, f"not valid UTF-8 JSON ({e})"[:120])
        return None
    if not isinstance(data, dict):
        bad("", type(data).__name__, "expected a JSON object")
        return None
    user, folder = path.parent.parent.name, path.parent.name
    if folder not in HUMAN_TASKS:
        bad("<task folder>", folder, f"must be one of {list(HUMAN_TASKS)}")
        return None
    for key in _REQUIRED:
        if key not in data:
            bad(key, None, "required field is missing")
    if "task_type" in data and data["task_type"] != folder:
        bad("task_type", data["task_type"], f"differs from its folder {folder!r}")
    if "task_context" in data and not isinstance(data["task_context"], str):
        bad("task_context", data["task_context"], "must be a string")
    if len(problems) > before:
        return None
    history = data["history"]
    if not isinstance(history, list) or not history:
        bad("history", history, "must be a non-empty list of turns")
        return None
    turns = [_turn(t, i, rel, problems) for i, t in enumerate(history)]
    ratings, answers = _answers(data["questionnaire"], rel, problems)
    profile, profile_extra = map_profile(data["profile"], vocab, rel, problems)
    strategies = {}
    for key, (column, _) in STRATEGIES.items():
        if key in data:
            strategies[column] = _strategy(key, data[key], rel, problems)
    model = data.get("chat_model")
    if model is not None and not isinstance(model, str):
        bad("chat_model", model, "must be a string")
    if len(problems) > before:
        return None
    extra = {k: v for k, v in data.items() if k not in _MODELLED}
    try:
        return HumanConversation(
            conversation_id=f"{study}-{user}-{_slug(HUMAN_TASKS[folder])}-{path.stem}",
            study=study,
            user_id=f"{study}/{user}",
            task=HUMAN_TASKS[folder],
            assistant_model=model,
            scenario_zh=data["task_context"],
            turns=turns,
            ratings=ratings,
            questionnaire=answers,
            strategies=strategies,
            profile=profile,
            source_file=rel,
            extra={**extra, **profile_extra},
        )
    except ValidationError as e:
        err = e.errors()[0]
        bad(".".join(map(str, err["loc"])), err.get("input"), err["msg"])
        return None


class HumanReader:
    """Read the human studies of a release tree into records.

    After :meth:`conversations` was consumed, ``people`` holds one :class:`Person` per
    ``user_id``: the profile most of their files state (ties: the earliest file), the number
    of conversations and of distinct profile versions.

    Example:
        >>> reader = HumanReader(Path("RecLLMSim-d680f2f9"), problems=[])  # doctest: +SKIP
        >>> sum(1 for _ in reader.conversations())  # doctest: +SKIP
        2124
    """

    def __init__(self, tree: Path, problems: list[Problem] | None = None):
        self.tree = Path(tree)
        self.problems = problems
        self._listing: list[Problem] = []  # names in the study folders that are not conversation files
        folders = study_folders(self.tree, self._listing)
        self.files = [(s, p) for s, folder in folders.items() for p in human_files(folder, self._listing)]
        self.vocabulary: Vocabulary | None = None
        self.people: dict[str, Person] = {}

    def conversations(self) -> Iterator[HumanConversation]:
        """Yield every good conversation; without a ``problems`` list, raise
        :class:`ValidationFailed` at the end listing every problem."""
        problems: list[Problem] = [] if self.problems is None else self.problems
        problems.extend(self._listing)
        self.vocabulary = read_vocabulary(self.tree, problems)
        if self.vocabulary is None:
            if self.problems is None:
                raise ValidationFailed(problems)
            return
        profiles: dict[str, Counter] = {}
        study_of: dict[str, str] = {}
        for study, path in self.files:
            rel = path.relative_to(self.tree).as_posix()
            conv = parse_human_file(path, rel, study, self.vocabulary, problems)
            if conv is None:
                continue
            text = conv.profile.model_dump_json()
            profiles.setdefault(conv.user_id, Counter())[text] += 1
            study_of[conv.user_id] = study
            yield conv
        for user_id, counts in profiles.items():
            best = max(counts.items(), key=lambda kv: kv[1])[0]  # Counter keeps first-seen order on ties
            self.people[user_id] = Person.model_validate(
                {
                    "user_id": user_id,
                    "study": study_of[user_id],
                    "profile": json.loads(best),
                    "num_conversations": sum(counts.values()),
                    "num_profile_versions": len(counts),
                }
            )
        if self.problems is None and problems:
            raise ValidationFailed(problems)
