"""Build speed and memory: the full release against a floor, cold `load_dataset`, synthetic corpora.

Prints measured figures and the ratios to the targets, in one run:
- `recllmsim build` of the full release (all configs: LLM_agent_user, both human studies, the
  profile vocabulary; CLI start-up included): wall <= 5 s, peak RSS <= 600 MB;
- the floor: a process that only parses the same JSON files (with the build's parser,
  pydantic's) and writes plain parquet with pyarrow (one table a data folder: file, task,
  scenario and the turns' role / content / content_zh), start-up included; the build must
  stay <= 3 x the floor;
- cold `datasets.load_dataset("recllmsim", NAME)` (fresh datasets cache, interpreter start
  included) for `human_conversations` and `intent`: <= 2 s;
- synthetic corpora of growing size: the 100k build <= 20 s; peak RSS must not grow with the
  corpus (streamed).

    python benchmarks/bench_build.py [--release ../shared/data/recllmsim-release] [--sizes 10000,50000,100000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECLLMSIM = str(Path(sys.executable).parent / "recllmsim")

# Runs one command as the only child and prints its wall time and peak RSS.
_MEASURE = """
import resource, subprocess, sys, time, json
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"rc": rc, "wall": wall, "cpu": cpu, "rss_mb": usage.ru_maxrss / 1024}))
"""


# Measured as an installed copy runs: with its modules' bytecode cached (pip writes it at install;
# a shell with PYTHONDONTWRITEBYTECODE=1 would have every run compile the project's modules again).
_AS_INSTALLED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(cmd: list[str], cwd: Path, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**_AS_INSTALLED, **(env or {})},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return result


def synthetic_corpus(path: Path, n: int) -> int:
    """Write a corpus of ``n`` made-up conversations (4 user + 4 assistant turns); returns its size."""
    sys.path.insert(0, str(HERE.parent))
    from recllmsim_hf.corpus import write_jsonl
    from recllmsim_hf.schema import INTENT_LABELS, Conversation, Profile, Ratings, Scenario, Turn

    path.mkdir(parents=True)
    write_jsonl(
        path / "profiles.jsonl",
        [Profile(profile_id=f"p{i}", text=f"1. Gender: X\n2. Age: {i}") for i in range(100)],
    )
    write_jsonl(
        path / "scenarios.jsonl",
        [
            Scenario(scenario_id=f"s{i}", task="recipe planning", text=f"Cook dinner number {i}.")
            for i in range(22)
        ],
    )
    lines = []
    with open(path / "conversations.jsonl", "w", encoding="utf-8") as f:
        for i in range(n):
            turns = []
            for k in range(4):
                turns.append(
                    Turn(
                        role="user",
                        content=f"Question {k} of conversation {i}: " + "what should I cook? " * 6,
                        intent=INTENT_LABELS[(i + k) % 5],
                    )
                )
                turns.append(
                    Turn(
                        role="assistant",
                        content="Here is a plan. " * 12,
                        hallucination=(i + k) % 97 == 0,
                        reason="No Hallucination",
                    )
                )
            conv = Conversation(
                conversation_id=f"syn-{i}",
                task="recipe planning",
                profile_id=f"p{i % 100}",
                scenario_id=f"s{i % 22}",
                turns=turns,
                ratings=Ratings(diversity=i % 3),
            )
            lines.append(conv.model_dump_json())
            if len(lines) == 1000:
                f.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            f.write("\n".join(lines) + "\n")
    return (path / "conversations.jsonl").stat().st_size


DATA_FOLDERS = ("LLM_agent_user", "real_human_user", "human_exp_V2")


def floor_probe(release: Path, out: Path) -> int:
    """Parse every JSON file of the release's data folders and write them as plain parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pydantic_core import from_json

    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for folder in DATA_FOLDERS:
        rows = []
        for path in sorted((release / folder).rglob("*.json")):
            data = from_json(path.read_bytes(), cache_strings="keys")
            rows.append(
                {
                    "file": path.relative_to(release).as_posix(),
                    "task": data.get("task") or data.get("task_type"),
                    "scenario": data.get("task_context"),
                    "turns": [
                        {
                            "role": t.get("role"),
                            "content": t.get("content"),
                            "content_zh": t.get("content_zh"),
                        }
                        for t in data["history"]
                    ],
                }
            )
        n += len(rows)
        pq.write_table(pa.Table.from_pylist(rows), out / f"{folder}.parquet")
    from_json((release / "user_profiling/desc_translated.json").read_bytes())
    return n


