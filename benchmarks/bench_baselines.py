"""Benchmark: intent baselines on the real release (RecLLMSim Table 4), per model and over split seeds.

1. Builds the release once into a temporary folder (or uses ``--dataset DIR``, a build).
2. Trains every local model (the five paper classics and our context model) on the build's
   own split (``recllmsim build`` default seed 42) and prints test accuracy, macro-F1 and
   training seconds next to the paper's figures.
3. Re-draws the split with each of ``--seeds`` (exactly the split ``recllmsim build --seed S``
   writes, see ``recllmsim_hf.analysis.baselines.resplit``) and prints the mean ± population std.

    /work/venv/bin/python benchmarks/bench_baselines.py                   # seeds 0-4, all local models
    /work/venv/bin/python benchmarks/bench_baselines.py --models context --seeds 0-9 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT.parent / "shared/data/recllmsim-release"


def main() -> None:
    from recllmsim_hf.analysis.baselines import LOCAL_MODELS, render_baselines, run_intent_baselines
    from recllmsim_hf.cli.analysis import parse_seeds
    from recllmsim_hf.dataset.build import build_dataset

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--dataset", type=Path, help="A build folder [default: build the release into a temp folder]."
    )
    p.add_argument(
        "--source", type=Path, default=RELEASE, help="Release to build when --dataset is not given."
    )
    p.add_argument("--models", default=",".join(LOCAL_MODELS))
    p.add_argument("--seeds", default="0-4", help="Split seeds for mean ± std [0-4].")
    p.add_argument("--seed", type=int, default=42, help="Seed of the models [42].")
    p.add_argument("--json", action="store_true", help="Print the full report as JSON.")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-baselines-") as tmp:
        folder = args.dataset
        if folder is None:
            started = time.perf_counter()
            folder = Path(tmp) / "recllmsim"
            build_dataset(args.source, folder, progress=False)
            print(f"built {args.source} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        started = time.perf_counter()
        report = run_intent_baselines(
            folder,
            args.models.split(","),
            seed=args.seed,
            split_seeds=parse_seeds(args.seeds),
            progress=False,
        )
        elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"machine: {os.cpu_count()} cores; all runs took {elapsed:.1f} s")
    print(render_baselines(report), end="")


if __name__ == "__main__":
    main()
