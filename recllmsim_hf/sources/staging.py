"""Turn any source the user names into a validated corpus folder.

A source is one of: a corpus folder (``conversations.jsonl`` + friends), a
release folder, a release ``.zip`` / ``.tar.gz``, an archive URL, or None for
the pinned release archive. Releases are *staged*: mapped once into a corpus
folder (``recllmsim_hf.sources.release``), so every later step reads one format.

Example:
    >>> corpus = stage_source("../shared/data/recllmsim-release", "/tmp/staged")  # doctest: +SKIP
    >>> (corpus / "conversations.jsonl").exists()  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from recllmsim_hf.corpus import (
    CONVERSATIONS,
    MANIFEST,
    PROFILES,
    SCENARIOS,
    Corpus,
    atomic_write_text,
    dumps,
    write_jsonl,
)
from recllmsim_hf.dataset.configs import MEMO_MAX_BYTES, remember
from recllmsim_hf.errors import InputError, Problem, ValidationFailed
from recllmsim_hf.schema import RELEASE_IMPORTER, TASKS, Manifest


def is_corpus(source: str | os.PathLike | None) -> bool:
    """Whether ``source`` is a corpus folder of ours."""
    return source is not None and Path(source).is_dir() and (Path(source) / CONVERSATIONS).is_file()


def _release_root(source, progress: bool) -> Path:
    from recllmsim_hf.safety import is_corpus_folder

    if source is not None and Path(source).is_dir() and is_corpus_folder(Path(source)):
        raise InputError(
            f"{source}: a corpus folder without {CONVERSATIONS} (nothing to build or check yet); "
            f"generate them first: `recllmsim generate conversations -n 100 --out {shlex.quote(str(source))}`"
        )
    from recllmsim_hf.sources.download import DEFAULT_RELEASE_URL, RELEASE_FILE_COUNT, resolve_release

    # Only the pinned archive has a known content; a user's own copy, fork or subset may differ.
    pinned = source is None or str(source) == DEFAULT_RELEASE_URL
    return resolve_release(source, expected_files=RELEASE_FILE_COUNT if pinned else None, progress=progress)


def stage_source(source: str | os.PathLike | None, workdir: str | os.PathLike, progress: bool = True) -> Path:
    """Validate ``source`` completely and return a corpus folder for it.

    A corpus folder is checked and returned as it is; a release is mapped into
    ``workdir``. Every problem of the source is collected first; if there is
    any, :class:`ValidationFailed` is raised listing them all (nothing is
    written outside ``workdir``).
    """
    problems: list[Problem] = []
    if is_corpus(source):
        corpus = Corpus(source, problems)
        for _ in corpus.iter_conversations():
            pass
        if problems:
            raise ValidationFailed(problems)
        return Path(source)
    from recllmsim_hf.sources.release import ReleaseReader

    reader = ReleaseReader(_release_root(source, progress), problems)
    out = Path(workdir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    n = size = 0
    parsed: list[dict] | None = []
    with open(out / CONVERSATIONS, "w", encoding="utf-8") as f:
        for conv in track(reader.conversations(), len(reader.files), "reading release", progress):
            data = conv.model_dump(mode="json")
            line = dumps(data) + "\n"
            f.write(line)
            n, size = n + 1, size + len(line)
            if parsed is not None and size <= MEMO_MAX_BYTES:
                parsed.append(data)
            else:
                parsed = None
    if problems:
        shutil.rmtree(out)
        raise ValidationFailed(problems)
    if parsed is not None:  # the build's passes over this corpus start from these, not from re-parsing
        remember(out, parsed)
    # profiles and scenarios are complete only once every file was read
    write_jsonl(out / PROFILES, reader.profiles.values())
    write_jsonl(out / SCENARIOS, reader.scenarios.values())
    manifest = Manifest(
        name="RecLLMSim release",
        description="The RecLLMSim release (LLM_agent_user), mapped by the recllmsim release importer",
        created_by=RELEASE_IMPORTER,
        tasks=list(TASKS),
        counts={"profiles": len(reader.profiles), "scenarios": len(reader.scenarios), "conversations": n},
    )
    atomic_write_text(out / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
    return out


def validate_source(source: str | os.PathLike | None) -> tuple[list[Problem], dict[str, int]]:
    """All problems of a source (no output written) and what was read."""
    problems: list[Problem] = []
    counts = {"files": 0, "conversations": 0}
    if is_corpus(source):
        corpus = Corpus(source, problems)
        counts["files"] = sum(1 for p in Path(source).iterdir() if p.suffix in (".jsonl", ".json"))
        counts["conversations"] = sum(1 for _ in corpus.iter_conversations())
        return problems, counts
    from recllmsim_hf.sources.release import ReleaseReader

    reader = ReleaseReader(_release_root(source, True), problems)
    counts["files"] = len(reader.files)
    counts["conversations"] = sum(1 for _ in reader.conversations())
    return problems, counts


def track(items, total: int, label: str, enabled: bool, describe=None):
    """Yield ``items`` under a transient rich progress bar on stderr (nothing when disabled);
    ``describe(item)`` relabels the bar for each item."""
    if not enabled:
        yield from items
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        for item in items:
            if describe is not None:
                bar.update(task, description=describe(item))
            yield item
            bar.advance(task)
