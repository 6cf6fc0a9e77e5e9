"""The parquet shards of a build: every config in one pass over the corpus, byte for byte
what the builder writes.

The builder (``loading_script/recllmsim.py``) reads the corpus once per config and split
(nine passes for the five configs), and its ``download_and_prepare`` adds a cache, locks
and info files per config. A build instead reads the corpus once: every included
conversation hands its rows to each table (:func:`~recllmsim_hf.dataset.configs.conversation_rows`),
and the same pass counts the profiles' uses and the card's provenance. The split of an
intent row is known only when every key was seen (the 8:1:1 cut points), so intent rows are
spilled with their keys to a scratch file and routed to train / validation / test after
the pass, in corpus order.

Rows reach parquet through the writer the builder uses (``datasets``' ``ParquetWriter``):
record batches of 1,000 rows (the builder's batch, one row group each) and a new shard once
a shard holds more than 500 MB, so the files are the builder's to the byte
(``tests/dataset/test_shards.py`` compares them). Configs whose rows do not come one
conversation at a time are written from the builder's own split and table generators.

Example:
    >>> infos, provenance = write_configs(corpus, work, ["intent_utterances"])  # doctest: +SKIP
    >>> infos["intent_utterances"].splits["test"].num_examples  # doctest: +SKIP
    710
"""

from __future__ import annotations

import os
import pickle
from array import array
from collections import Counter
from pathlib import Path

import pyarrow as pa

from recllmsim_hf.dataset.card_stats import Provenance, ProvenanceTally
from recllmsim_hf.dataset.configs import (
    CONVERSATION_TABLES,
    DEFAULT_SEED,
    RowContext,
    conversation_lines,
    conversation_rows,
    included,
    profile_rows,
    split_key,
    splitter_from_keys,
)
from recllmsim_hf.features import SPLITS

BATCH = 1000  # rows per record batch and row group: the builder's batch


class SplitWriter:
    """Writes one split of one config as ``folder/<split>-SSSSS-of-NNNNN.parquet``, the way
    the builder's ``_prepare_split`` does. Feed rows (:meth:`add`) or whole batches
    (:meth:`add_table`), then :meth:`close`."""

    def __init__(self, folder: Path, split: str, features):
        from datasets import config
        from datasets.utils.py_utils import convert_file_size_to_int

        self.folder, self.split, self.features = Path(folder), split, features
        self.schema = features.arrow_schema
        self.max_shard_bytes = convert_file_size_to_int(config.MAX_SHARD_SIZE)
        self.rows: list[dict] = []
        self.writer = None
        self.paths: list[Path] = []
        self.shard_lengths: list[int] = []
        self.num_examples = self.num_bytes = 0

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) == BATCH:
            self.add_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def add_table(self, table: pa.Table) -> None:
        """One batch as the builder yields it (the next record batch of the file)."""
        if not len(table):  # the builder's empty shard of an empty split, which a build drops
            return
        if self.writer is None:
            self._open()
        elif self.writer._num_bytes > self.max_shard_bytes:
            self._finish()
            self._open()
        if len(table) == 1:
            self.writer.write_row(table)  # what the builder does with a one-row table
        else:
            self.writer.write_table(table)

    def _open(self) -> None:
        from datasets.arrow_writer import ParquetWriter

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f".{self.split}-{len(self.paths):05d}.parquet.part"
        self.paths.append(path)
        self.writer = ParquetWriter(
            features=self.features, path=str(path), writer_batch_size=None, embed_local_files=True
        )

    def _finish(self) -> None:
        num_examples, num_bytes = self.writer.finalize()
        self.writer.close()
        self.shard_lengths.append(num_examples)
        self.num_examples += num_examples
        self.num_bytes += num_bytes

    def close(self, dataset_name: str):
        """Write what is left, name the shards; returns the split's ``datasets.SplitInfo``
        (no file at all for a split without rows: ``datasets`` cannot read an empty shard)."""
        from datasets import SplitInfo

        if self.rows:
            self.add_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []
        if self.writer is not None:
            self._finish()
            self.writer = None
        total = len(self.paths)
        for i, path in enumerate(self.paths):
            os.replace(path, self.folder / f"{self.split}-{i:05d}-of-{total:05d}.parquet")
        info = SplitInfo(
            name=self.split,
            num_bytes=self.num_bytes,
            num_examples=self.num_examples,
            dataset_name=dataset_name,
        )
        if total > 1:
            info.shard_lengths = self.shard_lengths
        return info


