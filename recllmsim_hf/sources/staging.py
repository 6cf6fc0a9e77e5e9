"""Turn any source the user names into a validated corpus folder.

A source is one of: a corpus folder (``conversations.jsonl`` + friends), a
release folder, a release ``.zip`` / ``.tar.gz``, an archive URL, or None for
the pinned release archive. Releases are *staged*: mapped once into a corpus
folder (``recllmsim_hf.sources.release``), so every later step reads one format.
When the release tree also holds the human studies and ``user_profiling/``
(``recllmsim_hf.sources.human``), they are staged beside it (``human_*.jsonl``,
``profile_vocabulary.json``); a source with only ``LLM_agent_user/`` stages as before.

Example:
    >>> corpus = stage_source("../shared/data/recllmsim-release", "/tmp/staged")  # doctest: +SKIP
    >>> (corpus / "conversations.jsonl").exists()  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from functools import partial
from pathlib import Path

from pydantic_core import from_json, to_json

from recllmsim_hf.corpus import (
    CONVERSATIONS,
    HUMAN_CONVERSATIONS,
    MANIFEST,
    PEOPLE,
    PROFILE_VOCABULARY,
    PROFILES,
    SCENARIOS,
    Corpus,
    atomic_write_text,
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


def _human_reader(source, problems: list[Problem]):
    """The reader of the source's human studies and profile vocabulary, or None if it has neither
    (call after :func:`_release_root`, which fetched and verified the source)."""
    from recllmsim_hf.sources.download import DEFAULT_RELEASE_URL, resolve_tree
    from recllmsim_hf.sources.human import HumanReader
    from recllmsim_hf.sources.human_listing import has_studies
    from recllmsim_hf.sources.profiles import VOCABULARY_FILE

    tree = resolve_tree(source)
    if source is None or str(source) == DEFAULT_RELEASE_URL:  # the pinned archive's content is known
        check_pinned_human(tree)
    # a file where a study folder belongs is read too: the reader reports it
    if tree is None or not (has_studies(tree) or (tree / VOCABULARY_FILE).is_file()):
        return None
    return HumanReader(tree, problems)


def source_vocabulary(source) -> dict[str, list[str]] | None:
    """The profile vocabulary (attribute -> English names) of a release source, None without one.

    For the builder's features before anything is staged; a bad vocabulary raises
    :class:`ValidationFailed` as staging would.
    """
    from recllmsim_hf.sources.download import resolve_tree
    from recllmsim_hf.sources.profiles import VOCABULARY_FILE, read_vocabulary

    _release_root(source, progress=False)
    tree = resolve_tree(source)
    if tree is None or not (tree / VOCABULARY_FILE).is_file():
        return None
    problems: list[Problem] = []
    vocabulary = read_vocabulary(tree, problems)
    if problems:
        raise ValidationFailed(problems)
    return {name: list(values.values()) for name, values in vocabulary.items()}


def check_pinned_human(tree: Path | None) -> None:
    """The pinned archive must hold both human studies with their known file counts and the vocabulary."""
    from recllmsim_hf.sources.download import DEFAULT_RELEASE_URL
    from recllmsim_hf.sources.human import PINNED_HUMAN_FILES
    from recllmsim_hf.sources.human_listing import human_files, study_folders
    from recllmsim_hf.sources.profiles import VOCABULARY_FILE

    found = {study: len(human_files(folder)) for study, folder in study_folders(tree).items()}
    if found != PINNED_HUMAN_FILES or tree is None or not (tree / VOCABULARY_FILE).is_file():
        raise InputError(
            f"{DEFAULT_RELEASE_URL}: expected the human studies {PINNED_HUMAN_FILES} and "
            f"{VOCABULARY_FILE}, but found {found}; delete the cached download and run again"
        )


def _line(data: dict) -> bytes:
    """One line of a staged corpus file. A build reads the parsed records it kept, not these lines
    (they are read back only for corpora too large to keep): pydantic's serializer, about twice as
    fast as the canonical ``dumps`` of generated corpora, with the same content."""
    return to_json(data) + b"\n"


def _human_pass(human, path: Path | None, progress: bool = False) -> tuple:
    """Read every human conversation, writing each as a line of ``path`` when given; returns the
    count, the problems found, the vocabulary and the people (runs in a child or here)."""
    shared, human.problems = human.problems, []  # the caller adds them: in a child it cannot
    f = open(path, "wb") if path is not None else None
    n = 0
    try:
        for conv in track(human.conversations(), len(human.files), "reading human studies", progress):
            if f is not None:
                f.write(type(conv).__pydantic_serializer__.to_json(conv) + b"\n")
            n += 1
        return n, human.problems, human.vocabulary, human.people
    finally:
        human.problems = shared
        if f is not None:
            f.close()


def _read_human(
    human, profiles: dict, problems: list[Problem], progress: bool, out: Path | None = None, job=None
):
    """Read every human conversation (into ``out/human_conversations.jsonl`` when given; by ``job``,
    a :class:`~recllmsim_hf.sources.beside.Beside`, when it was started) and check the synthetic
    ``profiles`` against the vocabulary; returns the number of conversations."""
    from recllmsim_hf.dataset.human_configs import remember_human
    from recllmsim_hf.sources.profiles import check_synthetic

    path = out / HUMAN_CONVERSATIONS if out is not None and human.files else None
    if job is not None:
        n, found, human.vocabulary, human.people = job.result()
    else:
        n, found, _, _ = _human_pass(human, path, progress)
    problems.extend(found)
    if path is not None and not problems:  # the build's passes start from these, not from re-parsing
        with open(path, "rb") as f:
            remember_human(out, [from_json(line, cache_strings="keys") for line in f])
    if human.vocabulary is not None:
        for profile in profiles.values():
            where = f"LLM_agent_user (profile {profile.profile_id})"
            check_synthetic(profile, human.vocabulary, where, problems)
    return n


def _write_human(human, out: Path) -> None:
    if human.files:
        write_jsonl(out / PEOPLE, human.people.values())
    pairs = {name: [[zh, en] for zh, en in values.items()] for name, values in human.vocabulary.items()}
    atomic_write_text(out / PROFILE_VOCABULARY, json.dumps(pairs, ensure_ascii=False, indent=1) + "\n")


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
        for _ in corpus.iter_human():
            pass
        if problems:
            raise ValidationFailed(problems)
        return Path(source)
    from recllmsim_hf.sources.release import ReleaseReader

    reader = ReleaseReader(_release_root(source, progress), problems)
    human = _human_reader(source, problems)
    out = Path(workdir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    n = size = 0
    parsed: list[dict] | None = []
    job = None
    if human is not None and human.files:  # the human studies in a child, beside the release
        from recllmsim_hf.sources.beside import Beside

        job = Beside(
            partial(_human_pass, human, out / HUMAN_CONVERSATIONS),
            out / "_human.pickle",
            fallback=partial(_human_pass, human, out / HUMAN_CONVERSATIONS, progress),
        )
    try:
        with open(out / CONVERSATIONS, "wb") as f:
            for conv in track(reader.conversations(), len(reader.files), "reading release", progress):
                data = conv.model_dump(mode="json")
                line = _line(data)
                f.write(line)
                n, size = n + 1, size + len(line)
                if parsed is not None and size <= MEMO_MAX_BYTES:
                    parsed.append(data)
                else:
                    parsed = None
        n_human = 0 if human is None else _read_human(human, reader.profiles, problems, progress, out, job)
    finally:
        if job is not None:
            job.close()
    if problems:
        shutil.rmtree(out)
        raise ValidationFailed(problems)
    if parsed is not None:  # the build's passes over this corpus start from these, not from re-parsing
        remember(out, parsed)
    # profiles and scenarios are complete only once every file was read
    write_jsonl(out / PROFILES, reader.profiles.values())
    write_jsonl(out / SCENARIOS, reader.scenarios.values())
    counts = {"profiles": len(reader.profiles), "scenarios": len(reader.scenarios), "conversations": n}
    what = "LLM_agent_user"
    if human is not None:
        _write_human(human, out)
        if human.files:
            counts |= {"human_conversations": n_human, "human_people": len(human.people)}
            what += ", real_human_user, human_exp_V2"
    manifest = Manifest(
        name="RecLLMSim release",
        description=f"The RecLLMSim release ({what}), mapped by the recllmsim release importer",
        created_by=RELEASE_IMPORTER,
        tasks=list(TASKS),
        counts=counts,
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
        if n_human := sum(1 for _ in corpus.iter_human()):
            counts["human_conversations"] = n_human
        return problems, counts
    from recllmsim_hf.sources.release import ReleaseReader

    reader = ReleaseReader(_release_root(source, True), problems)
    counts["files"] = len(reader.files)
    counts["conversations"] = sum(1 for _ in reader.conversations())
    human = _human_reader(source, problems)
    if human is not None:
        counts["files"] += len(human.files) + 1  # and the vocabulary
        counts["human_conversations"] = _read_human(human, reader.profiles, problems, False)
    return problems, counts


def track(items, total: int, label: str, enabled: bool, describe=None):
    """Yield ``items`` under a transient rich progress bar on stderr (nothing when disabled, or when
    stderr is no terminal: a transient bar would leave blank lines in a log); ``describe(item)``
    relabels the bar."""
    from rich.console import Console

    console = Console(stderr=True)  # stdout is the command's output (--json): never a bar there
    if not enabled or not console.is_terminal:
        yield from items
        return
    from rich.progress import Progress

    with Progress(transient=True, console=console) as bar:
        task = bar.add_task(label, total=total)
        for item in items:
            if describe is not None:
                bar.update(task, description=describe(item))
            yield item
            bar.advance(task)
