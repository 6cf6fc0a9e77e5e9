"""Benchmark: LLMRunner vs a bare ``AsyncOpenAI.chat.completions.create`` loop.

Starts the fake OpenAI server (tests/fake_openai.py) in its own process with 300 ms ± 50 %
latency, then runs, each in a fresh subprocess (start-up included), the same number of
distinct requests at the same concurrency through:

- ``bare``:   ``AsyncOpenAI(max_retries=0).chat.completions.create`` under a semaphore;
- ``runner``: ``LLMRunner`` built by ``runner_from_options`` (cache on, in a new corpus folder);
- ``replay``: the same runner command again (every call replays from the cache, 0 requests).

Prints wall time against the ideal (requests x 0.3 s / concurrency), client CPU per
request (user + sys of the child process, from ``wait4``), the server's CPU per request
(to show it is not the bottleneck) and the runner/bare ratios. ``--repeat`` keeps, per
mode, the run with the least client CPU (the machine may be shared).

    /work/venv/bin/python benchmarks/bench_llm_client.py            # 2048 requests, concurrency 64
    /work/venv/bin/python benchmarks/bench_llm_client.py -n 1024 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LATENCY, JITTER = 0.3, 0.5


def _messages(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Plan a weekend trip, request {i}, with a budget in mind."}]


async def _bare(url: str, n: int, concurrency: int) -> int:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="sk-bench", max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with slots:
            reply = await client.chat.completions.create(model="gpt-4o-mini", messages=_messages(i), seed=1)
        return len(reply.choices[0].message.content)

    done = await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    return sum(1 for x in done if x)


async def _runner(url: str, n: int, concurrency: int, corpus: str) -> int:
    from recllmsim_hf.generation.llm import LLMRequest
    from recllmsim_hf.generation.llm.options import runner_from_options

    runner = runner_from_options(corpus, base_url=url, api_key="sk-bench", concurrency=concurrency)
    results = await asyncio.gather(
        *(runner.complete(LLMRequest(role="assistant", messages=_messages(i), seed=1)) for i in range(n))
    )
    await runner.close()
    return sum(1 for r in results if r.ok)


def _worker(args: argparse.Namespace) -> None:
    if args.worker == "bare":
        ok = asyncio.run(_bare(args.url, args.n, args.concurrency))
    else:
        ok = asyncio.run(_runner(args.url, args.n, args.concurrency, args.corpus))
    print(json.dumps({"ok": ok}))


def _measure(mode: str, url: str, n: int, concurrency: int, corpus: str) -> dict:
    worker = "bare" if mode == "bare" else "runner"
    cmd = [sys.executable, __file__, "--worker", worker, "--url", url, "-n", str(n), "-c", str(concurrency)]
    started = time.perf_counter()
    proc = subprocess.Popen([*cmd, "--corpus", corpus], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} worker failed with exit code {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "mode": mode,
        "ok": json.loads(out)["ok"],
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_ms_per_request": cpu / n * 1000,
    }


def _cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _server_stats(url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(url.removesuffix("/v1") + "/_stats", timeout=5) as r:
        return json.loads(r.read())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=2048, help="requests per measurement")
    p.add_argument("-c", "--concurrency", type=int, default=64)
    p.add_argument("--repeat", type=int, default=1, help="measure each mode this many times (keep the best)")
    p.add_argument("--worker", choices=["bare", "runner"], help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--corpus", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return _worker(args)

    server_cmd = [sys.executable, str(ROOT / "tests" / "fake_openai.py"), "--port", "0"]
    server_cmd += ["--latency", str(LATENCY), "--jitter", str(JITTER)]
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        ideal = args.n * LATENCY / args.concurrency
        print(f"fake server {url}: latency {LATENCY * 1000:.0f} ms ± {JITTER:.0%}, TCP_NODELAY, backlog 2048")
        print(
            f"{args.n} requests at concurrency {args.concurrency}: ideal {ideal:.2f} s; start-up included\n"
        )
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for mode in ("bare", "runner", "replay"):
                with tempfile.TemporaryDirectory() as tmp:
                    corpus = str(Path(tmp) / "corpus")
                    if mode == "replay":
                        _measure("runner", url, args.n, args.concurrency, corpus)  # fill the cache
                    before, server_cpu = _server_stats(url)["count"], _cpu(server.pid)
                    m = _measure(mode, url, args.n, args.concurrency, corpus)
                    m["requests"] = _server_stats(url)["count"] - before
                    m["server_cpu_s"] = _cpu(server.pid) - server_cpu
                if mode not in best or m["cpu_s"] < best[mode]["cpu_s"]:
                    best[mode] = m
        row = "{:<8} {:>6} {:>9} {:>8} {:>11} {:>7} {:>11} {:>14}"
        print(
            row.format(
                "mode", "ok", "HTTP req", "wall s", "wall/ideal", "CPU s", "CPU ms/req", "server ms/req"
            )
        )
        for mode in ("bare", "runner", "replay"):
            m = best[mode]
            server_ms = f"{m['server_cpu_s'] / max(1, m['requests']) * 1000:.3f}" if m["requests"] else "-"
            print(row.format(mode, m["ok"], m["requests"], f"{m['wall_s']:.2f}", f"{m['wall_s'] / ideal:.3f}",
                             f"{m['cpu_s']:.2f}", f"{m['cpu_ms_per_request']:.3f}", server_ms))  # fmt: skip
        ratio = best["runner"]["cpu_s"] / best["bare"]["cpu_s"]
        print(f"\nrunner CPU / bare CPU = {ratio:.3f} (must be <= 1)")
        print(f"runner wall / ideal   = {best['runner']['wall_s'] / ideal:.3f} (target <= 1.2)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
