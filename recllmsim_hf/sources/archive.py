"""Reading release archives: which members are release files, and extracting them safely.

Only ``.../LLM_agent_user/<task>/<n>.json`` members are taken as the release; its companions
(:func:`extract_companions`) are the human studies ``.../<study>/User_<k>/<任务>/<n>.json`` and
``.../user_profiling/desc_translated.json`` beside it. A member with an absolute path, a drive
letter or ``..`` makes the whole archive unsafe. The download cache (``download.py``)
decides where the files go and makes them appear atomically.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import zipfile
from pathlib import Path

from recllmsim_hf.errors import InputError

RELEASE_FOLDER = "LLM_agent_user"
# Folders beside LLM_agent_user that the release's other configs read (see sources/human.py).
STUDY_FOLDERS: tuple[str, ...] = ("real_human_user", "human_exp_V2")
VOCABULARY_MEMBER = ("user_profiling", "desc_translated.json")
CHUNK_BYTES = 1 << 20


def archive_kind(path: Path) -> str | None:
    """Return "zip" or "tar" by the magic bytes, else by the name (so that a corrupt archive says so)."""
    with open(path, "rb") as f:
        head, name = f.read(2), path.name.lower()
    if head == b"PK" or (head != b"\x1f\x8b" and name.endswith(".zip")):
        return "zip"
    return "tar" if head == b"\x1f\x8b" or name.endswith((".tar.gz", ".tgz", ".tar")) else None


def _parts(name: str, label: str) -> list[str]:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
        raise InputError(f"{label}: member {name!r} has an unsafe path; this is not a release archive")
    return parts


def _hidden(parts: list[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _select(names: list[str], label: str) -> dict[str, str]:
    """Map the archive's ``.../LLM_agent_user/<task>/<n>.json`` member names to ``<task>/<n>.json``."""
    picked: dict[str, tuple[str, str]] = {}
    for name in names:
        parts = _parts(name, label)
        if RELEASE_FOLDER not in parts or not name.endswith(".json"):
            continue
        i = parts.index(RELEASE_FOLDER)
        if len(parts) - i == 3 and not _hidden(parts):
            picked[name] = ("/".join(parts[:i]), "/".join(parts[i + 1 :]))
    return _one_copy(picked, label)


def _one_copy(picked: dict[str, tuple[str, str]], label: str) -> dict[str, str]:
    prefixes = sorted({prefix for prefix, _ in picked.values()})
    if len(prefixes) > 1:
        raise InputError(
            f"{label}: holds several {RELEASE_FOLDER}/ folders ({prefixes[0]!r}, {prefixes[1]!r}); "
            "pass an archive with one copy of the release"
        )
    return {name: rel for name, (_, rel) in picked.items()}


def _select_companions(names: list[str], label: str) -> dict[str, str]:
    """Map ``.../<study>/User_<k>/<任务>/<n>.json`` and ``.../user_profiling/desc_translated.json``
    member names to their paths below the release's top folder."""
    picked: dict[str, tuple[str, str]] = {}
    for name in names:
        parts = _parts(name, label)
        if not name.endswith(".json") or _hidden(parts):
            continue
        for i, part in enumerate(parts):
            study = part in STUDY_FOLDERS and len(parts) - i == 4
            if study or tuple(parts[i:]) == VOCABULARY_MEMBER:
                picked[name] = ("/".join(parts[:i]), "/".join(parts[i:]))
                break
    return _one_copy(picked, label)


def extract_release(archive: Path, kind: str, into: Path, label: str, companions: bool = False) -> int:
    """Extract the release members of ``archive`` (``kind`` "zip" or "tar") into ``into``; their count.

    With ``companions``, extract the human studies and the profile vocabulary instead (their
    folders keep their names: ``into/real_human_user/User_0/...``)."""
    select = _select_companions if companions else _select
    return (_extract_zip if kind == "zip" else _extract_tar)(archive, into, label, select)


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The member's name. Zips made by Info-ZIP, macOS or Windows often store UTF-8 names without
    the UTF-8 flag, which zipfile then decodes as cp437 (``旅行规划`` would read ``µùàΦíîΦºäσêÆ``)."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.filename


def _extract_zip(archive: Path, into: Path, label: str, select) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = {_zip_name(i): i for i in zf.infolist() if not i.is_dir()}
        selected = select(list(infos), label)
        for name, rel in sorted(selected.items(), key=lambda kv: kv[1]):
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            with zf.open(infos[name]) as src, open(into / rel, "xb") as out:  # bad CRC: BadZipFile
                shutil.copyfileobj(src, out, CHUNK_BYTES)
    return len(selected)


def _extract_tar(archive: Path, into: Path, label: str, select) -> int:
    with tarfile.open(archive, "r:*") as tf:
        members = [m for m in tf.getmembers() if m.isreg()]
        selected = select([m.name for m in members], label)
        for member in members:
            if member.name in selected:
                renamed = member.replace(name=selected[member.name], deep=False)
                tf.extract(renamed, into, set_attrs=False, filter="data")
    return len(selected)
