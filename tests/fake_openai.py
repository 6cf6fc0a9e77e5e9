"""A small but real OpenAI-compatible HTTP server for tests and benchmarks (stdlib only).

Serves ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /_stats`` (the
counters below, as JSON) over HTTP/1.1 with keep-alive, TCP_NODELAY and a listen
backlog of 2048, so that 64 simultaneous clients never wait on SYN retries or
delayed ACKs.

In a test (the server runs on its own event loop in a background thread)::

    with FakeOpenAI(end_after=2, rate_429=0.2, seed=1) as srv:
        client = AsyncOpenAI(base_url=srv.base_url, api_key="sk-test")
        ...
        assert srv.count == 7 and srv.count_key("sk-test") == 7

As a separate process (prints its base URL on the first stdout line, serves until killed)::

    python tests/fake_openai.py --port 0 --latency 0.3 --jitter 0.5 --rate-429 0.2 --seed 1

Options (keyword arguments; the same names as ``--flags`` with dashes):

- ``replier(messages, body) -> str``: the reply text. Default :func:`default_reply`:
  a request whose messages contain :data:`END_PROMPT` comes from the user simulator,
  which says "Thank you, goodbye." once it has seen ``end_after`` end prompts (so a
  conversation has ``end_after`` assistant replies before the goodbye); any other
  request gets a deterministic assistant-style answer.
- ``json_replier(schema, messages, body) -> dict | str``: the reply when the request asks
  for ``response_format={"type": "json_schema", ...}``, or gives a schema in a message after
  "JSON schema:" (JSON mode and plain prompting: the model follows the prompt). Default :func:`example_for`, a
  schema-driven example (first enum value, ``minItems`` items, ``minimum`` numbers).
- ``latency`` seconds, ``jitter`` fraction: each response waits ``latency * (1 + jitter * u)``,
  ``u`` uniform in [-1, 1].
- Fault rates (each in [0, 1], drawn once per request): ``rate_429`` (with ``Retry-After:
  <retry_after>`` and ``retry-after-ms``), ``rate_500``, ``rate_503``, ``rate_hang`` (sleeps
  ``hang_seconds`` before answering normally), ``rate_bad_json`` (a 200 with a cut JSON body).
- ``script``: a list of outcomes ("ok", "hang", "bad_json" or any HTTP error status such as
  "429", "500", "503", "400", "401") used for the first requests in arrival order, before the
  rates apply.
- ``seed``: faults and jitter come from sha256(seed, request body, how often that exact body
  was seen before), so a run is deterministic whatever order concurrent requests arrive in,
  and a retried body gets a fresh draw.
- ``max_tokens`` / ``max_completion_tokens`` in a request cut the reply (``finish_reason``
  "length"); ``usage`` counts about one token per 4 characters.
- ``quirks``: a :class:`fake_quirks.Quirks` (or the name of one of ``fake_quirks.PRESETS``)
  switching on the behaviours of real servers, with their real status codes and error bodies:
  OpenAI reasoning-model rules, no json_schema (vLLM / Ollama style 400s), unknown model 404,
  bad key 401, no ``usage``, cached prompt tokens, truncated JSON, refusals, fenced JSON,
  context length 400s. ``--quirks NAME`` in process mode.
- ``goodbye``: the simulator's closing message (default :data:`END_PHRASE`); the Chinese end
  prompt counts like the English one.

Recorded: ``requests`` (dicts with path, body and headers, ``authorization`` redacted to
"Bearer <redacted>"), ``count``, ``outcomes`` (outcome -> count), ``max_in_flight``, and
``count_key(key)``: how many requests carried ``Authorization: Bearer <key>`` (only a
sha256 of each bearer is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from fake_quirks import PRESETS, Quirks

END_PROMPT = "[System]: If you wish to conclude this conversation, please reply with 'Thank you, goodbye.'"
END_PROMPT_ZH = "[System]：如果你想结束这次对话，请回复“谢谢，再见。”"
END_PHRASE = "Thank you, goodbye."
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}
REASONS |= {403: "Forbidden", 422: "Unprocessable Entity"}


def default_reply(messages: list[dict], body: dict, end_after: int = 3, goodbye: str = END_PHRASE) -> str:
    """Simulator if the messages hold the end prompt, else assistant; deterministic text."""
    seen = sum(p in str(m.get("content", "")) for m in messages for p in (END_PROMPT, END_PROMPT_ZH))
    tag = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:8]
    if seen:
        if seen >= end_after:
            return goodbye
        return f"I would like more details on option {seen}, please. Can you consider my budget? ({tag})"
    n = sum(m.get("role") == "user" for m in messages)
    return f"Here is suggestion {n}: a plan in three steps that fits your preferences. ({tag})"


def example_for(schema: dict, messages: list[dict] | None = None, body: dict | None = None) -> Any:
    """A value valid for a simple JSON schema (objects, arrays, enums, refs, anyOf)."""
    defs = schema.get("$defs", {})

    def gen(s: dict) -> Any:
        if "$ref" in s:
            return gen(defs[s["$ref"].rsplit("/", 1)[-1]])
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return s["enum"][0]
        for key in ("anyOf", "oneOf"):
            if key in s:
                options = [o for o in s[key] if o.get("type") != "null"] or s[key]
                return gen(options[0])
        t = s.get("type", "object")
        t = next((x for x in t if x != "null"), "null") if isinstance(t, list) else t
        if t == "object":
            return {k: gen(v) for k, v in s.get("properties", {}).items()}
        if t == "array":
            return [gen(s.get("items", {})) for _ in range(max(1, s.get("minItems", 1)))]
        if t in ("integer", "number"):
            return s.get("minimum", s.get("exclusiveMinimum", -1) + 1)
        if t == "boolean":
            return True
        if t == "null":
            return None
        return "x" * max(1, s.get("minLength", 4))

    return gen(schema)


SCHEMA_MARKER = "JSON schema:"


def _schema_in_prompt(messages: list[dict]) -> dict | None:
    """The JSON schema a message asks the model to follow ("... JSON schema:\n{...}"), if any."""
    for m in messages:
        content = str(m.get("content", ""))
        at = content.find(SCHEMA_MARKER)
        if at != -1:
            try:
                value, _ = json.JSONDecoder().raw_decode(content[at + len(SCHEMA_MARKER) :].lstrip())
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


class FakeOpenAI:
    """The server; use as a context manager (background thread) or :meth:`serve_forever`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        replier: Callable[[list[dict], dict], str] | None = None,
        json_replier: Callable[[dict, list[dict], dict], Any] | None = None,
        end_after: int = 3,
        latency: float = 0.0,
        jitter: float = 0.0,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        rate_503: float = 0.0,
        rate_hang: float = 0.0,
        rate_bad_json: float = 0.0,
        retry_after: float = 0.05,
        hang_seconds: float = 30.0,
        script: list[str] | None = None,
        seed: int = 0,
        models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o"),
        quirks: Quirks | str | None = None,
        goodbye: str = END_PHRASE,
    ):
        self.host, self.port = host, port
        self.quirks = PRESETS[quirks] if isinstance(quirks, str) else (quirks or Quirks())
        self.replier = replier or (lambda messages, body: default_reply(messages, body, end_after, goodbye))
        self.json_replier = json_replier or example_for
        self.latency, self.jitter = latency, jitter
        self.rates = [("429", rate_429), ("500", rate_500), ("503", rate_503)]
        self.rates += [("hang", rate_hang), ("bad_json", rate_bad_json)]
        self.retry_after, self.hang_seconds = retry_after, hang_seconds
        self.script = list(script or [])
        self.seed, self.models = seed, models
        self.requests: list[dict] = []
        self.outcomes: Counter[str] = Counter()
        self.count = self.in_flight = self.max_in_flight = 0
        self._bearers: Counter[str] = Counter()
        self._seen_bodies: Counter[bytes] = Counter()
        self._tasks: set[asyncio.Task] = set()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def count_key(self, key: str) -> int:
        """How many requests carried ``Authorization: Bearer <key>``."""
        return self._bearers[hashlib.sha256(key.encode()).hexdigest()]

    def stats(self) -> dict:
        return {"count": self.count, "max_in_flight": self.max_in_flight, "outcomes": dict(self.outcomes)}

    # -- decisions ---------------------------------------------------------------------------
    def _draw(self, raw: bytes) -> tuple[str, float]:
        nth = self._seen_bodies[raw]
        self._seen_bodies[raw] += 1
        digest = hashlib.sha256(f"{self.seed}:{nth}:".encode() + raw).digest()
        rng = random.Random(digest)
        delay = self.latency * (1 + self.jitter * rng.uniform(-1, 1))
        if self.script:
            return self.script.pop(0), delay
        u, edge = rng.random(), 0.0
        for outcome, rate in self.rates:
            edge += rate
            if u < edge:
                return outcome, delay
        return "ok", delay

    def _completion(self, body: dict) -> bytes:
        messages = body.get("messages") or []
        fmt = body.get("response_format") or {}
        prompted = _schema_in_prompt(messages)
        structured = fmt.get("type") in ("json_schema", "json_object") or prompted is not None
        if fmt.get("type") == "json_schema":
            value = self.json_replier(fmt["json_schema"].get("schema", {}), messages, body)
            text = value if isinstance(value, str) else json.dumps(value)
        elif prompted is not None:  # a model following a schema given in the prompt (JSON mode or none)
            value = self.json_replier(prompted, messages, body)
            text = value if isinstance(value, str) else json.dumps(value)
        else:
            text = self.replier(messages, body)
        message, finish, usage = self.quirks.shape(body, text, structured)
        ident = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
        reply = {
            "id": f"chatcmpl-{ident}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": body.get("model", "unknown"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        }
        if self.quirks.usage:
            reply["usage"] = usage
        return json.dumps(reply).encode()

    # -- HTTP --------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                status, extra, payload = await self._respond(method, path.split("?")[0], headers, raw)
                out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}"]
                out += ["content-type: application/json", f"content-length: {len(payload)}"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + payload)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # a client gone or the server stopping: nothing to answer
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _respond(self, method: str, path: str, headers: dict, raw: bytes) -> tuple[int, dict, bytes]:
        if method == "GET" and path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
            return 200, {}, json.dumps({"object": "list", "data": data}).encode()
        if method == "GET" and path == "/_stats":
            return 200, {}, json.dumps(self.stats()).encode()
        if method != "POST" or path != "/v1/chat/completions":
            return 404, {}, json.dumps({"error": {"message": f"no route {method} {path}"}}).encode()
        self.count += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            auth = headers.get("authorization", "")
            if auth.startswith("Bearer "):
                self._bearers[hashlib.sha256(auth[7:].encode()).hexdigest()] += 1
            body = json.loads(raw or b"{}")
            redacted = {k: ("Bearer <redacted>" if k == "authorization" else v) for k, v in headers.items()}
            self.requests.append({"path": path, "body": body, "headers": redacted, "raw": raw.decode()})
            refused = self.quirks.check(body, auth[7:] if auth.startswith("Bearer ") else "")
            if refused is not None:
                self.outcomes[str(refused[0])] += 1
                return refused[0], {}, json.dumps(refused[1]).encode()
            outcome, delay = self._draw(raw)
            self.outcomes[outcome] += 1
            await asyncio.sleep(self.hang_seconds if outcome == "hang" else max(0.0, delay))
            if outcome.isdigit():
                extra = {}
                if outcome == "429":
                    extra = {"retry-after": f"{self.retry_after:g}"}
                    extra["retry-after-ms"] = str(round(self.retry_after * 1000))
                error = {"error": {"message": f"injected {outcome}", "type": "fake_fault", "code": outcome}}
                return int(outcome), extra, json.dumps(error).encode()
            payload = self._completion(body)
            return 200, {}, (payload[: len(payload) // 2] if outcome == "bad_json" else payload)
        finally:
            self.in_flight -= 1

    async def _start(self) -> asyncio.AbstractServer:
        server = await asyncio.start_server(self._handle, self.host, self.port, backlog=2048)
        self.port = server.sockets[0].getsockname()[1]
        return server

    # -- running -----------------------------------------------------------------------------
    def __enter__(self) -> FakeOpenAI:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(self._start())
            self._loop.call_soon(ready.set)
            self._loop.run_forever()
            self._server.close()
            for task in list(self._tasks):
                task.cancel()

            async def drain() -> None:
                await asyncio.gather(*self._tasks, return_exceptions=True)

            self._loop.run_until_complete(drain())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def serve_forever(self) -> None:
        async def main() -> None:
            server = await self._start()
            print(self.base_url, flush=True)
            async with server:
                await server.serve_forever()

        asyncio.run(main())


def standalone_replier(schema: dict, messages: list[dict], body: dict) -> Any:
    """The structured replies of the server run on its own: distinct profiles, each with a dislike,
    for ``recllmsim generate profiles`` (a schema with ``profiles``); :func:`example_for` otherwise."""
    if "profiles" not in schema.get("properties", {}):
        return example_for(schema, messages, body)
    rng = random.Random(json.dumps(messages, sort_keys=True) + str(body.get("seed")))
    drafts = []
    for _ in range(5):
        j = rng.randrange(10**9)
        drafts.append(
            {
                "gender": rng.choice(["Female", "Male"]),
                "age": str(18 + j % 60),
                "personality": [f"trait {j}", "dislikes noise"],
                "occupation": f"occupation {j}",
                "daily_interests_and_hobbies": [f"hobby {j}"],
                "travel_habits": [f"trips to place {j}"],
                "dining_preferences": [f"dish {j}", f"avoids food {j}"],
                "spending_habits": [f"saves for {j}"],
                "other_aspects": [f"pet {j}"],
            }
        )
    return {"profiles": drafts}


def server_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The command-line options of :class:`FakeOpenAI` (shared with ``batch_server.py``)."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--end-after", type=int, default=3)
    for name in ("latency", "jitter", "rate-429", "rate-500", "rate-503", "rate-hang", "rate-bad-json"):
        p.add_argument(f"--{name}", type=float, default=0.0)
    p.add_argument("--retry-after", type=float, default=0.05)
    p.add_argument("--hang-seconds", type=float, default=30.0)
    p.add_argument("--quirks", choices=sorted(PRESETS), default=None)
    p.add_argument("--goodbye", default=END_PHRASE)
    return p


def _main(argv: list[str] | None = None) -> None:
    p = server_args(
        argparse.ArgumentParser(description="Fake OpenAI-compatible server (prints its base URL).")
    )
    args = vars(p.parse_args(argv))
    try:
        FakeOpenAI(json_replier=standalone_replier, **args).serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    _main()
