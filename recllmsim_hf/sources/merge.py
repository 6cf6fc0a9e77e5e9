"""One corpus from several: ``recllmsim build --source A --source B ...``.

The usual case is N shards of one run (``generate conversations --shard K/N`` on N machines),
whose union is the unsharded plan; any corpora of the same schema merge the same way:

- conversations, profiles and scenarios are taken by id, in source order; a record that comes
  again with the same content (the profiles and scenarios every shard shares) is kept once;
- a record that comes again with *other* content is a conflict: nothing is built and the error
  names the kind, the first ids and the two sources.

The manifest is the first source's, with the counts of the merge and ``generation["merged_from"]``
listing how many conversations each source gave.

Only generated corpora merge (:func:`check_mergeable`, before anything is read): a release (a
folder, archive or URL, or a corpus the release importer wrote) and a corpus holding the human
studies are refused with one line. Their human studies, profile vocabulary and card (title,
license, citation) are the release's own, which a merge with generated conversations would
either drop or claim for data that is not the release; build a release alone.

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
    HUMAN_CONVERSATIONS,
    MANIFEST,
    PEOPLE,
    PROFILE_VOCABULARY,
    PROFILES,
    SCENARIOS,
    Corpus,
    atomic_write_text,
    dumps,
    write_jsonl,
)
from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import RELEASE_IMPORTER

MAX_NAMED = 5


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _conflict(kind: str, ids: list[str], first: str, second: str) -> InputError:
    named = ", ".join(ids[:MAX_NAMED]) + (f" and {len(ids) - MAX_NAMED} more" if len(ids) > MAX_NAMED else "")
    return InputError(
        f"--source {second}: {len(ids)} {kind if len(ids) > 1 else kind.removesuffix('s')} with the same id "
        f"but other content than in {first} "
        f"({named}); merge only shards of one run, or corpora whose ids do not overlap"
    )


def _created_by(corpus: Path) -> str | None:
    """The manifest's ``created_by``; None without one or when it does not parse (the staging
    that follows reports a bad manifest with the corpus's other problems)."""
    try:
        return json.loads((corpus / MANIFEST).read_text(encoding="utf-8")).get("created_by")
    except (OSError, ValueError, AttributeError):
        return None


def check_mergeable(sources: list) -> None:
    """Refuse (:class:`InputError`, one line naming the source) any source that is not a generated
    corpus folder; reads only each corpus's manifest."""
    from recllmsim_hf.sources.staging import is_corpus

    alone = "a release is built alone (--source once); --source merges only generated corpus folders"
    for source in sources:
        if not is_corpus(source):
            raise InputError(f"--source {source}: not a corpus folder but a release; {alone}")
        human = [n for n in (HUMAN_CONVERSATIONS, PEOPLE, PROFILE_VOCABULARY) if (Path(source) / n).is_file()]
        if human:
            raise InputError(f"--source {source}: holds the human studies ({human[0]}); {alone}")
        if _created_by(Path(source)) == RELEASE_IMPORTER:
            raise InputError(f"--source {source}: manifest.json created_by is the release importer; {alone}")


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
