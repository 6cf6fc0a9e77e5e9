"""Which folders and files a command may create, replace or write into: one rule for all of them.

The project removes or overwrites only what it wrote, and can tell: every output folder it
makes (a build, the figures of ``stats --plots``, the ``annotate --evaluate`` folder) carries
the marker file :data:`MARKER`, JSON naming the command, the kind of output, the version and
the files it wrote. A command may (re)place an output folder only when it is

- missing (its parent is created),
- an empty folder, or
- a folder whose marker has the same kind and which holds nothing but the files the marker lists
  (a file the user added later is never removed: the command refuses and names it).

Anything else is refused with one line naming the folder and what is in it, and nothing is touched.
An output equal to, inside, or containing one of the command's sources (after resolving symbolic
links) is refused too, as is an empty path and a symbolic link as the output itself.

Generated corpora are appended to, never replaced: :func:`claim_corpus` accepts a missing or empty
folder, or a corpus folder (``manifest.json`` of our format, or one of the corpus files).

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "recllmsim"
    >>> claim_output(out, "build") == out.resolve()
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from recllmsim_hf.errors import InputError, StorageError

MARKER = ".recllmsim-output.json"
KINDS: dict[str, str] = {
    "build": "recllmsim build",
    "figures": "recllmsim stats --plots",
    "evaluation": "recllmsim annotate --evaluate",
}
# What makes a folder a corpus that `recllmsim generate` may append to.
CORPUS_FILES = ("manifest.json", "conversations.jsonl", "profiles.jsonl", "scenarios.jsonl")
CORPUS_FORMAT = "recllmsim-corpus"
_SQLITE_HEADER = b"SQLite format 3\x00"

_UMASK = os.umask(0)
os.umask(_UMASK)
# The modes a new folder and a new file get under the process umask (mkdtemp's and mkstemp's are 0700/0600).
DIR_MODE = 0o777 & ~_UMASK
FILE_MODE = 0o666 & ~_UMASK


def read_marker(folder: str | os.PathLike) -> dict | None:
    """The marker of ``folder`` (a dict), or None when there is none or it is not ours."""
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kind") in KINDS else None


def write_marker(folder: str | os.PathLike, kind: str, files: Iterable[str] = (), **info) -> Path:
    """Write the marker of a ``kind`` output into ``folder``; ``files`` are the paths (relative,
    POSIX) the command wrote there. Returns the marker path."""
    from recllmsim_hf import __version__
    from recllmsim_hf.corpus import atomic_write_text

    data = {"written_by": KINDS[kind], "kind": kind, "version": __version__, **info}
    data["files"] = sorted(set(files))
    path = Path(folder) / MARKER
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder`` as a relative POSIX path, the marker left out (see write_marker)."""
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MARKER
    )


def _nonempty(text: str | os.PathLike, flag: str) -> Path:
    raw = os.fspath(text)
    if not raw.strip():
        raise InputError(f"{flag}: must name a folder, but got {raw!r}")
    return Path(raw).expanduser()


def _describe(names: list[str], folder: Path) -> str:
    shown = [n + ("/" if (folder / n).is_dir() else "") for n in names[:4]]
    more = f" and {len(names) - 4} more" if len(names) > 4 else ""
    return ", ".join(shown) + more


def _check_sources(out: Path, resolved: Path, flag: str, sources: Iterable) -> None:
    for source in sources:
        if source is None or "://" in os.fspath(source):
            continue
        src = Path(source).expanduser().resolve()
        if resolved == src or src in resolved.parents:
            raise InputError(
                f"{flag} {out}: is or lies inside the source {src}; pass a folder outside the source"
            )
        if resolved in src.parents:
            raise InputError(f"{flag} {out}: contains the source {src}; pass a folder outside the source")


def _resolve(out: str | os.PathLike, flag: str, sources: Iterable) -> tuple[Path, Path]:
    path = _nonempty(out, flag)
    if path.is_symlink():
        raise InputError(
            f"{flag} {path}: is a symbolic link (to {os.readlink(path)}); pass the real folder instead"
        )
    resolved = path.resolve()
    _check_sources(path, resolved, flag, sources)
    return path, resolved


