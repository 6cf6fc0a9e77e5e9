"""Requests and money spent on the failure cases of real servers (issue 10), against the local fake server.

Run: ``python benchmarks/bench_real_servers.py`` (a few seconds; no network). Each line is one case of
the issue: what a run of N calls sends now, against the fake server emulating that server behaviour
(tests/fake_quirks.py). Before the change each of these calls was sent 1 + 8 times (the default
--max-retries), or every one of them failed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_openai import FakeOpenAI  # noqa: E402
from fake_quirks import Quirks  # noqa: E402
from recllmsim_hf.generation.llm import LLMRequest, LLMRunner, endpoints_from_options  # noqa: E402


class Intent(BaseModel):
    intent: Literal["Search", "Recommendation", "Planning"]


def calls(n: int, structured: bool = True, **kw) -> list[LLMRequest]:
    fields = {"response_model": Intent} if structured else {}
    return [
        LLMRequest(role="annotator", messages=[{"role": "system", "content": "Label it."},
                                               {"role": "user", "content": f"utterance {i} " * 40}],
                   temperature=0, seed=0, max_tokens=40, **fields, **kw)
        for i in range(n)
    ]  # fmt: skip


def run(quirks, model: str, requests: list[LLMRequest], **kw) -> tuple[int, list, LLMRunner, str]:
    with FakeOpenAI(quirks=quirks) as srv:
        eps = endpoints_from_options(srv.base_url, "sk-bench", model, environ={})
        runner = LLMRunner(eps, backoff_base=0.001, backoff_max=0.01, warn=lambda line: None, **kw)

        async def main():
            try:
                return await asyncio.gather(*(runner.complete(r) for r in requests)), ""
            except Exception as e:  # a stopped run: report how far it got
                return [], f"stopped: {type(e).__name__}"
            finally:
                await runner.close()

        results, stop = asyncio.run(main())
        return srv.count, results, runner, stop


def main() -> None:
    cases = [
        ("gpt-5-mini, reasoning-model rules, 32 calls", "openai-reasoning", "gpt-5-mini", calls(32), {}),
        ("vLLM without json_schema, 16 calls", "vllm-no-json-schema", "m", calls(16), {}),
        ("Ollama without structured outputs, 16 calls", Quirks(flavour="ollama", structured="none",
                                                               fence_json=True), "m", calls(16), {}),
        ("unknown model, 32 calls, --concurrency 32", "unknown-model", "gpt-4o-mini-typo", calls(32), {}),
        ("truncated JSON (finish_reason length), 6 calls", "truncated-json", "gpt-4o-mini", calls(6), {}),
        ("refusal, 6 calls", "refusal", "gpt-4o-mini", calls(6), {}),
        ("no usage, --budget-usd 0.002, 1000 calls", "no-usage", "gpt-4o-mini", calls(1000, structured=False),
         {"budget_usd": 0.002}),
    ]  # fmt: skip
    print(f"{'case':<52}{'requests':>9}{'ok':>6}{'failed':>8}  note")
    for name, quirks, model, requests, kw in cases:
        sent, results, runner, stop = run(quirks, model, requests, **kw)
        ok = sum(r.ok for r in results)
        modes = sorted({r.structured_mode for r in results if r.ok and r.structured_mode})
        note = stop or (f"mode {', '.join(modes)}" if modes else "")
        if kw.get("budget_usd"):
            note += f"; charged {runner.stats.cost_usd:.6f} USD (estimated usage)"
        print(f"{name:<52}{sent:>9}{ok:>6}{len(results) - ok:>8}  {note}")
    full, half = (run(Quirks(cached_share=s), "gpt-4o-mini", calls(20, structured=False))[2].stats.cost_usd
                  for s in (0.0, 0.5))  # fmt: skip
    print(f"half the prompt tokens cached: cost {half:.6f} vs {full:.6f} USD uncached ({full / half:.2f}x)")


if __name__ == "__main__":
    main()
