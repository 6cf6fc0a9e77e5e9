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

Rows reach parquet through pyarrow with the options of the writer the builder uses (``datasets``'
``ParquetWriter``: the ``huggingface`` schema metadata, content-defined chunking, a page index,
snappy), record batches of 1,000 rows (the builder's batch, one row group each) and a new shard
once a shard holds more than 500 MB, so the files are the builder's to the byte
(``tests/dataset/test_shards.py`` compares them) while a build never imports ``datasets`` (a
second of start-up). Configs whose rows do not come one conversation at a time are written from
the row generators the builder uses (:func:`~recllmsim_hf.dataset.config_info.table_batches`).

Example:
    >>> infos, provenance = write_configs(corpus, work, ["intent_utterances"])  # doctest: +SKIP
    >>> infos["intent_utterances"].splits["test"].num_examples  # doctest: +SKIP
    710
"""

from __future__ import annotations

import json
import os
import pickle
from array import array
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recllmsim_hf.dataset.card_stats import Provenance, ProvenanceTally
from recllmsim_hf.dataset.config_info import (
    BATCH,
    ConfigInfo,
    SplitSize,
    description,
    splitter_for,
    table_batches,
    table_spec,
)
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

MAX_SHARD_BYTES = 500 * 10**6  # a new shard once one holds more Arrow bytes: datasets' MAX_SHARD_SIZE
# datasets' parquet options: content-defined chunking (so a Hub upload of a changed build moves only
# the changed pages), a page index, snappy and dictionary encoding for every leaf column
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}


def _leaves(name: str, kind: pa.DataType) -> list[str]:
    """Parquet's leaf column paths under one column (``turns.list.element.role``)."""
    if pa.types.is_struct(kind):
        return [leaf for f in kind for leaf in _leaves(f"{name}.{f.name}", f.type)]
    if pa.types.is_list(kind):
        return _leaves(f"{name}.list.element", kind.value_type)
    return [name]


class SplitWriter:
    """Writes one split of one config as ``folder/<split>-SSSSS-of-NNNNN.parquet``, the way
    the builder's ``_prepare_split`` does (with pyarrow alone: ``features`` is the config's
    :class:`~recllmsim_hf.feature_types.Features`). Feed rows (:meth:`add`) or whole batches
    (:meth:`add_table`), then :meth:`close`."""

    def __init__(self, folder: Path, split: str, features):
        self.folder, self.split, self.features = Path(folder), split, features
        self.schema = features.arrow_schema
        self.max_shard_bytes = MAX_SHARD_BYTES
        leaves = [leaf for f in self.schema for leaf in _leaves(f.name, f.type)]
        self.options = {"compression": dict.fromkeys(leaves, "snappy"), "use_dictionary": leaves}
        self.rows: list[dict] = []
        self.writer: pq.ParquetWriter | None = None
        self.file = None
        self.shard_bytes = 0
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
        elif self.shard_bytes > self.max_shard_bytes:
            self._finish()
            self._open()
        table = table.combine_chunks()
        self.shard_bytes += table.nbytes
        self.shard_lengths[-1] += table.num_rows
        self.writer.write_table(table, row_group_size=BATCH)

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f".{self.split}-{len(self.paths):05d}.parquet.part"
        self.paths.append(path)
        self.shard_lengths.append(0)
        self.shard_bytes = 0
        self.file = open(path, "wb")
        self.writer = pq.ParquetWriter(
            self.file,
            self.schema,
            use_content_defined_chunking=CDC_OPTIONS,
            write_page_index=True,
            **self.options,
        )
        self.writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})

    def _finish(self) -> None:
        self.writer.close()
        self.file.close()
        self.writer = self.file = None
        self.num_examples += self.shard_lengths[-1]
        self.num_bytes += self.shard_bytes

    def close(self) -> SplitSize:
        """Write what is left, name the shards; returns the split's size (no file at all for a
        split without rows: ``datasets`` cannot read an empty shard)."""
        if self.rows:
            self.add_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []
        if self.writer is not None:
            self._finish()
        total = len(self.paths)
        for i, path in enumerate(self.paths):
            os.replace(path, self.folder / f"{self.split}-{i:05d}-of-{total:05d}.parquet")
        return SplitSize(
            self.split,
            num_bytes=self.num_bytes,
            num_examples=self.num_examples,
            shard_lengths=self.shard_lengths if total > 1 else None,
        )


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
    progress: bool = False,
) -> tuple[dict[str, ConfigInfo], Provenance]:
    """Write ``work/<table>/<split>-*.parquet`` for each of ``tables``; returns each table's
    :class:`~recllmsim_hf.dataset.config_info.ConfigInfo` (with its split sizes, as the builder's
    ``download_and_prepare`` measures them) and the corpus's :class:`Provenance`."""
    from recllmsim_hf.sources.staging import track

    corpus, work = Path(corpus), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    infos = {t: ConfigInfo(table_spec(t, corpus), description(t)) for t in tables}

    def writer(table: str, split: str) -> SplitWriter:
        return SplitWriter(work / table, split, infos[table].features)

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
    ctx = RowContext(corpus, list(infos[row_tables[0]].features["task"].names) if row_tables else [])
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

    for table in tables:
        info = infos[table]
        if (table, SPLITS[table][0]) in writers:
            for s in SPLITS[table]:
                info.add_split(writers[table, s].close())
            continue
        # rows not per conversation: the builder's own row generators, written the same way
        splitter = splitter_for(table, corpus, seed, split_by)
        for split in SPLITS[table]:
            w = writer(table, split)
            for batch in table_batches(table, corpus, info.features, split, splitter):
                w.add_table(batch)
            info.add_split(w.close())
    return infos, tally.result(corpus)
