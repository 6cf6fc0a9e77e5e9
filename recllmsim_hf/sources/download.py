"""Turn a release *source* into a local folder of release files (``<task>/<n>.json``).

A source is a folder (the task folders' parent, or anything above an
``LLM_agent_user/`` folder), a ``.zip`` / ``.tar.gz`` of the RecLLMSim repository,
or such an archive's http(s) URL; ``None`` means the pinned release archive.

Cache layout (``default_cache_dir()``, or ``cache_dir=``)::

    downloads/<sha256(url)[:16]>-<basename>    the archive as served
    extracted/<sha256(archive bytes)>/<task>/<n>.json    its LLM_agent_user/*/*.json
    companions/<sha256(archive bytes)>/<study>/...      its human studies and user_profiling/

Each entry appears through one rename of a complete, fsynced temporary file or
folder named ``.tmp-<pid>-...``, so a kill at any moment leaves either no entry or a
whole one; temporaries of dead processes are removed on the next run. An entry that
fails verification is deleted before the error is raised.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

from recllmsim_hf import __version__
from recllmsim_hf.errors import InputError, RecLLMSimError, ServiceError
from recllmsim_hf.sources.archive import (
    CHUNK_BYTES,
    RELEASE_FOLDER,
    STUDY_FOLDERS,
    VOCABULARY_MEMBER,
    archive_kind,
    extract_release,
)

DEFAULT_RELEASE_URL = (
    "https://github.com/wzf2000/RecLLMSim/archive/d680f2f9d5b8caba6174b4deeef854ea4a8f4b20.zip"
)
RELEASE_REPO = "https://github.com/wzf2000/RecLLMSim"
RELEASE_TASK_FOLDERS: tuple[str, ...] = (
    "travel planning",
    "new travel planning",
    "skills learning planning",
    "recipe planning",
    "preparing gifts",
)
RELEASE_FILE_COUNT = 1856

MAX_TRIES = 5
BACKOFF_SECONDS = 1.0  # wait before try k+1 is BACKOFF_SECONDS * 2**(k-1), at most 30 s
TIMEOUT_SECONDS = 60.0
STALE_TEMP_SECONDS = 24 * 3600
# errnos that mean "the cache folder is the problem", never the network or the archive
_LOCAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def default_cache_dir() -> Path:
    """$RECLLMSIM_CACHE if set, else $XDG_CACHE_HOME/recllmsim, else ~/.cache/recllmsim.

    Example:
        >>> default_cache_dir()  # with RECLLMSIM_CACHE=/data/rc  # doctest: +SKIP
        PosixPath('/data/rc')
    """
    if os.environ.get("RECLLMSIM_CACHE"):
        return Path(os.environ["RECLLMSIM_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "recllmsim"
    return Path.home() / ".cache" / "recllmsim"


def resolve_release(
    source: str | os.PathLike | None,
    *,
    cache_dir: Path | None = None,
    expected_files: int | None = RELEASE_FILE_COUNT,
    progress: bool = True,
) -> Path:
    """Return the local folder that directly contains the task folders (``<task>/<n>.json``).

    ``expected_files`` is the exact number of ``<task>/*.json`` files the release must
    hold (``None``: any number, at least one task folder with files). For the default
    URL all of :data:`RELEASE_TASK_FOLDERS` must be present too. Folders are read in
    place; archives and URLs go through the cache (see the module docstring).

    Example:
        >>> root = resolve_release("RecLLMSim-main.zip", expected_files=None)  # doctest: +SKIP
        >>> sorted(p.name for p in root.iterdir())[:2]  # doctest: +SKIP
        ['new travel planning', 'preparing gifts']
    """
    text = DEFAULT_RELEASE_URL if source is None else os.fspath(source)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if re.match(r"(?i)https?://", text):
        return _resolve_url(text, cache, expected_files, progress)
    if "://" in text:
        raise InputError(
            f"{_display_url(text)}: unsupported URL scheme; pass an http(s) URL, a release folder or archive"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        root = _find_release_root(path)
        _verify(root, str(path), expected_files, all_tasks=False, hint="pass the complete release folder")
        return root
    if path.is_file():
        root = _extract(path, cache, str(path))
        _verify_or_drop(root, None, str(path), expected_files, all_tasks=False)
        return root
    raise InputError(
        f"{path}: no such file or folder; pass a release folder, a .zip/.tar.gz archive or an http(s) URL"
    )


# -- folders -------------------------------------------------------------------------------------------


def _task_counts(root: Path) -> dict[str, int]:
    """Task folder name -> number of ``*.json`` files directly in it (folders without any left out)."""
    counts = {}
    try:
        for task in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if n := sum(1 for f in task.glob("*.json") if not f.name.startswith(".") and f.is_file()):
                counts[task.name] = n
    except OSError:
        pass
    return counts


def _find_release_root(folder: Path) -> Path:
    if (folder / RELEASE_FOLDER).is_dir():
        return folder / RELEASE_FOLDER
    # the companions of LLM_agent_user/ are never task folders (user_profiling/ holds one *.json)
    companions = [name for name in (*STUDY_FOLDERS, VOCABULARY_MEMBER[0]) if (folder / name).is_dir()]
    if set(_task_counts(folder)) - set(companions):
        return folder
    # e.g. a folder holding an unpacked archive: <folder>/RecLLMSim-<sha>/LLM_agent_user
    found = [p for pattern in ("*", "*/*") for p in sorted(folder.glob(f"{pattern}/{RELEASE_FOLDER}"))]
    found = [p for p in found if p.is_dir()]
    if len(found) == 1:
        return found[0]
    if found:
        raise InputError(
            f"{folder}: holds several {RELEASE_FOLDER}/ folders ({found[0]}, {found[1]}); pass one"
        )
    from recllmsim_hf.safety import read_marker

    marker = read_marker(folder)
    if marker is not None and marker.get("kind") == "build":
        raise InputError(
            f"{folder}: a folder written by `recllmsim build` (parquet shards and a card), not a release "
            "or corpus; pass the release or corpus it was built from"
        )
    single = any(not f.name.startswith(".") for f in folder.glob("*.json"))  # not our hidden marker
    raise InputError(
        f"{folder}: not a RecLLMSim release (no {RELEASE_FOLDER}/<task>/<n>.json nor <task>/<n>.json"
        + (" — this looks like one task folder" if single else "")
        + (
            f" — it holds {', '.join(f'{c}/' for c in companions)} but no {RELEASE_FOLDER}/"
            if companions
            else ""
        )
        + f"); pass the repository folder, its {RELEASE_FOLDER}/ folder or its archive"
    )


