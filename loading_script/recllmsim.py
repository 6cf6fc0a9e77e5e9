"""The RecLLMSim ``datasets`` builder: typed configs from a release or a corpus.

The five synthetic configs always; the four human-study configs (``human_conversations``,
``human_profiles``, ``human_intent_utterances``, ``profile_identification``) when the source
holds the release's human studies and profile vocabulary.

``datasets`` 4.0 and later no longer run loading scripts through
``load_dataset``; instantiate the builder directly instead. ``recllmsim build``
does exactly this and ships the result as parquet shards plus a card, which is
what ``load_dataset("recllmsim", "intent")`` reads.

Example:
    >>> from recllmsim_hf.loading_script.recllmsim import RecLLMSim
    >>> builder = RecLLMSim(config_name="intent", source="../shared/data/recllmsim-release")  # doctest: +SKIP
    >>> builder.download_and_prepare()  # doctest: +SKIP
    >>> builder.as_dataset()["test"].num_rows  # doctest: +SKIP
    710
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import datasets

from recllmsim_hf.corpus import Corpus
from recllmsim_hf.dataset.config_info import description, splitter_for, table_batches
from recllmsim_hf.dataset.configs import DEFAULT_SEED, SPLIT_BY
from recllmsim_hf.dataset.human_configs import read_vocabulary
from recllmsim_hf.errors import InputError
from recllmsim_hf.features import ALL_CONFIG_NAMES, SPLITS, spec, table_of
from recllmsim_hf.schema import CITATION, HOMEPAGE, LICENSE, TASKS
from recllmsim_hf.sources.staging import is_corpus, source_vocabulary, stage_source

# Every DatasetBuilder.__init__ "extends this module for streaming": it swaps the module's
# open / os.path / pathlib.Path for remote-file versions and imports pandas' and scipy's readers
# to patch them (0.1 s a build). This builder reads local files only; datasets skips a module
# that says it is patched already.
_patched_for_streaming = True

@dataclass
class RecLLMSimConfig(datasets.BuilderConfig):
    """BuilderConfig for RecLLMSim.

    Args:
        source: what to read: a corpus folder, a release folder (holding the task
            folders or ``LLM_agent_user/``), a release ``.zip``/``.tar.gz``, or an
            archive URL. None reads the pinned release archive (downloaded once
            into the cache).
        seed: seed of the 8:1:1 train/validation/test split of the intent config
            (see ``recllmsim_hf.dataset.configs`` for the exact, machine-independent rule).
        split_by: ``"utterance"`` (the paper's setting) or ``"conversation"`` (no
            conversation in two splits).
    """

    source: str | None = None
    seed: int = DEFAULT_SEED
    split_by: str = "utterance"

    def __post_init__(self):
        super().__post_init__()
        if self.name not in ALL_CONFIG_NAMES:
            raise InputError(f"unknown config {self.name!r}: must be one of {list(ALL_CONFIG_NAMES)}")
        if self.split_by not in SPLIT_BY:
            raise InputError(f"split_by must be one of {list(SPLIT_BY)}, but got {self.split_by!r}")
        if self.source is not None:
            self.source = str(self.source)


class RecLLMSim(datasets.ArrowBasedBuilder):
    """RecLLMSim: task-based recommendation conversations between an LLM user simulator and an assistant."""

    BUILDER_CONFIG_CLASS = RecLLMSimConfig
    BUILDER_CONFIGS = [
        RecLLMSimConfig(name=name, description=description(name)) for name in ALL_CONFIG_NAMES
    ]
    DEFAULT_CONFIG_NAME = "conversations"

    def _tasks(self) -> list[str]:
        source = self.config.source
        return Corpus(source).tasks if is_corpus(source) else list(TASKS)

    def _info(self) -> datasets.DatasetInfo:
        vocabulary = None
        if self.config.name == "profile_identification":  # its ClassLabel names come from the source
            source = self.config.source
            vocabulary = read_vocabulary(Path(source)) if is_corpus(source) else source_vocabulary(source)
        return datasets.DatasetInfo(
            description=self.config.description or description(self.config.name),
            features=spec(self.config.name, self._tasks(), vocabulary).to_datasets(),
            homepage=HOMEPAGE,
            license=LICENSE,
            citation=CITATION,
        )

    def _corpus(self) -> Path:
        source = self.config.source
        if is_corpus(source):
            return Path(source)
        tag = hashlib.sha256(str(source).encode()).hexdigest()[:16]
        return stage_source(source, Path(self._cache_dir_root) / "recllmsim_staged" / tag)

    def _split_generators(self, dl_manager):
        corpus = self._corpus()
        table = table_of(self.config.name)
        splitter = splitter_for(table, corpus, self.config.seed, self.config.split_by)
        return [
            datasets.SplitGenerator(
                name=split, gen_kwargs={"corpus": corpus, "split": split, "splitter": splitter}
            )
            for split in SPLITS[table]
        ]

    def _generate_tables(self, corpus: Path, split: str, splitter):
        # the rows a build writes (recllmsim_hf.dataset.config_info), in the same batches
        table = table_of(self.config.name)
        for i, batch in enumerate(table_batches(table, corpus, self.info.features, split, splitter)):
            yield datasets.builder.Key(0, i), batch
