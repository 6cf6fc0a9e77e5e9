"""``recllmsim build``: stage the source, write every config's parquet shards in one pass
(``recllmsim_hf.dataset.shards``, the builder's bytes) and the card.

Layout of the output folder (what ``load_dataset`` and ``push-to-hub`` read)::

    OUT/
      README.md                                  card with YAML `configs:` and `dataset_info`
      conversations/train-00000-of-00001.parquet
      profiles/train-00000-of-00001.parquet
      intent_utterances/{train,validation,test}-00000-of-00001.parquet
      hallucinations/train-00000-of-00001.parquet
      quality_scores/train-00000-of-00001.parquet

The build is atomic: everything is written into a hidden sibling folder, which
replaces OUT only when all of it succeeded. On any failure OUT is left exactly
as it was.

Example:
    >>> summary = build_dataset("../shared/data/recllmsim-release", "recllmsim")  # doctest: +SKIP
    >>> summary["configs"]["intent_utterances"]
    {'train': 5676, 'validation': 710, 'test': 710}
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

from recllmsim_hf.dataset.card_settings import CardSettings
from recllmsim_hf.dataset.configs import DEFAULT_SEED
from recllmsim_hf.errors import naming
from recllmsim_hf.features import SPLITS, TABLES
from recllmsim_hf.safety import DIR_MODE, claim_output, files_under, write_marker


def build_dataset(
    source: str | os.PathLike | list | None,
    out: str | os.PathLike = "recllmsim",
    *,
    seed: int = DEFAULT_SEED,
    split_by: str = "utterance",
    progress: bool = True,
    card: CardSettings | None = None,
) -> dict:
    """Build all configs of ``source`` into ``out`` (the five synthetic ones, and the human-study
    ones when the source has them); returns a summary with split sizes.

    ``out`` must be missing, empty, or an earlier build (see :mod:`recllmsim_hf.safety`); it is
    replaced only when the whole build succeeded. ``source`` may be a list: every source is
    validated, then merged into one corpus (``recllmsim_hf.sources.merge``: the shards of one run,
    conflicting duplicates refused; only generated corpora merge, a release or a corpus holding the
    human studies is built alone). ``card`` sets the card's name, title, license and citation
    (default: the source's own)."""
    given = list(source) if isinstance(source, list | tuple) else [source]
    sources = [s for s in given if s is not None and not is_url(s)]
    out = claim_output(out, "build", sources=sources)  # before the heavy imports: a refusal is quick
    out.parent.mkdir(parents=True, exist_ok=True)
    _sweep_killed_builds(out)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    os.chmod(work, DIR_MODE)  # mkdtemp's 0700 would become the build's mode
    _claim_work(work)
    collecting = gc.isenabled()
    try:
        # A build holds the parsed corpus (millions of small dicts, no reference cycles) while
        # it writes; the cycle collector would walk all of it again and again for nothing.
        gc.disable()
        with naming(out):  # a disk-full error deep in pyarrow names no file: it was writing OUT
            summary = _build(given, out, work, seed, split_by, progress, sources, card)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        from recllmsim_hf.dataset.configs import forget
        from recllmsim_hf.dataset.human_configs import forget_human

        # freed here, with the collector still off (left for the interpreter's exit, the parsed
        # corpus took longer to free than the card took to write)
        forget()
        forget_human()
        if collecting:
            gc.enable()
    return summary


def _build(
    given: list, out: Path, work: Path, seed: int, split_by: str, progress: bool, sources: list, card
) -> dict:
    from recllmsim_hf.dataset.card import write_card
    from recllmsim_hf.dataset.human_configs import human_tables
    from recllmsim_hf.dataset.shards import write_configs
    from recllmsim_hf.sources.staging import stage_source

    if len(given) <= 1:
        source = given[0] if given else None
        staged = stage_source(source, work / "_staged", progress=progress)
    else:
        from recllmsim_hf.sources.merge import check_mergeable, merge_corpora

        source = given
        check_mergeable(given)  # before anything is read: a release is never staged to be refused
        parts = [stage_source(s, work / f"_staged-{i}", progress=progress) for i, s in enumerate(given)]
        staged = merge_corpora(parts, work / "_staged")
    infos, provenance = write_configs(
        staged,
        work,
        [*TABLES, *human_tables(staged)],
        seed=seed,
        split_by=split_by,
        progress=progress,
    )
    summary = {"out": str(out), "source": _describe_source(source), "seed": seed, "split_by": split_by}
    summary["configs"] = {}
    for table, info in infos.items():
        for split in [s for s, split_info in info.splits.items() if split_info.num_examples == 0]:
            del info.splits[split]  # not shipped, so not announced either
        summary["configs"][table] = {
            s: info.splits[s].num_examples for s in SPLITS[table] if s in info.splits
        }
    write_card(work, staged, infos, summary, card, provenance)
    for scratch in ("_staged", "_cache", "_prepared", *(f"_staged-{i}" for i in range(len(given)))):
        shutil.rmtree(work / scratch, ignore_errors=True)
    if len(given) == 1 and sources:
        origin = str(Path(given[0]).resolve())
    elif sources:
        origin = [str(Path(s).resolve()) for s in sources]
    else:
        origin = summary["source"]
    (work / BUILDING).unlink()
    write_marker(work, "build", files_under(work), source=origin)
    claim_output(out, "build", sources=sources)  # again: the folder may have changed meanwhile
    _swap_into_place(work, out)
    return summary


BUILDING = ".recllmsim-building.json"  # in a build's hidden work folder while it runs


def _claim_work(work: Path) -> None:
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    (work / BUILDING).write_text(json.dumps(owner) + "\n", encoding="utf-8")


def _sweep_killed_builds(out: Path) -> None:
    """Remove the hidden work folders of earlier builds into ``out`` that were killed (SIGKILL, the
    OOM killer, a node's reboot: nothing could clean up). Only a folder named like ours that holds
    our work marker naming a process of this host that no longer runs is removed."""
    for folder in out.parent.glob(f".{out.name}.building-*"):
        try:
            if folder.is_symlink() or not folder.is_dir():
                continue
            owner = json.loads((folder / BUILDING).read_text(encoding="utf-8"))
            if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
                continue
            os.kill(owner["pid"], 0)  # still running (or the pid was taken again): keep it
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError, AttributeError):
            continue  # not provably ours, or not ours to judge


def _swap_into_place(work: Path, out: Path) -> None:
    """Replace ``out`` by ``work``; the old folder is removed only after the new one is in place."""
    if not out.exists():
        os.replace(work, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / out.name)  # only a folder `claim_output` accepted: empty or an earlier build
    try:
        os.replace(work, out)
    except BaseException:
        os.replace(old / out.name, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def is_url(source) -> bool:
    return "://" in os.fspath(source)


def _describe_source(source) -> str:
    if isinstance(source, list | tuple):
        return ", ".join(_describe_source(s) for s in source)
    from recllmsim_hf.sources.download import DEFAULT_RELEASE_URL

    return str(source) if source is not None else DEFAULT_RELEASE_URL
