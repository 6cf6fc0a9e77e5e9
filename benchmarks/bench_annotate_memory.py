"""Benchmark: batch `annotate` memory stays flat in the number of conversations (issue 12).

Writes corpora of N and 4N synthetic conversations (8 turns of ~500 characters each; no release
data), starts the local Batch API server (tests/batch_server.py) and annotates each corpus with
``--what quality`` through ``--executor openai-batch`` in a child process whose peak Python heap
(``tracemalloc``, which doubles the run time) and peak RSS (``ru_maxrss``, which the allocator's
fragmentation makes noisy) are printed. The plan is read lazily in chunks of ``--chunk``
requests (the Batch API's 50,000 in real runs; smaller here so that N spans several chunks); a
last run with one chunk of 4N shows what holding the whole plan costs.

    .venv/bin/python benchmarks/bench_annotate_memory.py               # N = 500, chunks of 125
    .venv/bin/python benchmarks/bench_annotate_memory.py -n 1000 --chunk 250
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from batch_server import FakeBatchAPI  # noqa: E402

from recllmsim_hf.corpus import write_corpus  # noqa: E402
from recllmsim_hf.schema import Conversation, Manifest, Profile, Scenario, Turn  # noqa: E402

CHILD = """
import json, resource, sys, time, tracemalloc
tracemalloc.start()
from recllmsim_hf.generation.annotate.annotators import annotate_corpus
from recllmsim_hf.generation.llm.executors import ExecutorSpec
from recllmsim_hf.generation.llm.options import runner_from_options
folder, url, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = ExecutorSpec.parse("openai-batch", poll_interval=0.001, poll_max=0.01, max_requests=chunk)
make = lambda c: runner_from_options(c, base_url=url, api_key="sk-bench", model="gpt-4o-mini")
started = time.monotonic()
out = annotate_corpus(folder, "quality", make, progress=False, executor=spec)
print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "heap_mb": tracemalloc.get_traced_memory()[1] / 2**20,
                  "seconds": time.monotonic() - started, "rounds": out["executor"]["rounds"],
                  "annotated": out["annotators"]["quality"]["annotated"]}))
"""


def _corpus(folder: Path, n: int) -> Path:
    filler = "I would like a plan that fits my budget and my week, with details on each step. " * 6
    scenario = Scenario(scenario_id="recipe_planning-0", task="recipe planning", text="Plan dinners.")
    convs = []
    for i in range(n):
        roles = ("user", "assistant") * 4
        turns = [Turn(role=role, content=f"{i}.{k} {filler}") for k, role in enumerate(roles)]
        convs.append(Conversation(conversation_id=f"m{i:06d}", task=scenario.task, profile_id="0",
                                  scenario_id=scenario.scenario_id, turns=turns))  # fmt: skip
    profiles = [Profile(profile_id="0", text="1. Gender: Female\n2. Age: 30")]
    return write_corpus(folder, profiles, [scenario], convs, Manifest(name=f"memory bench {n}"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=500, help="conversations of the small corpus (the large has 4n)")
    p.add_argument("--chunk", type=int, default=125, help="requests per chunk of the plan")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="recllmsim-bench-mem-") as tmp, FakeBatchAPI(end_after=2) as srv:
        runs = [(args.n, args.chunk), (4 * args.n, args.chunk), (4 * args.n, 4 * args.n)]
        for number, (n, chunk) in enumerate(runs):
            folder = _corpus(Path(tmp) / f"c{number}", n)
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-c", CHILD, str(folder), srv.base_url, str(chunk)],
                                  capture_output=True, text=True, check=True)  # fmt: skip
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{n:>6} conversations, chunks of {chunk:>5}: peak heap {r['heap_mb']:6.1f} MB, "
                  f"peak RSS {r['rss_mb']:6.1f} MB, {r['rounds']} round(s), {r['annotated']} annotated, "
                  f"{time.monotonic() - started:.1f} s")  # fmt: skip
        print(f"online requests: {srv.count} (must be 0)")


if __name__ == "__main__":
    main()
