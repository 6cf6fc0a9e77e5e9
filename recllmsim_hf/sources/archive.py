"""Reading release archives: which members are release files, and extracting them safely.

Only ``.../LLM_agent_user/<task>/<n>.json`` members are taken; a member with an absolute path,
a drive letter or ``..`` makes the whole archive unsafe. The download cache (``download.py``)
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
CHUNK_BYTES = 1 << 20


def archive_kind(path: Path) -> str | None:
    """Return "zip" or "tar" by the magic bytes, else by the name (so that a corrupt archive says so)."""
    with open(path, "rb") as f:
        head, name = f.read(2), path.name.lower()
    if head == b"PK" or (head != b"\x1f\x8b" and name.endswith(".zip")):
        return "zip"
    return "tar" if head == b"\x1f\x8b" or name.endswith((".tar.gz", ".tgz", ".tar")) else None


def _select(names: list[str], label: str) -> dict[str, str]:
    """Map the archive's ``.../LLM_agent_user/<task>/<n>.json`` member names to ``<task>/<n>.json``."""
    picked: dict[str, tuple[str, str]] = {}
    for name in names:
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
            raise InputError(f"{label}: member {name!r} has an unsafe path; this is not a release archive")
        if RELEASE_FOLDER not in parts or not name.endswith(".json"):
            continue
        i = parts.index(RELEASE_FOLDER)
        if len(parts) - i == 3 and not any(p.startswith(".") or p == "__MACOSX" for p in parts):
            picked[name] = ("/".join(parts[:i]), "/".join(parts[i + 1 :]))
    prefixes = sorted({prefix for prefix, _ in picked.values()})
    if len(prefixes) > 1:
        raise InputError(
            f"{label}: holds several {RELEASE_FOLDER}/ folders ({prefixes[0]!r}, {prefixes[1]!r}); "
            "pass an archive with one copy of the release"
        )
    return {name: rel for name, (_, rel) in picked.items()}


def extract_release(archive: Path, kind: str, into: Path, label: str) -> int:
    """Extract the release members of ``archive`` (``kind`` "zip" or "tar") into ``into``; their count."""
    return (_extract_zip if kind == "zip" else _extract_tar)(archive, into, label)


def _extract_zip(archive: Path, into: Path, label: str) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        selected = _select(list(infos), label)
        for name, rel in sorted(selected.items(), key=lambda kv: kv[1]):
            (into / rel).parent.mkdir(exist_ok=True)
            with zf.open(infos[name]) as src, open(into / rel, "xb") as out:  # bad CRC: BadZipFile
                shutil.copyfileobj(src, out, CHUNK_BYTES)
    return len(selected)


def _extract_tar(archive: Path, into: Path, label: str) -> int:
    with tarfile.open(archive, "r:*") as tf:
        members = [m for m in tf.getmembers() if m.isreg()]
        selected = _select([m.name for m in members], label)
        for member in members:
            if member.name in selected:
                renamed = member.replace(name=selected[member.name], deep=False)
                tf.extract(renamed, into, set_attrs=False, filter="data")
    return len(selected)
