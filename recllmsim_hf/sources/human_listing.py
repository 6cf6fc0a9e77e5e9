"""Which names in the release's human-study folders are conversation files.

A study folder holds ``User_<k>/<任务>/<n>.json`` and nothing else: ``<k>`` and ``<n>`` are numbers
without leading zeros (so two names never give one ``conversation_id``), ``<任务>`` one of the four
task folders (:data:`~recllmsim_hf.human_schema.HUMAN_TASKS`). Every other name is a
:class:`~recllmsim_hf.errors.Problem` with the field ``<listing>`` and the bad name as its value:
``3 (copy).json``, ``notes.txt``, ``Bob/``, ``User_01/``, a folder or broken link named ``4.json``,
a file beside the user or task folders, a folder that cannot be read, and a file standing where a
study folder belongs. Hidden names (``.DS_Store``, ``.git/``) are passed over. (An archive source
brings only the ``.json`` members four levels below a study: ``sources/archive.py``.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from recllmsim_hf.errors import Problem
from recllmsim_hf.human_schema import HUMAN_TASKS, STUDIES

LISTING = "<listing>"  # the field of a problem with a name in the study folders, not a file's content
_USER = re.compile(r"^User_(0|[1-9][0-9]*)$")
_FILE_NAME = re.compile(r"^(0|[1-9][0-9]*)\.json$")


def _kind(path: Path) -> str:
    if path.is_dir():
        return "a folder"
    if path.is_file():
        return "a file"
    return "a pipe, socket or device" if path.exists() else "a broken or looping symbolic link"


def has_studies(tree: Path | None) -> bool:
    """Whether anything stands at a study's name in ``tree`` (a folder, or a file that should be one)."""
    return tree is not None and any((tree / s).exists() or (tree / s).is_symlink() for s in STUDIES)


def study_folders(tree: Path | None, problems: list[Problem] | None = None) -> dict[str, Path]:
    """The human-study folders present in a release tree (the folder holding ``LLM_agent_user/``);
    with ``problems`` given, a file or broken link standing at a study's name is a problem there."""
    if tree is None:
        return {}
    found = {}
    for study in STUDIES:
        path = tree / study
        if path.is_dir():
            found[study] = path
        elif problems is not None and (path.exists() or path.is_symlink()):
            problems.append(Problem(study, LISTING, study, f"{_kind(path)} where the study folder belongs"))
    return found


def _names(folder: Path, rel: str, report) -> list[str]:
    try:
        with os.scandir(folder) as it:  # raises on an unreadable folder, unlike glob
            return sorted(e.name for e in it if not e.name.startswith("."))
    except OSError as e:
        report(Problem(f"{rel}/", LISTING, e.strerror, "cannot read the folder"))
        return []


def human_files(folder: Path, problems: list[Problem] | None = None) -> list[Path]:
    """``User_<k>/<任务>/<n>.json`` of one study, ordered by user number, task folder, then file number.

    Everything else in the study folder is, with ``problems`` given, a problem there (so ``validate``
    lists it and ``build`` refuses; without, it is skipped): a name that is not ``User_<k>`` (``Bob/``,
    ``User_01/``) or a file beside the user folders, a folder in a user folder that is not one of the
    four task folders or a file beside them, a name in a task folder that is not ``<n>.json``
    (``3 (copy).json``, ``notes.txt``), a folder or broken or looping symbolic link named like a
    file, and a folder that cannot be read. Hidden names (``.DS_Store``) are passed over.
    """
    study = folder.name
    report = problems.append if problems is not None else (lambda p: None)
    found: list[tuple[int, str, int, Path]] = []
    for user in _names(folder, study, report):
        path, rel = folder / user, f"{study}/{user}"
        number = _USER.match(user)
        if not path.is_dir():
            report(Problem(rel, LISTING, user, f"{_kind(path)} where only User_<k> folders belong"))
        elif number is None:
            report(
                Problem(f"{rel}/", LISTING, user, "not a user folder name: must be User_<k> (e.g. User_3)")
            )
        else:
            found += [(int(number[1]), task, n, file) for task, n, file in _user_files(path, rel, report)]
    return [file for *_, file in sorted(found)]


def _user_files(folder: Path, rel: str, report) -> Iterator[tuple[str, int, Path]]:
    tasks = list(HUMAN_TASKS)
    for task in _names(folder, rel, report):
        path, trel = folder / task, f"{rel}/{task}"
        if not path.is_dir():
            report(Problem(trel, LISTING, task, f"{_kind(path)} where only the task folders {tasks} belong"))
        elif task not in HUMAN_TASKS:
            report(Problem(f"{trel}/", LISTING, task, f"unknown task folder, must be one of {tasks}"))
        else:
            for name in _names(path, trel, report):
                file, frel = path / name, f"{trel}/{name}"
                if not _FILE_NAME.match(name):
                    why = "not a conversation file name: must be <n>.json (e.g. 12.json)"
                    report(Problem(frel, LISTING, name, why))
                elif not file.is_file():
                    report(Problem(frel, LISTING, name, f"{_kind(file)} where a conversation file belongs"))
                else:
                    yield task, int(name[:-5]), file
