"""A stand-in for ``vllm run-batch``: reads an OpenAI batch input file, writes the output file.

Usage (the flags vLLM takes, plus fault flags)::

    python tests/fake_run_batch.py -i INPUT.jsonl -o OUTPUT.jsonl --model MODEL
        [--end-after 3] [--fail-rate 0.2 --memory FAILED.txt] [--exit-status 2]

Every line is answered with the chat completion :class:`fake_openai.FakeOpenAI` gives for its
body, in vLLM's output format: ``{"id": "vllm-...", "custom_id", "response": {"status_code": 200,
"request_id", "body"}, "error": null}``. Like vLLM it checks the input: a line that is not JSON,
lacks ``custom_id``/``body`` or has a ``url`` other than ``/v1/chat/completions`` stops the run
(exit 1, a traceback-free message on stderr), and a body naming another model than ``--model``
gets a 404 line (``The model `X` does not exist.``). Faults: ``--fail-rate`` answers that share
of lines (chosen by a hash of the custom_id) with a 500 line, each custom_id at most once across
runs (remembered in ``--memory``); ``--exit-status`` prints an error to stderr and exits with it
before writing anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_openai import FakeOpenAI  # noqa: E402


def _line(custom_id: str, status: int, body: dict) -> str:
    tag = hashlib.sha256(custom_id.encode()).hexdigest()[:32]
    response = {"status_code": status, "request_id": f"vllm-batch-{tag}", "body": body}
    return json.dumps({"id": f"vllm-{tag}", "custom_id": custom_id, "response": response, "error": None})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vllm run-batch (fake)")
    p.add_argument("-i", "--input-file", required=True)
    p.add_argument("-o", "--output-file", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--end-after", type=int, default=3)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--memory")
    p.add_argument("--exit-status", type=int, default=0)
    args = p.parse_args(argv)
    if args.exit_status:
        print("INFO loading model weights", file=sys.stderr)
        print(f"RuntimeError: CUDA out of memory (fake, exit {args.exit_status})", file=sys.stderr)
        return args.exit_status
    fake = FakeOpenAI(end_after=args.end_after)
    memory = Path(args.memory) if args.memory else None
    failed = set(memory.read_text().split()) if memory and memory.is_file() else set()
    out = []
    for number, raw in enumerate(Path(args.input_file).read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            custom_id, body = line["custom_id"], line["body"]
        except (ValueError, KeyError, TypeError):
            print(f"ValueError: {args.input_file}:{number}: not a batch request line", file=sys.stderr)
            return 1
        if line.get("url") != "/v1/chat/completions":
            print(f"ValueError: line {number}: unsupported url {line.get('url')!r}", file=sys.stderr)
            return 1
        if body.get("model") != args.model:
            error = {"object": "error", "message": f"The model `{body.get('model')}` does not exist.",
                     "type": "NotFoundError", "param": None, "code": 404}  # fmt: skip
            out.append(_line(custom_id, 404, error))
            continue
        share = int(hashlib.sha256(custom_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        if share < args.fail_rate and custom_id not in failed:
            failed.add(custom_id)
            error = {"object": "error", "message": "injected 500", "type": "InternalServerError", "code": 500}
            out.append(_line(custom_id, 500, error))
            continue
        out.append(_line(custom_id, 200, json.loads(fake._completion(body))))
    Path(args.output_file).write_text("".join(x + "\n" for x in out), encoding="utf-8")
    if memory is not None:
        memory.write_text("".join(f"{x}\n" for x in sorted(failed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
