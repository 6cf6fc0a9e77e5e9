"""The ``openai-batch`` back end: one round's parts through the OpenAI Batch API.

For each part (one model, at most 50,000 requests and 200 MB): upload its lines with the Files
API (``purpose="batch"``), create a batch on ``/v1/chat/completions`` with the ``24h`` window,
poll ``GET /v1/batches/{id}`` (the wait grows 1.5x from ``--batch-poll`` seconds up to
``poll_max``; a progress line on stderr whenever the status or the counts change), then
download the output and error files. Every id is written to the round's ``state.json`` as soon
as it is known, so a rerun after kill -9 polls the same batch instead of sending it again; a kill
between creating a batch and writing its id is covered by looking the batch up by its input file.

``expired`` and ``cancelled`` batches are downloaded like completed ones (the finished lines are
kept, the rest go into the next round); a ``failed`` batch (the API refused its input while
``validating``: an unknown model, a malformed line) is a :class:`ServiceError` naming the model,
the endpoint, the line and the server's message, raised before any other round: nothing of it was
answered or billed; the round's other batches stop being polled (their ids are kept, see
``generation/simulate/runfolder.py``), and a rerun polls them and sends the failed one again.
Error lines of an unknown model (404) or a refused parameter (400) stop the run through the
fail-fast rule of ``rounds.py`` after that one round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from recllmsim_hf.corpus import atomic_write_text
from recllmsim_hf.errors import ServiceError

from ..guard import OPENAI_URL
from . import ExecutorSpec
from .roundfiles import URL, part_bytes

TERMINAL = ("completed", "expired", "cancelled", "failed")
FILE_TIMEOUT = 600.0


def combine(folder: Path, parts: list[dict]) -> None:
    """Concatenate the parts' answers into the round's ``output.jsonl`` and ``errors.jsonl``."""
    for kind in ("output", "errors"):
        chunks = []
        for part in parts:
            path = folder / f"part-{part['index']:03d}.{kind}.jsonl"
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                chunks.append(text if not text or text.endswith("\n") else text + "\n")
        atomic_write_text(folder / f"{kind}.jsonl", "".join(chunks))


def failed_line(batch, endpoint, label: str, folder: Path) -> str:
    """The one line of a batch the API refused while validating (an unknown model, a bad line)."""
    first = (batch.errors.data or [None])[0] if batch.errors else None
    if first is None:
        why = "no reason given"
    else:
        where = f"line {first.line}: " if first.line is not None else ""
        why = f"{where}{first.message or 'no message'}" + (f" ({first.code})" if first.code else "")
    return (
        f"{endpoint.model} at {endpoint.base_url or OPENAI_URL}: {label}: batch {batch.id} failed "
        f"validation ({why}); nothing of it was answered or billed; fix the model name or the request "
        f"(--model, --param, --model-rules) and rerun (a rerun sends this batch again and polls the "
        f"round's others; the round is {folder})"
    )


class OpenAIBatchBackend:
    """See the module docstring."""

    name = "openai-batch"
    splits = True  # a round's lines of a role with several endpoints go to all of them (rounds.py)

    def __init__(self, spec: ExecutorSpec, *, timeout: float = 60.0, log: Callable | None = None):
        self.spec, self.timeout = spec, timeout
        self.log = log or (lambda line: None)
        self._clients: dict = {}

    async def run(self, folder: Path, state: dict, save: Callable, endpoint_of: Callable) -> None:
        targets = [(part, endpoint_of(part["group"])) for part in state["parts"]]
        tasks = [asyncio.ensure_future(self._part(folder, state, p, save, ep)) for p, ep in targets]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # one part failed: the others stop where they are (their ids are saved)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for client in self._clients.values():
                await client.close()
            self._clients.clear()
        combine(folder, state["parts"])

    def _client(self, endpoint):
        import openai

        ident = (endpoint.base_url, endpoint.api_key)
        if ident not in self._clients:
            # Uploads and downloads of up to 200 MB take longer than one chat completion.
            self._clients[ident] = openai.AsyncOpenAI(
                base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=4,
                timeout=max(self.timeout, FILE_TIMEOUT),
            )  # fmt: skip
        return self._clients[ident]

    async def _call(self, endpoint, what: str, call):
        import openai

        where = endpoint.base_url or "the OpenAI API"
        try:
            return await call
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            raise ServiceError(
                f"{where} refused the key ({what}: HTTP {e.status_code}); check --api-key"
            ) from None
        except openai.APIStatusError as e:
            body = e.body if isinstance(e.body, dict) else {}  # the SDK's: the body's "error" object
            text = body.get("message") if isinstance(body.get("message"), str) else e.message
            message = str(text).splitlines()[0][:200] if text else "no message"
            raise ServiceError(f"{where}: {what} failed (HTTP {e.status_code}: {message})") from None
        except openai.APIConnectionError as e:
            cause = type(e.__cause__ or e).__name__
            raise ServiceError(f"{where}: {what}: cannot connect ({cause}); check --base-url") from None

    async def _part(self, folder: Path, state: dict, part: dict, save: Callable, endpoint) -> None:
        if part.get("downloaded"):
            return
        if part.get("status") == "failed":  # refused by a run before: sent again (it cost nothing)
            for name in ("file_id", "batch_id", "status"):
                part.pop(name, None)
        client, label = self._client(endpoint), f"batch round {state['round']} part {part['index']}"
        if not part.get("file_id"):
            name = f"{folder.name}-part-{part['index']:03d}.jsonl"
            upload = client.files.create(file=(name, part_bytes(folder, part)), purpose="batch")
            part["file_id"] = (await self._call(endpoint, "uploading the batch file", upload)).id
            save()
        if not part.get("batch_id"):
            batch = await self._find(client, endpoint, part["file_id"])
            if batch is None:
                create = client.batches.create(
                    input_file_id=part["file_id"], endpoint=URL, completion_window="24h",
                    metadata={"recllmsim_round": folder.name, "part": str(part["index"])},
                )  # fmt: skip
                batch = await self._call(endpoint, "creating the batch", create)
            part["batch_id"] = batch.id
            save()
        batch = await self._poll(client, endpoint, part["batch_id"], label)
        part["status"] = batch.status
        if batch.status == "failed":
            save()  # nothing of it runs at the server any more (see runfolder._batch_paid)
            raise ServiceError(failed_line(batch, endpoint, label, folder))
        for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
            data = b""
            if file_id:
                content = client.files.content(file_id)
                data = (await self._call(endpoint, f"downloading {file_id}", content)).content
            atomic_write_text(folder / f"part-{part['index']:03d}.{kind}.jsonl", data.decode("utf-8"))
        part["downloaded"] = True
        save()

    async def _find(self, client, endpoint, file_id: str):
        """A batch already made from ``file_id`` (by a run killed before it saved the id), or None."""
        listing = await self._call(endpoint, "listing batches", client.batches.list(limit=100))
        for batch in listing.data:
            if batch.input_file_id == file_id:
                return batch
        return None

    async def _poll(self, client, endpoint, batch_id: str, label: str):
        delay, shown = self.spec.poll_interval, None
        while True:
            batch = await self._call(endpoint, f"polling {batch_id}", client.batches.retrieve(batch_id))
            counts = batch.request_counts
            now = (batch.status, counts.completed if counts else 0, counts.failed if counts else 0)
            if now != shown:
                total = counts.total if counts else 0
                self.log(f"{label}: {batch_id} {now[0]}, {now[1]:,}/{total:,} done, {now[2]:,} failed")
                shown = now
            if batch.status in TERMINAL:
                return batch
            await asyncio.sleep(delay)
            delay = min(self.spec.poll_max, delay * 1.5)
