"""``recllmsim build``: run the builder for every config and ship parquet shards plus a card.

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

import os
import re
import shutil
import tempfile
from pathlib import Path

from recllmsim_hf.dataset.configs import DEFAULT_SEED
from recllmsim_hf.errors import InputError
from recllmsim_hf.features import SPLITS, TABLES

_SHARD = re.compile(
    r"-(?P<split>train|validation|test)(?:-\d{5}-(?P<shard>\d{5})-of-(?P<total>\d{5}))?\.parquet$"
)


def _collect_shards(prepared: Path, dest: Path) -> None:
    """Move the builder's parquet files to ``dest/<split>-SSSSS-of-NNNNN.parquet``.

    Files without rows are left behind: ``datasets`` cannot read an empty parquet
    shard, so an empty split is left out of the build (and of its card).
    """
    import pyarrow.parquet as pq

    by_split: dict[str, list[Path]] = {}
    for path in sorted(prepared.glob("*.parquet")):
        match = _SHARD.search(path.name)
        if match and pq.read_metadata(path).num_rows:
            by_split.setdefault(match["split"], []).append(path)
    dest.mkdir(parents=True)
    for split, paths in by_split.items():
        for i, path in enumerate(paths):
            os.replace(path, dest / f"{split}-{i:05d}-of-{len(paths):05d}.parquet")


def build_dataset(
    source: str | os.PathLike | list | None,
    out: str | os.PathLike = "recllmsim",
    *,
    seed: int = DEFAULT_SEED,
    split_by: str = "utterance",
    progress: bool = True,
) -> dict:
    """Build all five configs of ``source`` into ``out``; returns a summary with split sizes.

    ``source`` may be a list: every source is staged and validated, then merged into one corpus
    (``recllmsim_hf.sources.merge``: the shards of one run, conflicting duplicates refused)."""
    import datasets

    from recllmsim_hf.dataset.card import write_card
    from recllmsim_hf.loading_script.recllmsim import RecLLMSim
    from recllmsim_hf.sources.staging import stage_source, track

    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder; pass a folder path")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    datasets.disable_progress_bars()
    try:
        sources = list(source) if isinstance(source, list | tuple) else [source]
        if len(sources) == 1:
            source = sources[0]
            staged = stage_source(source, work / "_staged", progress=progress)
        else:
            from recllmsim_hf.sources.merge import merge_corpora

            parts = [stage_source(s, work / f"_staged-{i}", progress=progress) for i, s in enumerate(sources)]
            staged = merge_corpora(parts, work / "_staged")
        infos: dict[str, datasets.DatasetInfo] = {}
        summary = {"out": str(out), "source": _describe_source(source), "seed": seed, "split_by": split_by}
        summary["configs"] = {}
        for table in track(
            TABLES, len(TABLES), "building configs", progress, describe=lambda t: f"building {t}"
        ):
            builder = RecLLMSim(
                config_name=table,
                source=str(staged),
                seed=seed,
                split_by=split_by,
                cache_dir=str(work / "_cache"),
            )
            prepared = work / "_prepared" / table
            builder.download_and_prepare(output_dir=str(prepared), file_format="parquet")
            _collect_shards(prepared, work / table)
            info = builder.info
            for split in [s for s in SPLITS[table] if info.splits[s].num_examples == 0]:
                del info.splits[split]  # not shipped, so not announced either
            infos[table] = info
            summary["configs"][table] = {
                s: info.splits[s].num_examples for s in SPLITS[table] if s in info.splits
            }
        write_card(work, staged, infos, summary)
        for scratch in ("_staged", "_cache", "_prepared", *(f"_staged-{i}" for i in range(len(sources)))):
            shutil.rmtree(work / scratch, ignore_errors=True)
        _swap_into_place(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


def _swap_into_place(work: Path, out: Path) -> None:
    """Replace ``out`` by ``work``; the old folder is removed only after the new one is in place."""
    if not out.exists():
        os.replace(work, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / out.name)
    try:
        os.replace(work, out)
    except BaseException:
        os.replace(old / out.name, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _describe_source(source) -> str:
    if isinstance(source, list | tuple):
        return ", ".join(_describe_source(s) for s in source)
    from recllmsim_hf.sources.download import DEFAULT_RELEASE_URL

    return str(source) if source is not None else DEFAULT_RELEASE_URL
