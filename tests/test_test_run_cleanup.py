"""A test run leaves no Hugging Face cache folder behind (tests/conftest.py removes its own)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_test_run_removes_its_hf_cache_folder(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    one_test = "tests/analysis/test_phrases.py::test_stop_list_is_whole_phrases_only"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", one_test],
        cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp)}, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("recllmsim-tests-hf-")]
