"""The files of one batch round: ``CORPUS/.batch/<run>/round-NNNN/``.

- ``input.jsonl``: one line per request in the OpenAI batch format, ``{"custom_id": KEY,
  "method": "POST", "url": "/v1/chat/completions", "body": BODY}`` where ``KEY`` is the
  request's cache key (``generation/llm/cache.py``) and ``BODY`` is, byte for byte, the body the
  online executor would send. Lines are grouped by endpoint and model (a batch holds one
  model) and sorted by key, so the same round has the same bytes.
- ``state.json``: the round's progress (``status``: ``open`` -> ``downloaded`` -> ``applied``)
  and its *parts* (line ranges sent as one batch each, with their file and batch ids).
- ``output.jsonl`` / ``errors.jsonl``: the answered lines and the failed lines, as the back end
  returned them (``{"custom_id", "response": {"status_code", "body"}, "error"}``).

Every file is written atomically (temporary file + rename), so a kill leaves a round either
without a file or with the whole of it.
"""

from __future__ import annotations

import json
from pathlib import Path

from recllmsim_hf.corpus import atomic_write_text
from recllmsim_hf.errors import InputError

from ..transport import TransportFailure, status_failure

URL = "/v1/chat/completions"


def batch_line(key: str, body_json: str) -> str:
    """One input line; ``body_json`` is the exact online body, embedded as it is."""
    return f'{{"custom_id":{json.dumps(key)},"method":"POST","url":"{URL}","body":{body_json}}}\n'


def split_parts(lines: list[tuple[tuple, str]], max_requests: int, max_bytes: int) -> list[dict]:
    """Line ranges of ``[(group, line)]`` (sorted by group) that each fit one batch."""
    parts: list[dict] = []
    for number, (group, line) in enumerate(lines):
        size = len(line.encode("utf-8"))
        if size > max_bytes:
            raise InputError(f"a batch request of {size} bytes is over the batch limit of {max_bytes} bytes")
        last = parts[-1] if parts else None
        if (
            last is None
            or tuple(last["group"]) != group
            or last["count"] >= max_requests
            or last["bytes"] + size > max_bytes
        ):
            parts.append({"index": len(parts), "group": list(group), "first": number, "count": 0, "bytes": 0})
            last = parts[-1]
        last["count"] += 1
        last["bytes"] += size
    return parts


def read_state(folder: Path) -> dict:
    path = folder / "state.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(
            f"{path}: unreadable batch round state ({e}); delete the folder {folder} to send the round again"
        ) from None


def write_state(folder: Path, state: dict) -> None:
    atomic_write_text(folder / "state.json", json.dumps(state, indent=1, sort_keys=True) + "\n")


def part_bytes(folder: Path, part: dict) -> bytes:
    """The input lines of one part."""
    with open(folder / "input.jsonl", "rb") as f:
        lines = f.readlines()
    return b"".join(lines[part["first"] : part["first"] + part["count"]])


def read_answers(data: bytes, where: str) -> dict[str, tuple[str, object]]:
    """custom_id -> ("ok", reply body) | ("error", :class:`TransportFailure`) of output or error lines.

    A failed line becomes the failure the online transport would raise for the same status and
    error body (so 400/404/422 are rejections, 401/403 a refused key, 429/5xx retried); a line
    with an ``error`` and no status (an expired or cancelled request) is retried.
    """
    found: dict[str, tuple[str, object]] = {}
    for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            key = line["custom_id"]
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{where}:{number}: not a batch output line ({raw[:60]!r}...)") from None
        response, error = line.get("response") or {}, line.get("error")
        status = response.get("status_code")
        if status == 200 and isinstance(response.get("body"), dict) and not error:
            found[key] = ("ok", response["body"])
            continue
        message, code = _message(response.get("body"), error)
        if isinstance(status, int) and status >= 400:
            failure = status_failure(status, {}, message, code)
        else:
            text = f"{code}: {message}" if code else message
            failure = TransportFailure(f"HTTP {status}: {text}" if status else text, retryable=True)
        found[key] = ("error", failure)
    return found


def _message(body, error) -> tuple[str, str | None]:
    """The server's message and string ``code`` of a failed line."""
    for source in (error, (body or {}).get("error") if isinstance(body, dict) else None, body):
        if isinstance(source, dict) and isinstance(source.get("message"), str):
            code = source.get("code")
            return source["message"] or "no message", code if isinstance(code, str) else None
        if isinstance(source, str) and source:
            return source, None
    return "no message", None
