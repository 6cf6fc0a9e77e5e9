"""Shared fixtures."""

from pathlib import Path

import pytest

# The CI checks the repository out beside shared/ (read-only real data, never committed here).
RELEASE_DIR = Path(__file__).resolve().parents[2] / "shared/data/recllmsim-release"


@pytest.fixture(scope="session")
def release_dir() -> Path:
    """The real RecLLMSim release (holds LLM_agent_user/<task>/<n>.json); fails if it is missing."""
    if not (RELEASE_DIR / "LLM_agent_user").is_dir():
        pytest.fail(f"{RELEASE_DIR}: the real release is missing; check out the repository beside shared/")
    return RELEASE_DIR