def _verify(root: Path, label: str, expected: int | None, *, all_tasks: bool, hint: str) -> None:
    counts = _task_counts(root)
    missing = [t for t in RELEASE_TASK_FOLDERS if t not in counts] if all_tasks else []
    total = sum(counts.values())
    if counts and not missing and (expected is None or total == expected):
        return
    found = ", ".join(f"{name} {n}" for name, n in counts.items()) or "no task folder with *.json files"
    want = f"{expected:,} conversation files" if expected is not None else "conversation files"
    if missing:
        want += " in the task folders " + ", ".join(repr(t) for t in RELEASE_TASK_FOLDERS)
    raise InputError(f"{label}: expected {want} (<task>/<n>.json), but found {total:,} ({found}); {hint}")


def _verify_or_drop(root: Path, download: Path | None, label: str, expected: int | None, *, all_tasks: bool):
    hint = "removed the cached copy; run again to re-download, or pass --source PATH"
    if download is None:
        hint = "removed the extracted copy; pass the complete repository archive"
    try:
        _verify(root, label, expected, all_tasks=all_tasks, hint=hint)
    except InputError:
        shutil.rmtree(root, ignore_errors=True)
        if download is not None:
            download.unlink(missing_ok=True)
        raise


# -- cache ---------------------------------------------------------------------------------------------