class _DeferredSplits:
    """Intent rows, spilled with their split keys to a scratch file until every key is known.

    They are kept as the rows themselves (pickled), not as Arrow: the split sizes in the card
    are the Arrow sizes of the builder's own 1,000-row tables, which re-cut Arrow slices
    would not reproduce."""

    spill_rows = 8 * BATCH  # rows held in memory before they go to the file

    def __init__(self, path: Path, seed: int, by: str):
        self.path, self.seed, self.by = path, seed, by
        self.rows: list[tuple[int, dict]] = []
        self.keys = array("Q")  # one per utterance, or one per conversation with labelled utterances
        self.file = None

    def add(self, conversation_id: str, rows: list[dict]) -> None:
        if not rows:
            return
        if self.by == "conversation":
            key = split_key(self.seed, conversation_id)
            self.keys.append(key)
            self.rows.extend((key, row) for row in rows)
        else:
            for row in rows:
                key = split_key(self.seed, row["utterance_id"])
                self.keys.append(key)
                self.rows.append((key, row))
        if len(self.rows) >= self.spill_rows:
            self._spill()

    def _spill(self) -> None:
        if self.file is None:
            self.file = open(self.path, "w+b")
        pickle.dump(self.rows, self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.rows = []

    def route(self, writers: dict[str, SplitWriter]) -> None:
        """Send every row, in corpus order, to the writer of its split."""
        splitter = splitter_from_keys(self.keys, self.seed, self.by)
        validation_from, test_from = splitter.validation_from, splitter.test_from
        train, validation, test = writers["train"], writers["validation"], writers["test"]
        chunks = [self.rows]
        if self.file is not None:
            self._spill()
            self.file.seek(0)
            chunks = _unpickled(self.file)
        for chunk in chunks:
            for key, row in chunk:
                (train if key < validation_from else validation if key < test_from else test).add(row)
        if self.file is not None:
            self.file.close()
            self.path.unlink()


def _unpickled(f):
    while True:
        try:
            yield pickle.load(f)
        except EOFError:
            return


def write_configs(
    corpus: Path,
    work: Path,
    tables: list[str],
    *,
    seed: int = DEFAULT_SEED,
    split_by: str = "utterance",
    cache_dir: Path | None = None,
    progress: bool = False,
) -> tuple[dict, Provenance]:
    """Write ``work/<table>/<split>-*.parquet`` for each of ``tables``; returns each table's
    ``datasets.DatasetInfo`` (with its split sizes, as the builder's ``download_and_prepare``
    leaves it) and the corpus's :class:`Provenance`."""
    from datasets import SplitDict

    from recllmsim_hf.loading_script.recllmsim import RecLLMSim
    from recllmsim_hf.sources.staging import track

    corpus, work = Path(corpus), Path(work)
    builders = {
        t: RecLLMSim(
            config_name=t,
            source=str(corpus),
            seed=seed,
            split_by=split_by,
            cache_dir=str(cache_dir or work / "_cache"),
        )
        for t in tables
    }

    def writer(table: str, split: str) -> SplitWriter:
        return SplitWriter(work / table, split, builders[table].info.features)

    writers = {
        (t, s): writer(t, s) for t in tables if t in CONVERSATION_TABLES or t == "profiles" for s in SPLITS[t]
    }
    direct = [
        (t, writers[t, "train"]) for t in CONVERSATION_TABLES if t in tables and t != "intent_utterances"
    ]
    deferred = None
    if "intent_utterances" in tables:
        deferred = _DeferredSplits(work / "_intent_rows.pickle", seed, split_by)
    tally, uses = ProvenanceTally(), Counter()
    row_tables = [t for t in tables if t in CONVERSATION_TABLES]
    ctx = RowContext(corpus, builders[row_tables[0]].info.features["task"].names if row_tables else [])
    for conv in track(conversation_lines(corpus), None, "writing configs", progress):
        ok = included(conv)
        tally.add(conv, ok)
        if not ok:
            continue
        uses[conv["profile_id"]] += 1
        for table, w in direct:
            for row in conversation_rows(table, conv, ctx):
                w.add(row)
        if deferred is not None:
            deferred.add(conv["conversation_id"], list(conversation_rows("intent_utterances", conv, ctx)))
    if deferred is not None:
        deferred.route({s: writers["intent_utterances", s] for s in SPLITS["intent_utterances"]})
    if "profiles" in tables:
        for row in profile_rows(corpus, uses):
            writers["profiles", "train"].add(row)

    infos = {}
    for table in tables:
        builder = builders[table]
        split_infos = []
        if (table, SPLITS[table][0]) in writers:
            split_infos = [writers[table, s].close(builder.dataset_name) for s in SPLITS[table]]
        else:  # rows not per conversation: the builder's own generators, written the same way
            for gen in builder._split_generators(None):
                w = writer(table, gen.name)
                for _, batch in builder._generate_tables(**gen.gen_kwargs):
                    w.add_table(batch)
                split_infos.append(w.close(builder.dataset_name))
        splits = SplitDict(dataset_name=builder.dataset_name)
        for info in split_infos:
            splits.add(info)
        info = builder.info
        info.splits = splits
        info.download_size = 0  # the builder downloads nothing
        info.dataset_size = sum(s.num_bytes for s in splits.values())
        info.size_in_bytes = info.dataset_size
        infos[table] = info
    return infos, tally.result(corpus)
