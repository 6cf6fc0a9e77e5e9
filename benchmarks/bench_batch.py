"""Benchmark: batch rounds and many endpoints (issue 12), against local servers.

1. ``batch``: ``-n`` conversations (default 256) through ``--executor openai-batch`` against the
   local Batch API server (tests/batch_server.py). The simulator says goodbye after 1-4 end
   prompts (by a hash of its system prompt), so conversations take 3, 5, 7 or 9 requests.
   Prints the rounds against the longest conversation's requests (they must be equal), the
   online requests (must be 0), the batch lines against the requests the conversations made,
   and the cost at the batch price against the same tokens at the online price (ratio 0.5 for
   gpt-4o-mini).
2. ``endpoints``: 256 conversations (``--endpoint-conversations``: enough that the last long
   conversations, which leave servers idle, weigh little) online against one server and against
   two, each server working on at most ``-c`` requests at once with ``--latency`` seconds each
   (the rest wait in its queue; tests/capped_server.py); the client keeps up to 2 x C requests on each server
   (``--concurrency 2C`` with one server; ``--concurrency 4C --endpoint-concurrency 2C`` with two),
   so both runs give each server the same queue. Each server is a process of its own, as real
   servers are (in the client's process they would share its interpreter lock and measure that
   instead). Prints requests per second and the two/one ratio (must be >= 1.8).

    .venv/bin/python benchmarks/bench_batch.py                 # 256 conversations each; C=8, 0.2 s
    .venv/bin/python benchmarks/bench_batch.py -n 64 --only batch
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from batch_server import FakeBatchAPI  # noqa: E402
from capped_server import CappedOpenAI  # noqa: E402
from fake_openai import END_PHRASE, END_PROMPT  # noqa: E402

from recllmsim_hf.corpus import read_jsonl, write_jsonl  # noqa: E402
from recllmsim_hf.schema import Conversation, Profile  # noqa: E402

MODEL = "gpt-4o-mini"


def replier(messages: list[dict], body: dict) -> str:
    """The simulator ends after 1-4 end prompts (by its system prompt), the assistant answers."""
    seen = sum(END_PROMPT in str(m.get("content", "")) for m in messages)
    system = str(messages[0].get("content", ""))
    tag = hashlib.sha256(str(messages).encode()).hexdigest()[:8]
    if seen or messages[-1]["content"].startswith("Begin"):
        if seen >= 1 + int(hashlib.sha256(system.encode()).hexdigest(), 16) % 4:
            return END_PHRASE
        return f"Tell me more about option {seen}, within my budget. ({tag})"
    return f"Here is a plan in three steps that fits your preferences. ({tag})"


def _corpus(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    profiles = [
        Profile(profile_id=str(i), text=f"1. Gender: {'FM'[i % 2]}\n2. Age: {20 + i}") for i in range(32)
    ]
    write_jsonl(folder / "profiles.jsonl", profiles)
    return folder


def bench_batch(n: int, root: Path) -> None:
    from recllmsim_hf.generation.llm import PriceTable
    from recllmsim_hf.generation.llm.executors import ExecutorSpec
    from recllmsim_hf.generation.llm.options import runner_from_options
    from recllmsim_hf.generation.simulate.conversations import Settings, generate_conversations

    folder = _corpus(root, "batch")
    spec = ExecutorSpec.parse("openai-batch", poll_interval=0.01, poll_max=0.05)
    with FakeBatchAPI(replier=replier, polls_per_state=1) as srv:

        def make(corpus):
            return runner_from_options(corpus, base_url=srv.base_url, api_key="sk-bench", model=MODEL)

        started = time.perf_counter()
        s = generate_conversations(folder, n, make, settings=Settings(seed=1), progress=False, executor=spec)
        wall = time.perf_counter() - started
        online, lines, batches = srv.count, srv.batch_lines, len(srv.batches)
    convs = list(read_jsonl(folder / "conversations.jsonl", Conversation))
    lengths = [c.generation.extra["requests"] for c in convs]
    llm = s["llm"]
    at_online = PriceTable.load().cost(MODEL, llm["prompt_tokens"], llm["completion_tokens"])
    print(f"batch: {s['generated']} conversations through openai-batch in {wall:.1f} s ({batches} batches)")
    longest = max(lengths)
    print(f"  rounds {llm['rounds']} = longest conversation's requests {longest}: {llm['rounds'] == longest}")
    print(f"  requests per conversation: {sorted(set(lengths))}; online requests: {online}")
    print(f"  batch lines {lines} = requests made {sum(lengths)}: {lines == sum(lengths)}")
    tokens = f"{llm['prompt_tokens']:,} + {llm['completion_tokens']:,} tokens"
    print(
        f"  cost {llm['cost_usd']:.6f} USD at the batch price vs {at_online:.6f} USD online for the same "
        f"{tokens}: ratio {llm['cost_usd'] / at_online:.3f}"
    )


def _throughput(urls: list[str], folder: Path, n: int, capacity: int) -> tuple[float, int]:
    from recllmsim_hf.generation.llm.options import runner_from_options
    from recllmsim_hf.generation.simulate.conversations import Settings, generate_conversations

    def make(corpus):
        return runner_from_options(
            corpus, base_url=urls, api_key="sk-bench", model=MODEL, concurrency=2 * capacity * len(urls),
            endpoint_concurrency=2 * capacity if len(urls) > 1 else None,
        )  # fmt: skip

    started = time.perf_counter()
    s = generate_conversations(folder, n, make, settings=Settings(seed=2), progress=False)
    return time.perf_counter() - started, s["llm"]["requests"]


class ServerProcess:
    """A CappedOpenAI with this benchmark's replier in a process of its own (``--serve``)."""

    def __init__(self, capacity: int, latency: float):
        self.args = [sys.executable, __file__, "--serve", "-c", str(capacity), "--latency", str(latency)]

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.proc.kill()
            raise SystemExit(f"the benchmark server did not start: {self.base_url!r}")
        return self

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/_stats", timeout=10) as r:
            return json.loads(r.read())

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def bench_endpoints(n: int, capacity: int, latency: float, root: Path) -> None:
    with ServerProcess(capacity, latency) as one:
        wall1, req1 = _throughput([one.base_url], _corpus(root, "one"), n, capacity)
        busiest1 = one.stats()["max_working"]
    with ServerProcess(capacity, latency) as a, ServerProcess(capacity, latency) as b:
        wall2, req2 = _throughput([a.base_url, b.base_url], _corpus(root, "two"), n, capacity)
        sa, sb = a.stats(), b.stats()
        split = (sa["count"], sb["count"])
        busiest2 = max(sa["max_working"], sb["max_working"])
    r1, r2 = req1 / wall1, req2 / wall2
    print(
        f"endpoints: {n} conversations, servers working on at most {capacity} requests of {latency:g} s each"
    )
    print(f"  one server:  {req1} requests in {wall1:.2f} s = {r1:.1f} req/s (busiest {busiest1} at once)")
    print(f"  two servers: {req2} requests in {wall2:.2f} s = {r2:.1f} req/s (split {split[0]}/{split[1]}, "
          f"busiest {busiest2} at once)")  # fmt: skip
    print(f"  two/one throughput: {r2 / r1:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=256, help="conversations")
    p.add_argument("-c", "--capacity", type=int, default=8, help="requests each server works on at once")
    p.add_argument("--latency", type=float, default=0.2, help="seconds per request on a server")
    p.add_argument(
        "--endpoint-conversations", type=int, default=256, help="conversations of the endpoints run"
    )
    p.add_argument("--only", choices=("batch", "endpoints"))
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # one server of the endpoints run
    args = p.parse_args()
    if args.serve:
        CappedOpenAI(capacity=args.capacity, latency=args.latency, replier=replier).serve_forever()
        return
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        if args.only in (None, "batch"):
            bench_batch(args.n, Path(tmp))
        if args.only in (None, "endpoints"):
            bench_endpoints(args.endpoint_conversations, args.capacity, args.latency, Path(tmp))


if __name__ == "__main__":
    main()
