"""The ``command`` back end: one round's parts through a local program that reads and writes the
OpenAI batch file format, such as ``vllm run-batch -i {input} -o {output} --model MODEL``.

``--batch-command`` is split like a shell line (no shell runs it); ``{input}``, ``{output}`` and
``{model}`` are replaced in each word by the part's input file, the file the program must write
and the part's model. Parts run one after the other (one model on the GPU at a time). A program
that exits non-zero, cannot be started or writes no output file is a :class:`ServiceError` with
its exit status and the tail of its stderr. A rerun after a kill runs an unfinished part again
(nothing is billed locally); finished parts are kept.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from pathlib import Path

from recllmsim_hf.corpus import atomic_write_text
from recllmsim_hf.errors import ServiceError

from . import ExecutorSpec
from .openai_batch import combine
from .roundfiles import part_bytes

STDERR_TAIL = 300


def stderr_tail(data: bytes) -> str:
    """The last lines of a program's stderr, on one line."""
    lines = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    tail = " | ".join(lines[-3:])
    return tail[-STDERR_TAIL:] if tail else "no stderr"


class CommandBackend:
    """See the module docstring."""

    name = "command"
    splits = False  # one local program: the endpoints are not used

    def __init__(self, spec: ExecutorSpec, *, log: Callable | None = None):
        self.spec, self.argv = spec, shlex.split(spec.batch_command)
        self.log = log or (lambda line: None)

    async def run(self, folder: Path, state: dict, save: Callable, endpoint_of: Callable) -> None:
        for part in state["parts"]:
            if not part.get("downloaded"):
                endpoint_of(part["group"])  # the model must still be one of a role's
                await self._part(folder, state, part)
                part["downloaded"] = True
                save()
        combine(folder, state["parts"])

    async def _part(self, folder: Path, state: dict, part: dict) -> None:
        name = f"part-{part['index']:03d}"
        source, target = folder / f"{name}.input.jsonl", folder / f"{name}.output.jsonl"
        atomic_write_text(source, part_bytes(folder, part).decode("utf-8"))
        target.unlink(missing_ok=True)  # written only by a run that may have been cut off
        words = {"{input}": str(source), "{output}": str(target), "{model}": part["group"][1]}
        argv = []
        for word in self.argv:
            for mark, value in words.items():
                word = word.replace(mark, value)
            argv.append(word)
        label = f"batch round {state['round']} part {part['index']}"
        self.log(f"{label}: {Path(argv[0]).name} on {part['count']:,} request(s)")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
        except OSError as e:
            raise ServiceError(f"--batch-command: cannot run {argv[0]!r} ({e.strerror})") from None
        try:
            _, err = await proc.communicate()
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            raise ServiceError(
                f"--batch-command exited with status {proc.returncode} ({label}): {stderr_tail(err)}"
            )
        if not target.is_file():
            raise ServiceError(
                f"--batch-command exited 0 but wrote no {target} ({label}): {stderr_tail(err)}"
            )
        # The program's file is the part's output; its failed lines are in it (status_code != 200).
