"""Every case of the hostile-input sweep (benchmarks/hostile_cases.py, hostile_sweep.py) as its own test.

Each runs the real `recllmsim` in a child process: some unprivileged (root without the
capabilities that bypass file modes: the permission cases; the tests run as root), some on a
small tmpfs this test mounts and fills (disk-full cases), the LLM commands against the local
fake OpenAI server. A case passes when it ends with one clean error line (or succeeds where it
should), with no traceback, no hang and every user file as it was. The summary test runs the
script itself, as a user would.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("hostile_sweep", ROOT / "benchmarks" / "hostile_sweep.py")
sweep = importlib.util.module_from_spec(_spec)
sys.modules["hostile_sweep"] = sweep  # its dataclass looks its module up there
_spec.loader.exec_module(sweep)
CASES = sweep.cases()


def test_the_sweep_is_large_and_covers_every_command():
    assert len(CASES) >= 60
    commands = {c.argv[0] if c.argv[0] != "generate" else " ".join(c.argv[:2]) for c in CASES}
    assert commands >= {
        "build", "validate", "stats", "annotate", "baseline", "push-to-hub", "scenarios",
        "generate conversations", "generate profiles", "generate filter",
    }  # fmt: skip


@pytest.fixture(scope="module")
def world():
    if os.geteuid() != 0:
        pytest.fail(
            "the sweep mounts a tmpfs and drops file-mode capabilities for permission cases: "
            "run the tests as root (CI does)"
        )
    probe = Path(tempfile.mkdtemp(prefix="recllmsim-mount-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
    )
    assert mounted.returncode == 0, f"cannot mount a tmpfs here: {mounted.stderr!r}"
    subprocess.run(["umount", str(probe)], check=True)
    probe.rmdir()
    base = Path(tempfile.mkdtemp(prefix="recllmsim-sweep-"))
    os.chmod(base, 0o755)
    with FakeOpenAI() as server:
        fixtures = sweep.make_fixtures(base / "fixtures")
        fixtures["URL"] = server.base_url
        yield base, fixtures
    subprocess.run(["chmod", "-R", "u+rwx", str(base)], check=False)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def results(world, request) -> dict[int, dict]:
    """The selected cases, run three at a time (each child is mostly waiting on its start-up)."""
    base, fixtures = world
    wanted = [
        item.callspec.params["index"] for item in request.session.items if item.originalname == "test_case"
    ]
    with ThreadPoolExecutor(3) as pool:
        done = pool.map(lambda i: (i, sweep.run_case(CASES[i], base, fixtures, i)), wanted)
        return dict(done)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_case(results, index):
    assert results[index]["verdict"] == ("ok" if CASES[index].expect == "ok" else "clean"), results[index]


def test_the_script_prints_a_table_and_a_clean_summary():
    """The script as a user runs it, on a few cases (-k), so its table and summary line are checked too."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "hostile_sweep.py"), "-k", "--out ''"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines[0].split()[:3] == ["case", "verdict", "rc"]
    assert lines[-1] == (
        "tried 2 / clean one-line error 2 / expected success 0 / traceback 0 / wrong success 0 / hung 0 / "
        "user files lost 0"
    )
