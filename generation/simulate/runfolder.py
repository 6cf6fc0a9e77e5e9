"""The corpus folder as the generator writes it: lock, inputs, resume scan, manifest, progress.

``generate profiles``, ``generate conversations`` and ``generate filter`` share these
helpers. Every write is atomic (temporary file + rename) or a whole appended line.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from pathlib import Path

from recllmsim_hf.corpus import (
    CONVERSATIONS,
    MANIFEST,
    PROFILES,
    SCENARIOS,
    atomic_write_text,
    read_jsonl,
    repair_tail,
    write_jsonl,
)
from recllmsim_hf.errors import InputError
from recllmsim_hf.safety import claim_corpus
from recllmsim_hf.schema import Manifest, Profile, Scenario, passed_filters

LOCK = Path(".cache") / "generate.lock"
CACHE_FILE = (
    Path(".cache") / "llm.sqlite"
)  # generation.llm.cache.CACHE_FILE (not imported: that loads sqlite)


@contextmanager
def corpus_lock(corpus: Path) -> Iterator[None]:
    """Hold the corpus's generation lock (two writers would duplicate conversations)."""
    path = corpus / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"{corpus}: another `recllmsim generate` is writing this corpus; "
                "wait for it to finish or use another --out"
            ) from None
        yield
    finally:
        os.close(fd)


@contextmanager
def corpus_run(out: str | os.PathLike, makes: tuple[str, ...] = (CONVERSATIONS, PROFILES)) -> Iterator[Path]:
    """The corpus folder of one ``generate`` run, created if missing and locked.

    Only a missing or empty folder or a corpus folder is accepted (``safety.claim_corpus``). When
    the run fails before anything was generated or paid for, every file and folder it created is
    removed again, so a failed first run leaves nothing behind (a rerun starts the same way).
    ``makes``: the files this command generates (kept when not empty); any other file it wrote, such
    as profiles copied from ``--profiles``, is made again by a rerun and goes too.
    """
    corpus, existed = claim_corpus(out)
    before = _entries(corpus) if existed else set()
    corpus.mkdir(parents=True, exist_ok=True)
    try:
        with corpus_lock(corpus):
            yield corpus
    except BaseException:
        _undo(corpus, existed, before, makes)
        raise


def _entries(corpus: Path) -> set[str]:
    return {p.relative_to(corpus).as_posix() for p in corpus.rglob("*")}


def _paid_for(corpus: Path, created: set[str], makes: tuple[str, ...] = (CONVERSATIONS, PROFILES)) -> bool:
    """Whether this run wrote anything worth keeping: what it generates (``makes``), paid LLM calls,
    or a batch round that holds answers or a batch still open at the server (removing its ids would
    make a rerun send, and pay for, the same batch again)."""
    for name in makes:
        if name in created and (corpus / name).stat().st_size:
            return True
    rounds = [rel for rel in created if rel.startswith(".batch/") and rel.endswith("/state.json")]
    if any(_batch_paid(corpus / rel) for rel in rounds):
        return True
    cache = corpus / CACHE_FILE
    if CACHE_FILE.as_posix() in created and cache.stat().st_size:
        import sqlite3

        try:
            with closing(sqlite3.connect(f"file:{cache}?mode=ro", uri=True)) as db:
                return db.execute("SELECT count(*) FROM responses").fetchone()[0] > 0
        except sqlite3.Error:
            return True  # cannot tell: keep it
    return False