def _prepare(folder: Path) -> Path:
    """Create a cache sub-folder and remove temporaries left by dead processes."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cache_error(folder, e) from None
    now = time.time()
    for entry in folder.glob(".tmp-*"):
        try:
            pid = int(entry.name.split("-")[1])
            stale = not _alive(pid) or now - entry.lstat().st_mtime > STALE_TEMP_SECONDS
        except (ValueError, IndexError, OSError):
            continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # PermissionError: alive, someone else's
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def _cache_error(path: Path, e: OSError) -> RecLLMSimError:
    return RecLLMSimError(
        f"{path}: cannot write the cache ({e.strerror or e}); free some space or set RECLLMSIM_CACHE "
        "to a writable folder"
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # works for files too
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file, then every folder, of ``root``: 16 at a time (one by one is ~3x slower)."""
    from concurrent.futures import ThreadPoolExecutor

    files = [p for p in root.rglob("*") if p.is_file()]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(_fsync_dir, files))
        list(pool.map(_fsync_dir, [*(p for p in root.rglob("*") if p.is_dir()), root]))


# -- URLs ----------------------------------------------------------------------------------------------


def _display_url(url: str) -> str:
    """The URL without user:password@ and with the query hidden (neither is ours to print)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


def _download_path(url: str, cache: Path) -> Path:
    base = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rpartition("/")[2])
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")[:100] or "archive"
    return cache / "downloads" / f"{hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]}-{base}"


def _resolve_url(url: str, cache: Path, expected: int | None, progress: bool) -> Path:
    label = _display_url(url)
    archive = _download_path(url, cache)
    cached = archive.is_file()
    while True:
        if not archive.is_file():
            _download(url, archive, label, progress)
        try:
            root = _extract(archive, cache, label)
            break
        except InputError:
            archive.unlink(missing_ok=True)
            if not cached:
                raise
            cached = False  # the cached copy went bad: fetch it once more
    _verify_or_drop(root, archive, label, expected, all_tasks=url == DEFAULT_RELEASE_URL)
    return root


class _Truncated(Exception):
    pass


def _download(url: str, dest: Path, label: str, progress: bool) -> None:
    """Fetch ``url`` into ``dest`` (temp file + fsync + rename), retrying transient failures."""
    folder = _prepare(dest.parent)
    last = ""
    with _progress_bar(progress) as bar:
        task = bar.add_task(f"downloading {dest.name.partition('-')[2]}", total=None) if bar else None
        for attempt in range(1, MAX_TRIES + 1):
            if attempt > 1:
                time.sleep(min(BACKOFF_SECONDS * 2 ** (attempt - 2), 30.0))
            fd, tmp = tempfile.mkstemp(prefix=f".tmp-{os.getpid()}-", suffix=".part", dir=folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    _fetch_once(url, f, bar, task)
                os.replace(tmp, dest)
                _fsync_dir(folder)
                return
            except urllib.error.HTTPError as e:
                e.close()
                last = f"HTTP {e.code} {e.reason}"
                if e.code < 500 and e.code != 429:
                    refused = f"{label}: download refused ({last}); check the URL or pass --source PATH"
                    raise ServiceError(refused) from None
            except OSError as e:
                if e.errno in _LOCAL_ERRNOS:
                    raise _cache_error(folder, e) from None
                if isinstance(getattr(e, "reason", None), socket.gaierror):
                    raise _no_dns(url, label, e.reason) from None  # retrying cannot help: no network
                last = str(getattr(e, "reason", None) or e) or type(e).__name__
            except (http.client.HTTPException, _Truncated) as e:
                last = str(e) or type(e).__name__
            finally:
                Path(tmp).unlink(missing_ok=True)
    raise ServiceError(
        f"{label}: download failed after {MAX_TRIES} tries (last error: {' '.join(last.split())}); "
        "check your connection or pass --source PATH"
    )


def _no_dns(url: str, label: str, error: socket.gaierror) -> ServiceError:
    """The host name does not resolve (offline, no DNS): say where the release comes from instead."""
    host = urllib.parse.urlsplit(url).hostname or url
    cause = error.strerror or str(error)
    if url == DEFAULT_RELEASE_URL:
        advice = (
            f"the release is the archive {url} of {RELEASE_REPO}; download it where there is a network "
            "and run `recllmsim build --source PATH` with the .zip or its unpacked folder"
        )
    else:
        advice = "check the host name, or download the file elsewhere and pass --source PATH"
    return ServiceError(f"{label}: cannot resolve {host} ({cause}): no network or DNS here; {advice}")


def _fetch_once(url: str, f, bar, task) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": f"recllmsim/{__version__}"})
    # a fresh opener reads HTTP(S)_PROXY / NO_PROXY now, as urllib does (urlopen caches its first opener)
    with urllib.request.build_opener().open(request, timeout=TIMEOUT_SECONDS) as response:
        length = response.headers.get("Content-Length", "").strip()
        expected = int(length) if length.isdigit() else None
        if bar:
            bar.reset(task, total=expected)
        got = 0
        while chunk := response.read(CHUNK_BYTES):
            f.write(chunk)
            got += len(chunk)
            if bar:
                bar.advance(task, len(chunk))
    # http.client returns a short body silently when the server closes early
    if expected is not None and got != expected:
        raise _Truncated(f"truncated body, {got:,} of {expected:,} bytes")
    f.flush()
    os.fsync(f.fileno())


@contextmanager
def _progress_bar(enabled: bool):
    """A rich byte-progress display on stderr, or None."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        yield bar