def main() -> None:
    if sys.argv[1:2] == ["--floor-probe"]:
        floor_probe(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--release", default=str(HERE.parent.parent / "shared/data/recllmsim-release"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="10000,50000,100000")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    env = {"HF_HOME": str(work / "hf"), "RECLLMSIM_CACHE": str(work / "cache")}

    # one run of each first, not counted: it writes the bytecode caches and reads the files into the
    # page cache for both, as a user's second build would find them
    measure([RECLLMSIM, "build", "--source", args.release, "--out", "recllmsim", "-q"], work, env)
    measure([sys.executable, __file__, "--floor-probe", args.release, str(work / "floor")], work, env)
    builds = [
        measure([RECLLMSIM, "build", "--source", args.release, "--out", "recllmsim", "-q"], work, env)
        for _ in range(args.repeat)
    ]
    wall = statistics.median(b["wall"] for b in builds)
    rss = max(b["rss_mb"] for b in builds)
    floors = [
        measure([sys.executable, __file__, "--floor-probe", args.release, str(work / "floor")], work, env)
        for _ in range(args.repeat)
    ]
    floor = statistics.median(f["wall"] for f in floors)
    # CPU seconds (user + system) move less with other load on the machine than wall time
    build_cpu = statistics.median(b["cpu"] for b in builds)
    floor_cpu = statistics.median(f["cpu"] for f in floors)
    print(
        f"full-release build, all configs (CLI start-up included), median of {args.repeat}: {wall:.2f} s "
        f"(target 5 s, ratio {wall / 5:.2f}); peak RSS {rss:.0f} MB (target 600 MB, ratio {rss / 600:.2f})"
    )
    print(
        f"floor (parse the same JSON files, write plain parquet; start-up included), median of "
        f"{args.repeat}: {floor:.2f} s; build / floor = {wall / floor:.2f} (target 3)"
    )
    print(
        f"CPU (user + system): build {build_cpu:.2f} s, floor {floor_cpu:.2f} s, "
        f"build / floor = {build_cpu / floor_cpu:.2f}"
    )

    for name in ("human_conversations", "intent"):
        loads = []
        for i in range(args.repeat):
            code = f"import datasets; datasets.load_dataset('recllmsim', {name!r})"
            cache = str(work / f"cold-{name}-{i}")
            loads.append(measure([sys.executable, "-c", code], work, {**env, "HF_DATASETS_CACHE": cache}))
        load = statistics.median(x["wall"] for x in loads)
        print(
            f"cold load_dataset('recllmsim', {name!r}) (interpreter start included), median of "
            f"{args.repeat}: {load:.2f} s (target 2 s, ratio {load / 2:.2f})"
        )

    first = None
    for n in (int(s) for s in args.sizes.split(",")):
        corpus = work / f"syn{n}"
        size = synthetic_corpus(corpus, n)
        r = measure([RECLLMSIM, "build", "--source", str(corpus), "--out", f"syn{n}-out", "-q"], work, env)
        first = first or r["rss_mb"]
        target = f" (target 20 s, ratio {r['wall'] / 20:.2f})" if n == 100_000 else ""
        print(
            f"synthetic corpus {n:>7,} conversations ({size / 1e6:,.0f} MB jsonl): build {r['wall']:.1f} s"
            f"{target} (CPU {r['cpu']:.1f} s), peak RSS {r['rss_mb']:.0f} MB "
            f"(x{r['rss_mb'] / first:.2f} of the smallest)"
        )
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
