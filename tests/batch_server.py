"""A local OpenAI Batch API server for tests and benchmarks (stdlib only, on top of FakeOpenAI).

Serves, besides everything :class:`fake_openai.FakeOpenAI` serves:

- ``POST /v1/files`` (multipart: ``purpose=batch`` and a ``.jsonl`` ``file``) -> a file object;
  ``GET /v1/files/{id}`` and ``GET /v1/files/{id}/content`` (the raw bytes);
- ``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window: "24h"``) -> a batch
  object; ``GET /v1/batches/{id}``, ``GET /v1/batches`` (a list) and ``POST /v1/batches/{id}/cancel``.

The objects have the shapes of the real API (``object: "file"`` / ``"batch"``, ``request_counts``,
the ``*_at`` timestamps, ``errors: {object: "list", data: [...]}``) and errors are the real
bodies (``{"error": {"message", "type": "invalid_request_error", "param", "code"}}``, 400/401/404).
The server is as strict as the real one where it matters: a key is required, a file must be
uploaded with purpose ``batch``, is at most ``max_bytes`` big and holds at most ``max_requests``
lines, every line has a unique ``custom_id``, ``method: "POST"``, the batch's ``url`` and a body
with a ``model``, and all lines of one file use the same model. A file that breaks a line rule
makes the batch ``failed`` with ``errors.data`` naming the line.

Batches advance when they are polled (deterministic, no clocks): ``polls_per_state`` retrieves
in ``validating``, then ``in_progress`` (``lines_per_poll`` lines answered per retrieve; all at
once when None), then ``finalizing``, then ``completed`` with ``output_file_id`` (lines with
``response.status_code`` 200) and ``error_file_id`` (failed lines). A line's answer is the chat
completion FakeOpenAI would give for its body, with its ``quirks`` (a body the quirks refuse is an
error-file line with the real status and error body, as the real API writes it). Faults:

- ``line_outcome(custom_id, body, nth) -> "ok" | "500" | "429" | "400"``: ``nth`` is how often
  this custom_id was answered before; a non-"ok" outcome is an error-file line with that
  ``status_code`` and an error body;
- ``expire``: how many of the first batches expire once half their lines are answered: status
  ``expired``, the finished lines in the output file, the rest in the error file with code
  ``batch_expired``;
- ``quirks.known_models`` (a model the server does not serve): the real Batch API refuses the
  file while ``validating``: the batch goes ``failed`` with ``errors.data`` ``[{"code":
  "model_not_found", "param": "body.model", "line": N, "message": "The provided model 'X' is not
  supported by the Batch API."}]`` and no line is answered or billed; ``unknown_model="lines"``
  instead lets it run and writes every line as a 404 ``model_not_found`` error line (what the
  real API does for a model that exists but the key may not use);
- a cancel moves a batch to ``cancelling`` and on the next retrieve to ``cancelled``, with the
  finished lines kept and the rest as ``batch_cancelled`` error lines; ``cancel``: how many of
  the first batches someone else cancels once half their lines are answered.

Counters: ``count`` (online chat completions, from FakeOpenAI), ``batch_lines`` (lines
answered), ``batches`` (id -> batch object), ``uploads`` (how many files were uploaded).

Example (in a test)::

    with FakeBatchAPI(end_after=2) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="sk-test")
        f = client.files.create(file=("in.jsonl", data), purpose="batch")
        b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable

from fake_openai import FakeOpenAI, server_args, standalone_replier

ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions")
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024


def _error(status: int, message: str, param: str | None = None, code: str | None = None):
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return status, {}, json.dumps(body).encode()


def _ok(obj: dict):
    return 200, {}, json.dumps(obj).encode()


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, bytes) of a multipart/form-data body."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    parts = {}
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return parts


class FakeBatchAPI(FakeOpenAI):
    """FakeOpenAI plus the Files and Batches endpoints (see the module docstring)."""

    def __init__(
        self,
        *,
        polls_per_state: int = 1,
        lines_per_poll: int | None = None,
        line_outcome: Callable[[str, dict, int], str] | None = None,
        expire: int = 0,
        cancel: int = 0,
        max_requests: int = MAX_REQUESTS,
        max_bytes: int = MAX_BYTES,
        unknown_model: str = "validation",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if unknown_model not in ("validation", "lines"):
            raise ValueError(f"unknown_model: 'validation' or 'lines', not {unknown_model!r}")
        self.unknown_model = unknown_model
        self.polls_per_state, self.lines_per_poll = polls_per_state, lines_per_poll
        self.line_outcome = line_outcome or (lambda custom_id, body, nth: "ok")
        self.expire, self.cancel, self.max_requests, self.max_bytes = expire, cancel, max_requests, max_bytes
        self.files: dict[str, dict] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self._work: dict[str, dict] = {}
        self._answered: Counter[str] = Counter()
        self.batch_lines = self.uploads = 0
        self._serial = 0

    def _id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{hashlib.sha256(f'{self.seed}:{self._serial}'.encode()).hexdigest()[:24]}"

    # -- routes ------------------------------------------------------------------------------
    async def _respond(self, method: str, path: str, headers: dict, raw: bytes):
        if not path.startswith(("/v1/files", "/v1/batches")):
            return await super()._respond(method, path, headers, raw)
        if not headers.get("authorization", "").startswith("Bearer ") or len(headers["authorization"]) < 8:
            return _error(401, "You didn't provide an API key.")
        bearer = headers["authorization"][len("Bearer ") :]
        if self.quirks.api_keys is not None and bearer not in self.quirks.api_keys:  # as online: a 401
            refused = self.quirks.check({}, bearer)
            return refused[0], {}, json.dumps(refused[1]).encode()
        parts = path.strip("/").split("/")[1:]  # files | files/{id} | files/{id}/content | batches ...
        if parts == ["files"] and method == "POST":
            return self._upload(headers.get("content-type", ""), raw)
        if parts[0] == "files" and len(parts) in (2, 3) and method == "GET":
            found = self.files.get(parts[1])
            if found is None:
                return _error(404, f"No such File object: {parts[1]}", "id")
            if len(parts) == 3 and parts[2] == "content":
                return 200, {}, self.contents[parts[1]]
            return _ok(found)
        if parts == ["batches"] and method == "POST":
            return self._create(raw)
        if parts == ["batches"] and method == "GET":
            data = list(reversed(self.batches.values()))
            first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
            return _ok(
                {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": False}
            )
        if parts[0] == "batches" and len(parts) >= 2:
            batch = self.batches.get(parts[1])
            if batch is None:
                return _error(404, f"No batch found with id '{parts[1]}'.", "batch_id")
            if len(parts) == 2 and method == "GET":
                self._advance(batch)
                return _ok(batch)
            if parts[2:] == ["cancel"] and method == "POST":
                if batch["status"] not in ("validating", "in_progress", "finalizing"):
                    return _error(409, f"Cannot cancel a batch with status {batch['status']}.")
                batch["status"], batch["cancelling_at"] = "cancelling", int(time.time())
                return _ok(batch)
        return _error(404, f"Invalid URL ({method} {path})")

    def _upload(self, content_type: str, raw: bytes):
        if not content_type.startswith("multipart/form-data"):
            return _error(400, "Expected a multipart/form-data body.", "file")
        form = parse_multipart(content_type, raw)
        purpose = form.get("purpose", (None, b""))[1].decode()
        if purpose != "batch":
            return _error(
                400,
                f"This server takes batch input files only: purpose must be 'batch', but got '{purpose}'",
                "purpose",
            )
        if "file" not in form:
            return _error(400, "Missing file", "file")
        filename, data = form["file"]
        if not (filename or "").endswith(".jsonl"):
            return _error(400, "Invalid file format for Batch API. Must be .jsonl", "file")
        if len(data) > self.max_bytes:
            return _error(
                400, f"File is too large: {len(data)} bytes; the limit is {self.max_bytes}.", "file"
            )
        self.uploads += 1
        return _ok(self._store(filename, data, "batch"))

    def _store(self, filename: str, data: bytes, purpose: str) -> dict:
        ident = self._id("file-")
        self.files[ident] = {
            "id": ident, "object": "file", "bytes": len(data), "created_at": int(time.time()),
            "filename": filename, "purpose": purpose, "status": "processed", "expires_at": None,
            "status_details": None,
        }  # fmt: skip
        self.contents[ident] = data
        return self.files[ident]

    def _create(self, raw: bytes):
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if name not in body:
                return _error(
                    400, f"Missing required parameter: '{name}'.", name, "missing_required_parameter"
                )
        if body["endpoint"] not in ENDPOINTS:
            return _error(400, f"Invalid endpoint: '{body['endpoint']}'.", "endpoint")
        if body["completion_window"] != "24h":
            return _error(400, f"Invalid completion_window: '{body['completion_window']}'. Supported: '24h'.",
                          "completion_window")  # fmt: skip
        source = self.files.get(body["input_file_id"])
        if source is None:
            return _error(404, f"No such File object: {body['input_file_id']}", "input_file_id")
        if source["purpose"] != "batch":
            return _error(400, "The input file must be uploaded with purpose 'batch'.", "input_file_id")
        now = int(time.time())
        ident = self._id("batch_")
        batch = {
            "id": ident, "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": source["id"], "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
            "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
        }  # fmt: skip
        self.batches[ident] = batch
        self._work[ident] = {"polls": 0, "lines": None, "done": [], "failed": [],
                            "answered_ids": set(), "expire": len(self.batches) <= self.expire,
                            "cancel": len(self.batches) <= self.cancel}  # fmt: skip
        return _ok(batch)

    # -- the batch's life --------------------------------------------------------------------
    def _advance(self, batch: dict) -> None:
        work, now = self._work[batch["id"]], int(time.time())
        status = batch["status"]
        if status == "cancelling":
            self._finish(
                batch,
                "cancelled",
                "batch_cancelled",
                "This request was not executed: the batch was cancelled.",
            )
            return
        if status not in ("validating", "in_progress", "finalizing"):
            return
        work["polls"] += 1
        if status == "validating":
            if work["polls"] < self.polls_per_state:
                return
            problem, lines = self._validate(batch)
            if problem is not None:
                batch.update(status="failed", failed_at=now, errors={"object": "list", "data": [problem]})
                return
            work["lines"], work["polls"], work["answered_ids"] = lines, 0, set()
            batch.update(status="in_progress", in_progress_at=now)
            batch["request_counts"]["total"] = len(lines)
            return
        if status == "in_progress":
            todo = [x for x in work["lines"] if x["custom_id"] not in work["answered_ids"]]
            take = todo if self.lines_per_poll is None else todo[: self.lines_per_poll]
            if work["expire"] or work["cancel"]:
                take = todo[: max(0, len(work["lines"]) // 2 - len(work["answered_ids"]))]
            for line in take:
                self._answer(work, line)
            counts = batch["request_counts"]
            counts["completed"], counts["failed"] = len(work["done"]), len(work["failed"])
            if work["expire"]:
                message = "This request could not be executed before the completion window expired."
                self._finish(batch, "expired", "batch_expired", message)
                return
            if work["cancel"]:  # cancelled by someone else (the dashboard, another client)
                batch["status"], batch["cancelling_at"] = "cancelling", now
                return
            if len(work["answered_ids"]) == len(work["lines"]) and work["polls"] >= self.polls_per_state:
                work["polls"] = 0
                batch.update(status="finalizing", finalizing_at=now)
            return
        if work["polls"] >= self.polls_per_state:
            self._finish(batch, "completed", None, None)

    def _answer(self, work: dict, line: dict) -> None:
        cid = line["custom_id"]
        nth = self._answered[cid]
        self._answered[cid] += 1
        self.batch_lines += 1
        work["answered_ids"].add(cid)
        outcome = self.line_outcome(cid, line["body"], nth)
        request_id = self._id("req_")
        # A line is held to the same rules as an online request (the key was checked at upload).
        keys = self.quirks.api_keys
        refused = self.quirks.check(line["body"], keys[0] if keys else "") if outcome == "ok" else None
        if refused is not None:
            status, error = refused
            response = {"status_code": status, "request_id": request_id, "body": error}
            work["failed"].append(
                {"id": self._id("batch_req_"), "custom_id": cid, "response": response, "error": None}
            )
        elif outcome == "ok":
            body = json.loads(self._completion(line["body"]))
            work["done"].append({"id": self._id("batch_req_"), "custom_id": cid,
                                 "response": {"status_code": 200, "request_id": request_id, "body": body},
                                 "error": None})  # fmt: skip
        else:
            error = {
                "error": {
                    "message": f"injected {outcome}",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            response = {"status_code": int(outcome), "request_id": request_id, "body": error}
            work["failed"].append(
                {"id": self._id("batch_req_"), "custom_id": cid, "response": response, "error": None}
            )

    def _finish(self, batch: dict, status: str, code: str | None, message: str | None) -> None:
        work, now = self._work[batch["id"]], int(time.time())
        if code is not None:  # the lines never answered
            answered = work.get("answered_ids", set())
            for line in work["lines"] or []:
                if line["custom_id"] not in answered:
                    error = {"code": code, "message": message}
                    work["failed"].append(
                        {"id": self._id("batch_req_"), "custom_id": line["custom_id"], "response": None,
                         "error": error}
                    )  # fmt: skip
        if work["done"]:
            data = "".join(json.dumps(x) + "\n" for x in work["done"]).encode()
            batch["output_file_id"] = self._store(f"{batch['id']}_output.jsonl", data, "batch_output")["id"]
        if work["failed"]:
            data = "".join(json.dumps(x) + "\n" for x in work["failed"]).encode()
            batch["error_file_id"] = self._store(f"{batch['id']}_error.jsonl", data, "batch_output")["id"]
        batch["request_counts"].update(completed=len(work["done"]), failed=len(work["failed"]))
        batch["status"], batch[f"{status}_at"] = status, now

    def _validate(self, batch: dict) -> tuple[dict | None, list[dict]]:
        def problem(line: int | None, message: str, code: str, param: str | None = None):
            return {"code": code, "message": message, "param": param, "line": line}, []

        text = self.contents[batch["input_file_id"]].decode("utf-8", errors="replace")
        lines, seen, models = [], set(), set()
        for number, row in enumerate(text.splitlines(), start=1):
            if not row.strip():
                continue
            try:
                data = json.loads(row)
            except ValueError:
                return problem(number, "Invalid JSON line.", "invalid_json_line")
            if not isinstance(data, dict) or not isinstance(data.get("custom_id"), str):
                return problem(number, "Missing 'custom_id'.", "missing_required_parameter", "custom_id")
            if data["custom_id"] in seen:
                return problem(
                    number, f"Duplicate custom_id '{data['custom_id']}'.", "duplicate_custom_id", "custom_id"
                )
            if data.get("method") != "POST":
                return problem(number, "Only POST is supported.", "invalid_method", "method")
            if data.get("url") != batch["endpoint"]:
                return problem(
                    number,
                    f"The url must match the batch's endpoint {batch['endpoint']}.",
                    "invalid_url",
                    "url",
                )
            body = data.get("body")
            if not isinstance(body, dict) or not body.get("model"):
                return problem(
                    number, "Each request body needs a 'model'.", "missing_required_parameter", "body.model"
                )
            known = self.quirks.known_models
            if known is not None and body["model"] not in known and self.unknown_model == "validation":
                return problem(
                    number,
                    f"The provided model '{body['model']}' is not supported by the Batch API.",
                    "model_not_found",
                    "body.model",
                )
            seen.add(data["custom_id"])
            models.add(body["model"])
            lines.append(data)
        if not lines:
            return problem(None, "The input file is empty.", "empty_file")
        if len(lines) > self.max_requests:
            return problem(
                None,
                f"The batch has {len(lines)} requests; the limit is {self.max_requests}.",
                "too_many_requests",
            )
        if len(models) > 1:
            return problem(
                None,
                f"All requests of a batch must use the same model; got {sorted(models)}.",
                "mixed_models",
            )
        return None, lines


def _main(argv: list[str] | None = None) -> None:
    p = server_args(
        argparse.ArgumentParser(description="Local OpenAI Batch API server (prints its base URL).")
    )
    p.add_argument("--polls-per-state", type=int, default=1)
    p.add_argument("--lines-per-poll", type=int, default=None)
    p.add_argument("--unknown-model", choices=["validation", "lines"], default="validation")
    args = vars(p.parse_args(argv))
    try:
        FakeBatchAPI(json_replier=standalone_replier, **args).serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    _main()
