"""Time ``recllmsim push-to-hub`` against the local Hub-protocol server (tests/hub_server.py).

    python benchmarks/bench_push.py BUILD_DIR

Runs, in subprocesses (huggingface_hub reads HF_ENDPOINT at import): a dry run, a first push, a
second push of the same build (no new commit), and prints wall time, requests and bytes uploaded
for each. Build the release first:
``recllmsim build --source ../shared/data/recllmsim-release --out BUILD_DIR``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hub_server import HubServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", type=Path)
    args = parser.parse_args()
    size = sum(p.stat().st_size for p in args.build.rglob("*") if p.is_file())
    print(f"build: {args.build} ({size / 1e6:.1f} MB)")
    with HubServer(tokens={"hf_bench": "me"}) as hub, tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=home, HF_TOKEN="hf_bench")
        for label, extra in (("dry run", ["--dry-run"]), ("first push", []), ("same build again", [])):
            requests, stored = len(hub.requests), sum(len(b) for b in hub.lfs.values())
            start = time.perf_counter()
            cmd = [
                sys.executable,
                "-m",
                "recllmsim_hf",
                "push-to-hub",
                str(args.build),
                "me/bench",
                "-q",
                *extra,
            ]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode:
                sys.exit(f"{label}: failed: {proc.stderr.strip()}")
            uploaded = sum(len(b) for b in hub.lfs.values()) - stored
            print(
                f"{label:<18} {wall:6.2f} s  {len(hub.requests) - requests:3d} requests  "
                f"{uploaded / 1e6:6.1f} MB uploaded over LFS"
            )


if __name__ == "__main__":
    main()
