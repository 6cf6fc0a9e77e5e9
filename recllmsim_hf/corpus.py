"""Our corpus format: a folder of JSON Lines files plus a manifest.

    CORPUS/
      manifest.json          Manifest (format, schema version, tasks, how it was made)
      profiles.jsonl         one Profile per line
      scenarios.jsonl        one Scenario per line
      conversations.jsonl    one complete Conversation per line (append-only)

    and, staged from a release that has them (``recllmsim_hf.sources.human``):

      human_conversations.jsonl   one HumanConversation per line (the two studies of real people)
      human_people.jsonl          one Person per line
      profile_vocabulary.json     attribute -> [[Chinese, English], ...] (user_profiling/desc_translated.json)

Every line is one whole JSON object, written in one ``write`` and flushed, so a
killed writer leaves at most one unterminated last line, which readers report
(``validate``) and writers repair (:func:`repair_tail`).

Example:
    >>> import tempfile
    >>> from recllmsim_hf.schema import Profile
    >>> d = tempfile.mkdtemp()
    >>> write_jsonl(f"{d}/profiles.jsonl", [Profile(profile_id="1", text="1. Gender: Male")])
    >>> [p.profile_id for p in read_jsonl(f"{d}/profiles.jsonl", Profile)]
    ['1']
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from recllmsim_hf.errors import InputError, Problem, ValidationFailed, naming
from recllmsim_hf.human_schema import HumanConversation, Person
from recllmsim_hf.schema import Conversation, Manifest, Profile, Scenario

M = TypeVar("M", bound=BaseModel)

_UMASK = os.umask(0)
os.umask(_UMASK)
# The mode a new file gets under the process umask (mkstemp's own is 0600).
FILE_MODE = 0o666 & ~_UMASK

MANIFEST = "manifest.json"
PROFILES = "profiles.jsonl"
SCENARIOS = "scenarios.jsonl"
CONVERSATIONS = "conversations.jsonl"
HUMAN_CONVERSATIONS = "human_conversations.jsonl"
PEOPLE = "human_people.jsonl"
PROFILE_VOCABULARY = "profile_vocabulary.json"


def dumps(record: BaseModel | dict) -> str:
    """Canonical one-line JSON of a record (stable key order, UTF-8, no NaN)."""
    data = record.model_dump(mode="json", exclude_defaults=False) if isinstance(record, BaseModel) else record
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def loads(data: bytes | str):
    """``json.loads`` at two to three times the speed (pydantic's parser, which gives equal
    objects); a line it refuses goes to ``json.loads``, so errors are json's own."""
    try:
        return from_json(data, cache_strings="keys")
    except ValueError:
        return json.loads(data)


MAX_NESTING = 100  # lists/objects in lists/objects of a source file (real ones: 4)


def loads_file(raw: bytes):
    """:func:`loads` of one source file, raising :class:`RecursionError` also when its values
    nest deeper than :data:`MAX_NESTING` levels: deeper ones parse but could not be written
    back out (pydantic's serializer stops at 255 levels). The walk runs only for a file with
    that many brackets at all."""
    data = loads(raw)
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING:
        stack = [(data, 0)]
        while stack:
            value, depth = stack.pop()
            if depth >= MAX_NESTING:
                raise RecursionError(f"nested deeper than {MAX_NESTING} levels")
            for item in value.values() if isinstance(value, dict) else value:
                if isinstance(item, dict | list):
                    stack.append((item, depth + 1))
    return data


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    atomic_write_lines(path, [text])


def atomic_write_lines(path: str | os.PathLike, chunks: Iterable[str]) -> None:
    """Stream ``chunks`` into a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with naming(path), os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | os.PathLike, records: Iterable[BaseModel | dict]) -> None:
    """Write all ``records`` to ``path`` atomically, one JSON object per line."""
    atomic_write_lines(path, (dumps(r) + "\n" for r in records))


def append_jsonl(path: str | os.PathLike, record: BaseModel | dict) -> None:
    """Append one record as one whole line, flushed to disk before returning."""
    line = (dumps(record) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        with naming(path):
            os.write(fd, line)
            os.fsync(fd)
    finally:
        os.close(fd)


def repair_tail(path: str | os.PathLike) -> bool:
    """Cut an unterminated last line (left by a killed writer). Returns True if it cut one."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return False
        data_end = f.seek(0, os.SEEK_END)
        pos, keep = data_end, 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = pos + nl + 1
                break
        f.truncate(keep)
    return True


