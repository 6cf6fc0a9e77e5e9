"""One corpus from several: ``recllmsim build --source A --source B ...``.

The usual case is N shards of one run (``generate conversations --shard K/N`` on N machines),
whose union is the unsharded plan; any corpora of the same schema merge the same way:

- conversations, profiles and scenarios are taken by id, in source order; a record that comes
  again with the same content (the profiles and scenarios every shard shares) is kept once;
- a record that comes again with *other* content is a conflict: nothing is built and the error
  names the kind, the first ids and the two sources.

The manifest is the first source's, with the counts of the merge and ``generation["merged_from"]``
listing how many conversations each source gave.

Example:
    >>> merge_corpora(["shard-0", "shard-1"], "/tmp/merged")  # doctest: +SKIP
    PosixPath('/tmp/merged')
"""

from __future__ import annotations

import hashlib
import json
import os
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
from recllmsim_hf.errors import InputError

MAX_NAMED = 5


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _conflict(kind: str, ids: list[str], first: str, second: str) -> InputError:
    named = ", ".join(ids[:MAX_NAMED]) + (f" and {len(ids) - MAX_NAMED} more" if len(ids) > MAX_NAMED else "")
    return InputError(
        f"--source {second}: {len(ids)} {kind} with the same id but other content than in {first} "
        f"({named}); merge only shards of one run, or corpora whose ids do not overlap"
    )


def merge_corpora(corpora: list[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Merge corpus folders into ``out`` (see the module docstring); returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    opened = [Corpus(c) for c in corpora]
    merged_records = {}
    for kind, attr in (("profiles", "profiles"), ("scenarios", "scenarios")):
        found: dict[str, tuple[str, str, object]] = {}
        for corpus in opened:
            clashes: dict[str, list[str]] = {}
            for ident, record in getattr(corpus, attr).items():
                digest = _digest(record.model_dump(mode="json"))
                if ident not in found:
                    found[ident] = (str(corpus.path), digest, record)
                elif found[ident][1] != digest:
                    clashes.setdefault(found[ident][0], []).append(ident)
            for first, ids in clashes.items():
                raise _conflict(kind, sorted(ids), first, str(corpus.path))
        merged_records[kind] = [record for _, _, record in found.values()]
    seen: dict[str, tuple[int, str]] = {}
    given: list[dict] = []
    with open(out / CONVERSATIONS, "w", encoding="utf-8") as f:
        for number, corpus in enumerate(opened):
            clashes = []
            count = 0
            for conv in corpus.iter_conversations():
                data = conv.model_dump(mode="json")
                digest = _digest(data)
                if conv.conversation_id in seen:
                    if seen[conv.conversation_id][1] != digest:
                        clashes.append(conv.conversation_id)
                    continue
                seen[conv.conversation_id] = (number, digest)
                f.write(dumps(data) + "\n")
                count += 1
            if clashes:
                first = str(opened[seen[clashes[0]][0]].path)
                raise _conflict("conversations", clashes, first, str(corpus.path))
            given.append({"source": str(corpus.path), "conversations": count})
    write_jsonl(out / PROFILES, merged_records["profiles"])
    write_jsonl(out / SCENARIOS, merged_records["scenarios"])
    manifest = opened[0].manifest.model_copy(deep=True)
    manifest.tasks = sorted({t for c in opened for t in c.tasks})
    manifest.counts.update(
        conversations=len(seen),
        profiles=len(merged_records["profiles"]),
        scenarios=len(merged_records["scenarios"]),
    )
    manifest.counts.pop("conversations_passed", None)  # recounted by the build
    manifest.generation["merged_from"] = given
    atomic_write_text(out / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
    return out
