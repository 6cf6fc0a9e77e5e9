"""Shared fixtures."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Keep every Hugging Face cache of the test run out of the user's home; set before
# datasets / huggingface_hub are imported (they read these at import time). The folder
# (about 80 MB after a full run) is removed when the test process exits.
_HF_HOME = tempfile.mkdtemp(prefix="recllmsim-tests-hf-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_HOME, "datasets")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["RECLLMSIM_CACHE"] = os.path.join(_HF_HOME, "recllmsim")

# The real release (read-only, never committed here): CI checks the repository out beside
# shared/, so it is ../shared/data/recllmsim-release; RECLLMSIM_TEST_RELEASE names another place.
RELEASE_DIR = Path(
    os.environ.get("RECLLMSIM_TEST_RELEASE")
    or Path(__file__).resolve().parents[2] / "shared/data/recllmsim-release"
)


@pytest.fixture(scope="session")
def release_dir() -> Path:
    """The real RecLLMSim release (holds LLM_agent_user/<task>/<n>.json); fails if it is missing."""
    if not (RELEASE_DIR / "LLM_agent_user").is_dir():
        pytest.fail(
            f"{RELEASE_DIR}: the real release is missing (no LLM_agent_user/ in it); check the repository "
            "out beside shared/ or set RECLLMSIM_TEST_RELEASE to the release folder"
        )
    return RELEASE_DIR


@pytest.fixture(scope="session")
def built_release(release_dir, tmp_path_factory) -> Path:
    """The real release built once per test session with the default seed: ``<tmp>/recllmsim``."""
    from recllmsim_hf.dataset.build import build_dataset

    out = tmp_path_factory.mktemp("built") / "recllmsim"
    build_dataset(release_dir, out, progress=False)
    return out