def natural_key(text: str) -> tuple:
    """Sort key that puts ``"2"`` before ``"10"``: ``sorted(ids, key=natural_key)``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p)


def _describe(err: ValidationError) -> tuple[str, object, str]:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    return field, first.get("input"), first["msg"]


def read_jsonl(path: str | os.PathLike, model: type[M], problems: list[Problem] | None = None) -> Iterator[M]:
    """Stream ``model`` records from a JSON Lines file.

    With ``problems`` given, bad lines are recorded there and skipped; without it
    the first bad line raises :class:`ValidationFailed`. Records are checked strictly: ``"2"``
    is not an integer and ``"false"`` not a boolean, so what passes here is what ``build``
    can write (the same check serves ``validate`` and ``build``).
    """
    path = Path(path)
    try:
        f = open(path, "rb")  # decoded line by line: a bad byte is a problem of its line
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror}); check the path") from None
    with f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad = Problem(
                    where,
                    "",
                    raw[:60].decode("utf-8", "replace").rstrip("\n"),
                    f"not UTF-8 (byte {raw[e.start]:#04x} at offset {e.start})",
                )
                if problems is None:
                    raise ValidationFailed([bad]) from None
                problems.append(bad)
                continue
            if not line.strip():
                continue
            try:  # pydantic's own parser, about twice as fast as json.loads + model_validate
                record = model.model_validate_json(line, strict=True)
            except ValidationError:
                record = None  # the way below names the problem
            if record is not None:
                yield record
                continue
            where = f"{path}:{lineno}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as e:
                problem = Problem(
                    where, "", line[:60].rstrip("\n"), f"not valid JSON ({e.msg} at column {e.colno})"
                )
            except RecursionError:
                problem = Problem(where, "", line[:40], "nested too deeply to be a record")
            else:
                try:
                    yield model.model_validate(data, strict=True)
                    continue
                except ValidationError as e:
                    problem = Problem(where, *_describe(e))
                except RecursionError:
                    problem = Problem(where, "", line[:40], "nested too deeply to be a record")
            if problems is None:
                raise ValidationFailed([problem])
            problems.append(problem)


class Corpus:
    """A corpus folder, opened for reading.

    Profiles and scenarios are loaded at once (they are small); conversations are
    streamed with :meth:`iter_conversations` so that corpora of any size build in
    constant memory.
    """

    def __init__(self, path: str | os.PathLike, problems: list[Problem] | None = None):
        self.path = Path(path)
        if not (self.path / CONVERSATIONS).is_file():
            raise InputError(
                f"{self.path}: not a corpus folder (no {CONVERSATIONS}); "
                "pass a corpus folder, a RecLLMSim release folder or archive"
            )
        self.problems = problems
        self.manifest = self._read_manifest()
        self.profiles: dict[str, Profile] = {}
        self.scenarios: dict[str, Scenario] = {}
        for name, model, into, key in (
            (PROFILES, Profile, self.profiles, "profile_id"),
            (SCENARIOS, Scenario, self.scenarios, "scenario_id"),
        ):
            if not (self.path / name).is_file():
                self._problem(Problem(str(self.path / name), "", None, "file is missing"))
                continue
            for record in read_jsonl(self.path / name, model, problems):
                ident = getattr(record, key)
                if ident in into:
                    self._problem(Problem(str(self.path / name), key, ident, "duplicate id"))
                into[ident] = record

    def _problem(self, problem: Problem) -> None:
        if self.problems is None:
            raise ValidationFailed([problem])
        self.problems.append(problem)

    def _read_manifest(self) -> Manifest:
        path = self.path / MANIFEST
        if not path.is_file():
            return Manifest()
        try:
            return Manifest.model_validate_json(path.read_bytes(), strict=True)
        except ValidationError as e:
            self._problem(Problem(str(path), *_describe(e)))
            return Manifest()

    @property
    def tasks(self) -> list[str]:
        """Tasks of the corpus: the manifest's list, else those of its scenarios."""
        return list(self.manifest.tasks) or sorted({s.task for s in self.scenarios.values()})

    def iter_human(self) -> Iterator[HumanConversation]:
        """Stream the human-study conversations (none when the corpus has no such file), checking
        that ``human_people.jsonl`` names each one's person."""
        path = self.path / HUMAN_CONVERSATIONS
        if not path.is_file():
            return
        people = {p.user_id for p in read_jsonl(self.path / PEOPLE, Person, self.problems)}
        seen: set[str] = set()
        for conv in read_jsonl(path, HumanConversation, self.problems):
            where = f"{path} ({conv.conversation_id})"
            if conv.conversation_id in seen:
                self._problem(Problem(where, "conversation_id", conv.conversation_id, "duplicate id"))
            if conv.user_id not in people:
                self._problem(Problem(where, "user_id", conv.user_id, f"no such person in {PEOPLE}"))
            seen.add(conv.conversation_id)
            yield conv

    def iter_conversations(self) -> Iterator[Conversation]:
        """Stream the conversations, checking that their profile and scenario exist."""
        seen: set[str] = set()
        path = self.path / CONVERSATIONS
        if not path.stat().st_size:
            self._problem(Problem(str(path), "", "an empty file", "holds no conversations"))
        for conv in read_jsonl(path, Conversation, self.problems):
            where = f"{path} ({conv.conversation_id})"
            if conv.conversation_id in seen:
                self._problem(Problem(where, "conversation_id", conv.conversation_id, "duplicate id"))
                continue
            seen.add(conv.conversation_id)
            if conv.profile_id not in self.profiles:
                self._problem(Problem(where, "profile_id", conv.profile_id, f"no such profile in {PROFILES}"))
            if conv.scenario_id not in self.scenarios:
                self._problem(
                    Problem(where, "scenario_id", conv.scenario_id, f"no such scenario in {SCENARIOS}")
                )
            yield conv


def write_corpus(
    path: str | os.PathLike,
    profiles: Iterable[Profile],
    scenarios: Iterable[Scenario],
    conversations: Iterable[Conversation],
    manifest: Manifest | None = None,
) -> Path:
    """Write a whole corpus folder (each file atomically). Returns the folder."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    profiles, scenarios = list(profiles), list(scenarios)
    n = 0

    def counted() -> Iterator[Conversation]:
        nonlocal n
        for c in conversations:
            n += 1
            yield c

    write_jsonl(path / PROFILES, profiles)
    write_jsonl(path / SCENARIOS, scenarios)
    write_jsonl(path / CONVERSATIONS, counted())
    manifest = manifest or Manifest()
    if not manifest.tasks:
        manifest.tasks = sorted({s.task for s in scenarios})
    manifest.counts = {"profiles": len(profiles), "scenarios": len(scenarios), "conversations": n}
    atomic_write_text(
        path / MANIFEST, json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    )
    return path
