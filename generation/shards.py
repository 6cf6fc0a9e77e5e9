"""``--shard K/N``: a deterministic 1/N slice of a plan, so N machines fill N corpus folders.

Item ``x`` belongs to shard ``int(sha256(id)[:16], 16) % N`` (``K`` counts from 0, as SLURM
array indexes and Kubernetes completion indexes do). Every item lands in exactly one shard, the
slice of an item never depends on the others, and the union of the N shards is the unsharded
plan (``recllmsim build --source A --source B ...`` puts the corpora back together).

Example:
    >>> s = Shard.parse("1/3")
    >>> [x for x in ["a", "b", "c", "d", "e"] if s.holds(x)]
    ['a', 'b']
    >>> sorted(x for k in range(3) for x in Shard(k, 3).select(["a", "b", "c", "d", "e"]))
    ['a', 'b', 'c', 'd', 'e']
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from recllmsim_hf.errors import InputError

_FORM = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_of(ident: str, count: int) -> int:
    """The shard (0 .. count-1) that ``ident`` belongs to."""
    return int(hashlib.sha256(ident.encode("utf-8")).hexdigest()[:16], 16) % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``index`` from 0)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` with 0 <= K < N, else a one-line error naming the flag and the value."""
        match = _FORM.match(str(text))
        if not match:
            raise InputError(f"--shard: must look like K/N (e.g. 0/4), but got {text!r}")
        index, count = int(match[1]), int(match[2])
        if count < 1 or index >= count:
            raise InputError(f"--shard: K must be 0 .. N-1 and N at least 1, but got {text!r}")
        return cls(index, count)

    def holds(self, ident: str) -> bool:
        return shard_of(ident, self.count) == self.index

    def select(self, items: Iterable, key: Callable = str) -> list:
        """The items of this shard, in their order."""
        return [item for item in items if self.holds(key(item))]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


SHARD_MARKER = ".recllmsim-shard.json"


def shard_corpus(source: str | os.PathLike, out: str | os.PathLike, shard: Shard) -> Path:
    """Copy shard ``shard`` of a corpus's conversations into ``out`` (profiles, scenarios and the
    manifest whole), for ``recllmsim annotate --shard K/N --out DIR``; a rerun reuses ``out``.

    The copy is marked (``.recllmsim-shard.json``, written last) so a folder of something else is
    never written into, and a rerun with another source or shard is refused.
    """
    from recllmsim_hf.corpus import CONVERSATIONS, MANIFEST, PROFILES, SCENARIOS, atomic_write_text

    source, out = Path(source), Path(out)
    mark = {"source": str(source.resolve()), "shard": str(shard)}
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        marker = out / SHARD_MARKER
        if not marker.is_file():
            raise InputError(
                f"--out {out}: exists and is not a shard copy of this command; pass a new folder"
            )
        found = json.loads(marker.read_text(encoding="utf-8"))
        if found != mark:
            raise InputError(
                f"--out {out}: holds shard {found.get('shard')} of {found.get('source')}, not shard {shard} "
                f"of {mark['source']}; pass another folder"
            )
        return out
    out.mkdir(parents=True, exist_ok=True)
    kept = []
    with open(source / CONVERSATIONS, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                ident = json.loads(line)["conversation_id"]
            except (ValueError, KeyError, TypeError):
                raise InputError(
                    f"{source / CONVERSATIONS}:{number}: not a conversation record; run `recllmsim validate`"
                ) from None
            if shard.holds(ident):
                kept.append(line if line.endswith("\n") else line + "\n")
    atomic_write_text(out / CONVERSATIONS, "".join(kept))
    for name in (PROFILES, SCENARIOS, MANIFEST):
        if (source / name).is_file():
            atomic_write_text(out / name, (source / name).read_text(encoding="utf-8"))
    atomic_write_text(out / SHARD_MARKER, json.dumps(mark, sort_keys=True) + "\n")
    return out
