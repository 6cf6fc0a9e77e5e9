"""Benchmark: `recllmsim annotate` throughput against a slow fake server, and the cost of planning.

1. Stages the real release, copies its first ``--conversations`` conversations (human labels
   removed) into a temporary corpus, and starts the fake OpenAI server (tests/fake_openai.py)
   in its own process with 300 ms +- 50 % latency.
2. ``annotate``: `recllmsim annotate --what intent,hallucination,quality` in a subprocess
   (start-up included); prints wall time against the ideal (calls x 0.3 s / concurrency) and
   calls per second.
3. ``replay``: the same command with ``--overwrite``: every call replays from the cache (the
   server must see 0 new requests).
4. ``estimate``: the whole release (all five annotators, ``--overwrite``) with a tiny
   ``--budget-usd``: the time to plan and price every call before refusing to send any.

    /work/venv/bin/python benchmarks/bench_annotate.py                  # 200 conversations, concurrency 64
    /work/venv/bin/python benchmarks/bench_annotate.py --conversations 100 --concurrency 32
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT.parent / "shared/data/recllmsim-release"
LATENCY, JITTER = 0.3, 0.5
CLI = [sys.executable, "-c", "from recllmsim_hf.cli import main; main()"]


def _server() -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable,
        str(ROOT / "tests/fake_openai.py"),
        "--latency",
        str(LATENCY),
        "--jitter",
        str(JITTER),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def _count(url: str) -> int:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/_stats") as r:
        return json.load(r)["count"]


def _run(args: list[str]) -> tuple[float, dict | None, str]:
    started = time.perf_counter()
    done = subprocess.run([*CLI, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    return wall, (json.loads(done.stdout) if done.returncode == 0 else None), done.stderr.strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conversations", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    from recllmsim_hf.corpus import Corpus, write_corpus
    from recllmsim_hf.sources.staging import stage_source

    with tempfile.TemporaryDirectory() as tmp:
        staged = Corpus(stage_source(RELEASE, Path(tmp) / "release", progress=False))
        convs = []
        for conv in staged.iter_conversations():
            if len(convs) == args.conversations:
                break
            for turn in conv.turns:
                turn.intent, turn.hallucination, turn.reason = None, None, None
            conv.ratings = None
            convs.append(conv)
        corpus = Path(tmp) / "corpus"
        write_corpus(corpus, staged.profiles.values(), staged.scenarios.values(), convs)
        proc, url = _server()
        try:
            base = ["annotate", "--corpus", str(corpus), "--what", "intent,hallucination,quality"]
            base += ["--base-url", url, "--concurrency", str(args.concurrency), "--json", "--quiet"]
            wall, summary, err = _run(base)
            assert summary is not None, err
            calls = summary["usage"]["calls"]
            ideal = calls * LATENCY / args.concurrency
            print(f"annotate: {len(convs)} conversations, {calls} calls at concurrency {args.concurrency}: "
                  f"{wall:.1f} s wall (ideal {ideal:.1f} s, x{wall / ideal:.2f}), "
                  f"{calls / wall:.0f} calls/s, missing after: {summary['missing']}")  # fmt: skip
            before = _count(url)
            wall, summary, err = _run([*base, "--overwrite"])
            assert summary is not None, err
            print(f"replay:   {summary['usage']['cache_hits']} calls from the cache in {wall:.1f} s wall, "
                  f"{_count(url) - before} new HTTP requests")  # fmt: skip
            full = ["annotate", "--corpus", str(staged.path), "--overwrite", "--budget-usd", "0.000001"]
            wall, _, err = _run([*full, "--base-url", url])
            print(f"estimate: whole release, all five annotators, planned and priced in {wall:.1f} s wall:")
            print(f"          {err.splitlines()[0]}")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
