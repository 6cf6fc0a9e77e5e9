"""Map the original RecLLMSim release (``<task>/<n>.json`` files) onto the corpus records.

Field mapping (release key -> record field):

==========================  ===============================================================
``task``                    ``Conversation.task``; "new travel planning" -> task "travel
                            planning" with ``round`` 2 (a later generation round)
``preference_id``           ``profile_id`` (as a string)
``task_context_id``         ``Scenario.source_id``; ``scenario_id`` is ``<task_slug>-<id>``,
                            or ``<task_slug>-r2-<id>`` for round 2, because ids 5 and 7 occur in
                            both travel rounds with different texts (22 scenarios in all)
``preference[_zh]``         ``Profile.text[_zh]``; ``Conversation.profile_zh`` keeps this
                            file's translation (the release translated each file anew)
``task_context[_zh]``       ``Scenario.text[_zh]``; ``Conversation.scenario_zh`` likewise
``history[i]``              ``turns[i]``: ``content``, ``content_zh``, ``intent`` (user; checked
                            against ``intent_zh``), ``hallucination.hallucination`` and
                            ``hallucination.memo`` -> ``hallucination``, ``reason`` (assistant)
``rating``                  ``ratings`` (7 metrics; a missing metric is None, never 0)
``preference_summary``      ``preference_summary``
``conflict``                ``conflict``
``profile_mapped``          ``Profile.fields`` / ``fields_zh`` (structured, en and zh)
anything else               ``Conversation.extra`` (e.g. ``strategy``, ``strategy_V2``,
                            ``strategy_V3``, ``strategy_1120``, ``preference_summary_old``) or
                            ``Turn.extra`` (e.g. ``content_zh_old``) — kept, never dropped
==========================  ===============================================================

Ids are derived: ``conversation_id`` is ``<folder_slug>-<n>`` (``recipe_planning-0``,
``new_travel_planning-12``), so they are stable across machines.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from recllmsim_hf.corpus import loads_file, natural_key
from recllmsim_hf.errors import Problem, ValidationFailed
from recllmsim_hf.schema import (
    INTENT_LABELS,
    INTENT_LABELS_ZH,
    PROFILE_FIELDS,
    RATING_METRICS,
    SINGLE_VALUE_PROFILE_FIELDS,
    TASKS,
    Conversation,
    Profile,
    ProfileFields,
    Ratings,
    Scenario,
    Turn,
)

# Release folder -> (task, round).
TASK_ROUNDS: dict[str, tuple[str, int]] = {task: (task, 1) for task in TASKS}
TASK_ROUNDS["new travel planning"] = ("travel planning", 2)

_MODELLED = {
    "task",
    "preference_id",
    "task_context_id",
    "preference",
    "preference_zh",
    "task_context",
    "task_context_zh",
    "history",
    "conflict",
    "preference_summary",
    "rating",
    "profile_mapped",
}
_TURN_MODELLED = {"role", "content", "content_zh", "intent", "intent_zh", "hallucination"}
_REQUIRED = ("task", "preference_id", "task_context_id", "preference", "task_context", "history")


def slug(text: str) -> str:
    """``"new travel planning"`` -> ``"new_travel_planning"``."""
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def scenario_id_for(task: str, round_: int, context_id: int) -> str:
    """The derived scenario id: ``travel_planning-5``, ``travel_planning-r2-5``."""
    return f"{slug(task)}-{context_id}" if round_ == 1 else f"{slug(task)}-r{round_}-{context_id}"


# One release file is a few kB (the largest of the release: 0.1 MB); parsing takes ~10x its size.
MAX_FILE_BYTES = 32 * 1024 * 1024
_FILE_NAME = re.compile(r"^(0|[1-9][0-9]*)\.json$")


def release_files(root: Path, problems: list[Problem] | None = None) -> list[Path]:
    """The conversation files under ``root`` (the folder holding the task folders), in a fixed
    order: task folder name, then the file number.

    The decision for everything else (with ``problems`` given, each is a problem there, so
    ``validate`` lists it and ``build`` refuses; without, it is skipped): a folder that is not one of
    the release's task folders (:data:`TASK_ROUNDS`), a name in a task folder that is not ``<n>.json``
    (``3 (copy).json``, ``notes.txt``), a folder or a broken or looping symbolic link named like a
    file, and a folder or file that cannot be read. Hidden names (``.DS_Store``, ``.git``) and plain
    files beside the task folders (``README.md``) are not part of the release and are passed over.
    """
    found: list[tuple[str, int, Path]] = []
    report = problems.append if problems is not None else (lambda p: None)
    for folder in sorted(_entries(root)):
        path = root / folder
        if folder.startswith(".") or not path.is_dir():
            continue
        if folder not in TASK_ROUNDS:
            report(
                Problem(f"{folder}/", "", folder, f"unknown task folder, must be one of {list(TASK_ROUNDS)}")
            )
            continue
        try:
            names = _entries(path)
        except OSError as e:
            report(Problem(f"{folder}/", "", e.strerror, "cannot read the task folder"))
            continue
        for name in names:
            if name.startswith("."):
                continue
            rel, file = f"{folder}/{name}", path / name
            if not _FILE_NAME.match(name):
                report(
                    Problem(rel, "", name, "not a conversation file name: must be <n>.json (e.g. 12.json)")
                )
            elif not file.is_file():
                why = "a broken or looping symbolic link"
                if file.exists():
                    why = "a folder" if file.is_dir() else "a pipe, socket or device"
                report(Problem(rel, "", why, "expected a conversation file"))
            else:
                found.append((folder, int(name[:-5]), file))
    return [file for _, _, file in sorted(found)]


def _entries(folder: Path) -> list[str]:
    with os.scandir(folder) as it:  # raises on an unreadable folder, unlike glob
        return [e.name for e in it]


class ParsedFile:
    """One release file mapped to records (the conversation plus its profile and scenario)."""

    __slots__ = ("conversation", "profile", "scenario")

    def __init__(self, conversation: Conversation, profile: Profile, scenario: Scenario):
        self.conversation, self.profile, self.scenario = conversation, profile, scenario


def _fields(mapped: Any, lang: str, where: str, problems: list[Problem]) -> ProfileFields | None:
    if not isinstance(mapped, dict):
        return None
    values: dict[str, Any] = {}
    for name, key in PROFILE_FIELDS.items():
        raw = mapped.get(key)
        items = raw if isinstance(raw, list) else ([] if raw is None else [raw])
        texts = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get(lang), str):
                texts.append(item[lang])
            else:
                problems.append(
                    Problem(where, f"profile_mapped.{key}", item, "expected {'en': str, 'zh': str}")
                )
        values[name] = (texts[0] if texts else None) if name in SINGLE_VALUE_PROFILE_FIELDS else texts
    return ProfileFields(**values)


def _turn(raw: Any, i: int, where: str, problems: list[Problem]) -> Turn | None:
    field = f"history[{i}]"
    if not isinstance(raw, dict):
        problems.append(Problem(where, field, raw, "expected an object"))
        return None
    role = raw.get("role")
    if role not in ("user", "assistant"):
        problems.append(Problem(where, f"{field}.role", role, "must be one of ['user', 'assistant']"))
        return None
    if not isinstance(raw.get("content"), str):
        problems.append(Problem(where, f"{field}.content", raw.get("content"), "must be a string"))
        return None
    turn: dict[str, Any] = {"role": role, "content": raw["content"], "content_zh": raw.get("content_zh")}
    if role == "user":
        intent = raw.get("intent")
        if intent is not None and intent not in INTENT_LABELS:
            problems.append(
                Problem(where, f"{field}.intent", intent, f"must be one of {list(INTENT_LABELS)}")
            )
            return None
        intent_zh = raw.get("intent_zh")
        if intent is not None and intent_zh is not None and intent_zh != INTENT_LABELS_ZH[intent]:
            problems.append(
                Problem(where, f"{field}.intent_zh", intent_zh, f"does not match intent {intent!r}")
            )
            return None
        turn["intent"] = intent
    else:
        h = raw.get("hallucination")
        if h is not None:
            if not isinstance(h, dict) or not isinstance(h.get("hallucination"), bool):
                problems.append(
                    Problem(
                        where, f"{field}.hallucination", h, "expected {'hallucination': bool, 'memo': str}"
                    )
                )
                return None
            turn["hallucination"] = h["hallucination"]
            turn["reason"] = h.get("memo")
    turn["extra"] = {k: v for k, v in raw.items() if k not in _TURN_MODELLED}
    try:
        return Turn.model_validate(turn)
    except ValidationError as e:
        err = e.errors()[0]
        problems.append(
            Problem(where, f"{field}.{'.'.join(map(str, err['loc']))}", err.get("input"), err["msg"])
        )
        return None


def _ratings(raw: Any, where: str, problems: list[Problem]) -> Ratings | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(Problem(where, "rating", raw, "expected an object of the 7 metrics"))
        return None
    values, ok = {}, True
    for name, (key, top) in RATING_METRICS.items():
        v = raw.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
            problems.append(Problem(where, f"rating.{key}", v, f"must be an integer from 0 to {top}"))
            ok = False
        values[name] = v
    unknown = sorted(set(raw) - {key for key, _ in RATING_METRICS.values()})
    for key in unknown:
        problems.append(Problem(where, f"rating.{key}", raw[key], "unknown rating metric"))
    return Ratings(**values) if ok and not unknown else None


def parse_file(path: Path, rel: str, problems: list[Problem]) -> ParsedFile | None:
    """Map one release file; problems are appended to ``problems`` and None returned if any."""
    before = len(problems)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.append(
                Problem(
                    rel,
                    "",
                    f"{size / 2**20:,.1f} MB",
                    f"larger than a release file may be ({MAX_FILE_BYTES // 2**20} MB; real ones are < 1 MB)",
                )
            )
            return None
        data = loads_file(path.read_bytes())
    except OSError as e:
        problems.append(Problem(rel, "", e.strerror, "cannot read the file"))
        return None
    except RecursionError:
        problems.append(
            Problem(rel, "", "deeply nested lists or objects", "nested too deeply to be a release file")
        )
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        if isinstance(e, json.JSONDecodeError):  # show where, and the text just before the break
            message, near = (
                f"not valid JSON ({e.msg}: line {e.lineno} column {e.colno})",
                e.doc[max(0, e.pos - 40) : e.pos],
            )
        else:
            message, near = f"not valid UTF-8 JSON ({e})", path.name
        problems.append(Problem(rel, "", near, message))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(rel, "", type(data).__name__, "expected a JSON object"))
        return None
    for key in _REQUIRED:
        if key not in data:
            problems.append(Problem(rel, key, None, "required field is missing"))
    if len(problems) > before:
        return None
    folder = data["task"]
    if folder not in TASK_ROUNDS:
        problems.append(Problem(rel, "task", folder, f"must be one of {list(TASK_ROUNDS)}"))
        return None
    task, round_ = TASK_ROUNDS[folder]
    for key in ("preference_id", "task_context_id"):
        if isinstance(data[key], bool) or not isinstance(data[key], int):
            problems.append(Problem(rel, key, data[key], "must be an integer"))
    history = data["history"]
    if not isinstance(history, list) or not history:
        problems.append(Problem(rel, "history", history, "must be a non-empty list of turns"))
        return None
    turns = [_turn(t, i, rel, problems) for i, t in enumerate(history)]
    ratings = _ratings(data.get("rating"), rel, problems)
    fields = _fields(data.get("profile_mapped"), "en", rel, problems)
    fields_zh = _fields(data.get("profile_mapped"), "zh", rel, problems)
    if len(problems) > before:
        return None
    profile_id = str(data["preference_id"])
    scenario_id = scenario_id_for(task, round_, data["task_context_id"])
    try:
        conversation = Conversation(
            conversation_id=f"{slug(path.parent.name)}-{path.stem}",
            task=task,
            round=round_,
            profile_id=profile_id,
            scenario_id=scenario_id,
            turns=turns,
            profile_zh=data.get("preference_zh"),
            scenario_zh=data.get("task_context_zh"),
            ratings=ratings,
            preference_summary=data.get("preference_summary") or [],
            conflict=data.get("conflict"),
            source_file=rel,
            extra={k: v for k, v in data.items() if k not in _MODELLED},
        )
        profile = Profile(
            profile_id=profile_id,
            text=data["preference"],
            text_zh=data.get("preference_zh"),
            fields=fields,
            fields_zh=fields_zh,
        )
        scenario = Scenario(
            scenario_id=scenario_id,
            task=task,
            text=data["task_context"],
            text_zh=data.get("task_context_zh"),
            round=round_,
            source_id=data["task_context_id"],
        )
    except ValidationError as e:
        err = e.errors()[0]
        problems.append(Problem(rel, ".".join(map(str, err["loc"])), err.get("input"), err["msg"]))
        return None
    return ParsedFile(conversation, profile, scenario)


class ReleaseReader:
    """Read a release folder (the one holding the task folders) into records.

    ``profiles`` and ``scenarios`` are merged over all files: a profile or
    scenario id whose English text differs between files is a problem; the
    Chinese text kept on the record is the most frequent translation (ties:
    the smallest string), each conversation keeping its own in ``profile_zh`` /
    ``scenario_zh``.

    Example:
        >>> reader = ReleaseReader(Path("LLM_agent_user"))  # doctest: +SKIP
        >>> conversations = list(reader.conversations())    # doctest: +SKIP
    """

    def __init__(self, root: Path, problems: list[Problem] | None = None):
        self.root = Path(root)
        self.problems = problems
        self._listing: list[Problem] = []
        self.files = release_files(self.root, self._listing)

    def conversations(self) -> Iterator[Conversation]:
        """Yield every good conversation; afterwards ``profiles`` and ``scenarios`` are filled.

        Without a ``problems`` list the first bad file raises :class:`ValidationFailed`
        after all files were read, listing every problem.
        """
        problems: list[Problem] = [] if self.problems is None else self.problems
        problems.extend(self._listing)
        ids: set[str] = set()
        profiles: dict[str, Profile] = {}
        scenarios: dict[str, Scenario] = {}
        zh: dict[tuple[str, str], Counter] = {}
        for path in self.files:
            rel = f"{path.parent.name}/{path.name}"
            parsed = parse_file(path, rel, problems)
            if parsed is None:
                continue
            ident = parsed.conversation.conversation_id
            if ident in ids:  # two folder names with one slug
                problems.append(Problem(rel, "conversation_id", ident, "duplicate id (another file has it)"))
                continue
            ids.add(ident)
            for kind, record, into, key in (
                ("profile", parsed.profile, profiles, "preference"),
                ("scenario", parsed.scenario, scenarios, "task_context"),
            ):
                ident = getattr(record, f"{kind}_id")
                known = into.setdefault(ident, record)
                if known.text != record.text:
                    problems.append(
                        Problem(
                            rel, key, record.text[:40], f"{kind} {ident} has another text in an earlier file"
                        )
                    )
                if record.text_zh:
                    zh.setdefault((kind, ident), Counter())[record.text_zh] += 1
            yield parsed.conversation
        for (kind, ident), counts in zh.items():
            best = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
            (profiles if kind == "profile" else scenarios)[ident].text_zh = best
        self.profiles = dict(sorted(profiles.items(), key=lambda kv: natural_key(kv[0])))
        self.scenarios = dict(sorted(scenarios.items(), key=lambda kv: natural_key(kv[0])))
        if self.problems is None and problems:
            raise ValidationFailed(problems)
