"""Run one function in a forked child process while the caller goes on, and take its result.

A build stages the synthetic release and the two human studies: two independent passes of about
a second each over files of their own. On a machine with a second core the human pass runs in a
child (``os.fork``: the child starts with everything already imported and parsed), and the two
take the time of the longer one. Where there is no ``fork`` or one core only, or the child could
not start, the function simply runs in the caller when the result is asked for: the result is the
same either way (a test builds both ways and compares the bytes).

The child never runs the caller's code after the fork: it calls the function, pickles what it
returns (or the exception it raised, which the caller then raises; one that does not survive
pickling is learnt by running the function in the caller) to a file, and leaves with
``os._exit``. If the caller stops
before asking (an error, Ctrl-C), :meth:`Beside.close` kills and reaps the child.

Example:
    >>> with Beside(lambda: sum(range(10)), scratch) as job:  # doctest: +SKIP
    ...     other_work()
    ...     total = job.result()
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

_ENDING = {signal.SIGINT, signal.SIGTERM}


def _usable_cpus() -> int:
    """The CPUs this process may run on (a job's share of a node, not the node's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def can_fork() -> bool:
    return hasattr(os, "fork") and _usable_cpus() > 1 and os.environ.get("RECLLMSIM_NO_FORK") != "1"


class Beside:
    """``fn`` running in a child (see the module docstring); ``scratch`` is a file path for its
    result; ``fallback`` (default ``fn``) is what runs in the caller when there is no child."""

    def __init__(self, fn: Callable[[], Any], scratch: Path, fallback: Callable[[], Any] | None = None):
        self.fn, self.scratch, self.fallback = fn, Path(scratch), fallback or fn
        self.pid: int | None = None
        if not can_fork():
            return
        # Ctrl-C / SIGTERM held back across the fork: the child must never run the caller's handlers
        # (they would clean up the caller's work folder), and the caller must know its child's pid
        # before a handler can end it
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _ENDING)
        try:
            self.pid = os.fork()
        except OSError:  # no memory or process slots for a child: run in the caller instead
            self.pid = None
        if self.pid == 0:
            self._child(mask)
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal held back arrives here
        except BaseException:
            self.close()
            raise

    def _child(self, mask) -> None:
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the child at once, quietly
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and so does a SIGTERM (the CLI's is the caller's)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            try:
                outcome = ("value", self.fn())
            except Exception as e:
                outcome = ("error", e)
            with open(self.scratch, "wb") as f:
                pickle.dump(outcome, f, protocol=pickle.HIGHEST_PROTOCOL)
            code = 0
        finally:
            os._exit(code)

    def result(self) -> Any:
        """Wait for the child and return ``fn``'s value (raise its exception); without a child, or
        if the child died without a result, run ``fn`` here."""
        if self.pid is None:
            return self.fallback()
        pid, self.pid = self.pid, None
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not self.scratch.is_file():
            return self.fallback()
        try:
            with open(self.scratch, "rb") as f:
                kind, value = pickle.load(f)
        except Exception:  # an exception type that does not unpickle: learn it here
            return self.fallback()
        finally:
            self.scratch.unlink(missing_ok=True)
        if kind == "error":
            raise value
        return value

    def close(self) -> None:
        if self.pid is not None:
            pid, self.pid = self.pid, None
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
        self.scratch.unlink(missing_ok=True)

    def __enter__(self) -> Beside:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