# -- archives ------------------------------------------------------------------------------------------


def resolve_tree(source: str | os.PathLike | None, *, cache_dir: Path | None = None) -> Path | None:
    """The folder holding the release's companions of ``LLM_agent_user/`` (the human studies and
    ``user_profiling/``), or None when the source names only the conversations' folder.

    Call after :func:`resolve_release` verified the source (a URL is not fetched again). A folder
    source gives the folder that holds its ``LLM_agent_user/``; an archive gives its extracted
    companions in the cache (an empty folder when it has none).
    """
    text = DEFAULT_RELEASE_URL if source is None else os.fspath(source)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if re.match(r"(?i)https?://", text):
        return _extract(_download_path(text, cache), cache, _display_url(text), companions=True)
    path = Path(text).expanduser()
    if path.is_file():
        return _extract(path, cache, str(path), companions=True)
    root = _find_release_root(path)
    return root.parent if root.name == RELEASE_FOLDER and root != path else None


def _extract(archive: Path, cache: Path, label: str, companions: bool = False) -> Path:
    """Extract the release files of ``archive`` into ``cache/extracted/<sha256>`` (reused when present);
    with ``companions``, its human studies and profile vocabulary into ``cache/companions/<sha256>``."""
    try:
        kind = archive_kind(archive)
        with open(archive, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise InputError(f"{label}: cannot read ({e.strerror or e}); check the path") from None
    if kind is None:
        raise InputError(
            f"{label}: not a .zip/.tar.gz archive nor a folder; pass a release folder or archive"
        )
    folder = _prepare(cache / ("companions" if companions else "extracted"))
    final = folder / digest
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=folder))
    try:
        if not extract_release(archive, kind, tmp, label, companions) and not companions:
            raise InputError(
                f"{label}: holds no {RELEASE_FOLDER}/<task>/<n>.json files; pass the repository archive"
            )
        _fsync_tree(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
        _fsync_dir(folder)
        return final
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError) as e:
        if isinstance(e, OSError) and e.errno in _LOCAL_ERRNOS:
            raise _cache_error(folder, e) from None
        reason = " ".join(str(e).split()) or type(e).__name__
        raise InputError(
            f"{label}: corrupt {kind} archive ({reason}); fetch it again or pass another --source"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