def _check_writable(path: Path, resolved: Path, flag: str) -> None:
    """A folder to be created needs a writable nearest existing parent (else one line, not a traceback)."""
    parent = next((p for p in resolved.parents if p.exists()), Path("/"))
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: {parent} is a file, not a folder; pass another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        readonly = os.statvfs(parent).f_flag & os.ST_RDONLY
        why = "is on a read-only filesystem" if readonly else "is not writable (permission denied)"
        raise StorageError(f"{flag} {path}: cannot create it, {parent} {why}; pass a writable folder")


def claim_output(out: str | os.PathLike, kind: str, *, flag: str = "--out", sources: Iterable = ()) -> Path:
    """Check that a ``kind`` output may be written at ``out`` (rule in the module docstring).

    Returns the resolved folder; raises :class:`InputError` naming ``out`` and what is in it.

    Example:
        >>> claim_output("/tmp", "build")  # doctest: +SKIP
        InputError: --out /tmp: holds 12 entries recllmsim did not write (a.txt, ...); ...
    """
    path, resolved = _resolve(out, flag, sources)
    if not resolved.exists():
        _check_writable(path, resolved, flag)
        return resolved
    if not resolved.is_dir():
        raise InputError(f"{flag} {path}: exists and is not a folder; pass a new or empty folder")
    entries = sorted(os.listdir(resolved))
    if not entries:
        return resolved
    marker = read_marker(resolved)
    what = KINDS[kind]
    if marker is None:
        raise InputError(
            f"{flag} {path}: holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} that "
            f"`{what}` did not write ({_describe(entries, resolved)}); nothing was changed: "
            "pass a new or empty folder"
        )
    if marker["kind"] != kind:
        raise InputError(
            f"{flag} {path}: was written by `{marker['written_by']}`, not `{what}`; nothing was changed: "
            "pass a new or empty folder"
        )
    if kind == "build":  # a build replaces the whole folder: anything unlisted would be lost
        known = set(marker.get("files") or [])
        foreign = [f for f in files_under(resolved) if f not in known]
        if foreign:
            raise InputError(
                f"{flag} {path}: holds {len(foreign)} file(s) the earlier build did not write "
                f"({', '.join(foreign[:4])}{' ...' if len(foreign) > 4 else ''}); nothing was changed: "
                "move them out or pass another folder"
            )
    return resolved


def claim_corpus(out: str | os.PathLike, *, flag: str = "--out") -> tuple[Path, bool]:
    """Check that ``generate`` may write into ``out``: missing, empty, or a corpus folder.

    Returns ``(folder, existed)``; ``existed`` is False when the folder is still to be created.
    """
    path, resolved = _resolve(out, flag, ())
    if not resolved.exists():
        _check_writable(path, resolved, flag)
        return path, False
    if not resolved.is_dir():
        raise InputError(f"{flag} {path}: is a file, not a folder; pass a corpus folder")
    entries = sorted(os.listdir(resolved))
    if not entries or is_corpus_folder(resolved):
        return path, True
    raise InputError(
        f"{flag} {path}: holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} and is not a "
        f"corpus folder ({_describe(entries, resolved)}); nothing was changed: pass a new or empty "
        "folder, or a corpus folder written by `recllmsim generate`"
    )


def is_corpus_folder(folder: Path) -> bool:
    """Whether ``folder`` is a corpus of ours (its manifest's format, or one of the corpus files)."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text(encoding="utf-8")).get("format") == CORPUS_FORMAT
        except (OSError, ValueError, AttributeError):
            return False
    if any((folder / name).is_file() for name in CORPUS_FILES):
        return True
    return (folder / ".cache" / "llm.sqlite").is_file()


def claim_cache_file(path: str | os.PathLike, *, flag: str = "--cache") -> Path:
    """Check that an LLM response cache may be written at ``path``: missing, empty, or an SQLite file."""
    path = _nonempty(path, flag)
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a folder; pass the path of a cache file (e.g. llm.sqlite)")
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            if f.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                raise InputError(
                    f"{flag} {path}: exists and is not an SQLite response cache; nothing was changed: "
                    "pass a new file path"
                )
    return path
