"""RecLLMSim toolkit: the typed schema, corpus I/O, release import, build and publish.

Example:
    >>> import recllmsim_hf
    >>> ds = recllmsim_hf.load("intent", "recllmsim")  # doctest: +SKIP
    >>> ds["train"].features["label"].names[:2]  # doctest: +SKIP
    ['Search', 'Recommendation']
"""

import os as _os

__version__ = "0.1.0"

# In a source checkout generation/, loading_script/ and dataset_card/ sit beside
# this folder; the wheel installs them inside it. Looking in the checkout root
# too makes `recllmsim_hf.generation` import the same way in both.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_root, "pyproject.toml")) and _os.path.isdir(
    _os.path.join(_root, "loading_script")
):
    __path__.append(_root)


def load(config: str = "intent", path: str | None = None, **kwargs):
    """Load one config of a built dataset folder as a DatasetDict (see recllmsim_hf.api.load)."""
    from recllmsim_hf.api import load as _load

    return _load(config, path, **kwargs)