def _batch_paid(state_file: Path) -> bool:
    """Whether a batch round (``generation/llm/executors/roundfiles.py``) got answers or has a batch
    open at the server; a batch that failed validation or whose lines all failed cost nothing."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # cannot tell: keep it
    for part in state.get("parts", []):  # uploaded: its batch may exist (found by its file on a rerun)
        if part.get("file_id") and not part.get("downloaded") and part.get("status") != "failed":
            return True
    answers = [state_file.parent / "output.jsonl", *state_file.parent.glob("part-*.output.jsonl")]
    return any(path.is_file() and path.stat().st_size for path in answers)


def _undo(corpus: Path, existed: bool, before: set[str], makes: tuple[str, ...]) -> None:
    if not corpus.is_dir():
        return
    if _paid_for(corpus, _entries(corpus) - before, makes):
        return
    created = _entries(corpus) - before  # again: opening the cache may have added its -wal/-shm files
    for rel in sorted(created, key=lambda r: r.count("/"), reverse=True):  # files before their folders
        path = corpus / rel
        with suppress(OSError):
            path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    if not existed:
        with suppress(OSError):
            corpus.rmdir()


def load_profiles(corpus: Path, profiles_file: str | os.PathLike | None = None) -> list[Profile]:
    """The profiles of the corpus, or of ``profiles_file`` (then stored in the corpus if it has none)."""
    own = corpus / PROFILES
    if profiles_file is None:
        if not own.is_file():
            raise InputError(
                f"{own}: missing; run `recllmsim generate profiles -n 100 --out {corpus}` "
                "first or pass --profiles FILE"
            )
        return list(read_jsonl(own, Profile))
    profiles = list(read_jsonl(profiles_file, Profile))
    if not profiles:
        raise InputError(f"{profiles_file}: holds no profiles; pass a JSON Lines file of profiles")
    ids = [p.profile_id for p in profiles]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{profiles_file}: profile_id {dup!r} appears twice; make the ids unique")
    if own.is_file():
        existing = {p.profile_id: p for p in read_jsonl(own, Profile)}
        if existing != {p.profile_id: p for p in profiles}:
            raise InputError(
                f"--profiles {profiles_file}: differs from {own}, which conversations may already use; "
                "drop --profiles or use a new --out folder"
            )
    else:
        write_jsonl(own, profiles)
    return profiles


def merge_scenarios(corpus: Path, scenarios: Sequence[Scenario]) -> list[Scenario]:
    """Add ``scenarios`` to ``scenarios.jsonl`` (atomically); a changed text under a known id is an error."""
    path = corpus / SCENARIOS
    existing = {s.scenario_id: s for s in read_jsonl(path, Scenario)} if path.is_file() else {}
    merged = dict(existing)
    for s in scenarios:
        old = existing.get(s.scenario_id)
        if old is not None and old.text != s.text:
            raise InputError(
                f"{path}: scenario {s.scenario_id} has another text in the catalog now ({s.text[:50]!r}...); "
                "its conversations used the old text: use a new --out folder or restore the catalog"
            )
        merged[s.scenario_id] = s
    if merged != existing or not path.is_file():
        write_jsonl(path, sorted(merged.values(), key=lambda s: (s.task, s.round, s.scenario_id)))
    return list(merged.values())


def scan_conversations(corpus: Path) -> tuple[set[str], int, int]:
    """(ids, lines, lines that passed the filter) of ``conversations.jsonl`` after repairing its tail."""
    path = corpus / CONVERSATIONS
    if not path.exists():
        return set(), 0, 0
    repair_tail(path)
    ids: set[str] = set()
    lines = passed = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                ident = record["conversation_id"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InputError(
                    f"{path}:{lineno}: not a conversation record ({line[:40].strip()!r}...); "
                    "fix or delete that line (see `recllmsim validate`), then rerun"
                ) from None
            ids.add(ident)
            lines += 1
            passed += passed_filters(record.get("extra"))
    return ids, lines, passed


def update_manifest(corpus: Path, *, generation: dict | None = None, counts: dict | None = None) -> None:
    """Rewrite ``manifest.json`` atomically, keeping what other commands recorded."""
    path = corpus / MANIFEST
    manifest = Manifest(created_by="recllmsim generate")
    if path.is_file():
        try:
            manifest = Manifest.model_validate_json(path.read_bytes())
        except ValueError:
            raise InputError(f"{path}: not a valid manifest; fix or delete it, then rerun") from None
    if generation:
        manifest.generation.update(generation)
    if counts:
        manifest.counts.update(counts)
    if (corpus / SCENARIOS).is_file():
        manifest.tasks = sorted({s.task for s in read_jsonl(corpus / SCENARIOS, Scenario)})
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False)
    atomic_write_text(path, text + "\n")


# -- the run -------------------------------------------------------------------------------------


class RunProgress:
    """A rich progress bar on stderr: done / total, tokens, cost and errors (no-op when quiet)."""

    def __init__(self, label: str, total: int, done: int, runner, enabled: bool):
        self.runner, self.bar = runner, None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(), console=Console(stderr=True), refresh_per_second=2, transient=False,
            )  # fmt: skip
            self.task = self.bar.add_task(label, total=total, completed=done, info="")

    def __enter__(self) -> RunProgress:
        if self.bar:
            self.bar.start()
        return self

    def advance(self, n: int = 1, failed: int = 0) -> None:
        if self.bar:
            s = self.runner.stats
            info = f"tokens {s.prompt_tokens + s.completion_tokens:,}  ${s.cost_usd:.4f}  errors {failed}"
            self.bar.update(self.task, advance=n, info=info)

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()
