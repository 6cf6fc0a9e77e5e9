"""The Python entry point: load one config of a built dataset folder.

Example:
    >>> import recllmsim_hf
    >>> ds = recllmsim_hf.load("intent", "recllmsim")  # doctest: +SKIP
    >>> ds["test"].num_rows  # doctest: +SKIP
    710
    >>> ds = recllmsim_hf.load("quality_scores", "out/rec", source="LLM_agent_user/")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from recllmsim_hf.errors import InputError
from recllmsim_hf.features import ALL_CONFIG_NAMES


def load(
    config: str = "intent",
    path: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    build: bool = True,
    seed: int | None = None,
    split_by: str | None = None,
    **load_kwargs,
):
    """Return one config of the built folder ``path`` (default ``./recllmsim``) as a DatasetDict.

    If ``path`` holds no build and ``build`` is true, ``source`` (default: the
    pinned release) is built there first, with ``seed`` / ``split_by`` if given.
    Extra keyword arguments go to ``datasets.load_dataset``.
    """
    if config not in ALL_CONFIG_NAMES:
        raise InputError(f"unknown config {config!r}: must be one of {list(ALL_CONFIG_NAMES)}")
    folder = Path(path if path is not None else "recllmsim")
    if not (folder / "README.md").is_file():
        if not build:
            raise InputError(f"{folder}: no built dataset here; run `recllmsim build --out {folder}` first")
        from recllmsim_hf.dataset.build import build_dataset

        options = {k: v for k, v in (("seed", seed), ("split_by", split_by)) if v is not None}
        build_dataset(source, folder, progress=False, **options)
    import datasets

    return datasets.load_dataset(str(folder), config, **load_kwargs)
