"""The one error family of the project.

Every message says what failed, the bad value or path, and the next step. The CLI
turns any :class:`RecLLMSimError` into one line on stderr and a non-zero exit
(see ``recllmsim_hf.cli``); everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass


class RecLLMSimError(Exception):
    """Base class: a problem the user can fix (bad input, bad flag, unreachable service)."""

    exit_code = 1


class InputError(RecLLMSimError):
    """A file, folder, flag or value given by the user is wrong."""

    exit_code = 2


class ServiceError(RecLLMSimError):
    """An outside service (LLM endpoint, Hub, download) failed or refused."""

    exit_code = 3


@dataclass(frozen=True)
class Problem:
    """One problem found in an input: which file, which field, which value, and why.

    Example:
        >>> str(Problem("recipe planning/12.json", "history[3].intent", "Shopping", "unknown intent"))
        "recipe planning/12.json: history[3].intent: unknown intent, but got 'Shopping'"
    """

    file: str
    field: str
    value: object
    message: str

    def __str__(self) -> str:
        value = repr(self.value)
        if len(value) > 80:
            value = value[:77] + "..."
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}, but got {value}"


class ValidationFailed(InputError):
    """One or more problems in an input; ``problems`` holds all of them."""

    def __init__(self, problems: list[Problem], hint: str = "run `recllmsim validate` to list them all"):
        self.problems = problems
        first = str(problems[0])
        more = f" (and {len(problems) - 1} more problems; {hint})" if len(problems) > 1 else ""
        super().__init__(first + more)


class StorageError(InputError):
    """The operating system refused a read or write: permission, disk full, read-only, missing path."""


# errno -> what the user can do about it
_NEXT_STEP = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EACCES: "check the permissions",
    errno.EPERM: "check the permissions",
    errno.EROFS: "the filesystem is read-only: write elsewhere",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EEXIST: "a file is in the way: check the path",
    errno.EISDIR: "it is a folder: pass a file",
    errno.ELOOP: "a symbolic link points to itself: fix or remove it",
    errno.ENAMETOOLONG: "pass a shorter path",
}


@contextmanager
def naming(path: str | os.PathLike):
    """Name ``path`` on an OSError or sqlite3 error that escapes without one.

    The error is not caught here: the CLI boundary turns it into one line
    (:func:`from_os_error`); this only makes sure that line names the file.

    Example:
        >>> with naming("corpus/conversations.jsonl"):  # doctest: +SKIP
        ...     os.write(fd, line)                       # ENOSPC -> "corpus/conversations.jsonl: ..."
    """
    try:
        yield
    except OSError as e:
        if e.filename is None:
            e.filename = os.fspath(path)
        raise
    except Exception as e:  # sqlite3.Error has no path of its own
        if type(e).__module__ == "sqlite3" and getattr(e, "path", None) is None:
            e.path = os.fspath(path)
        raise


def from_os_error(error: BaseException) -> StorageError:
    """The one-line project error for an OSError or sqlite3 error that reached the CLI boundary.

    Example:
        >>> str(from_os_error(OSError(errno.ENOSPC, "No space left on device", "out/a.parquet")))
        'out/a.parquet: No space left on device (ENOSPC); free some space or write elsewhere'
    """
    if isinstance(error, OSError):
        code = error.errno
        cause = error.strerror or str(error) or type(error).__name__
        if code in errno.errorcode:
            cause += f" ({errno.errorcode[code]})"
        where = error.filename
        if error.filename2 is not None:
            where = f"{error.filename} -> {error.filename2}"
        step = _NEXT_STEP.get(code, "check the path and the disk")
    else:  # sqlite3.Error
        text = str(error) or type(error).__name__
        where, cause = getattr(error, "path", None), f"SQLite: {text}"
        full = "full" in text
        step = "free some space or write elsewhere" if full else "check the file and its permissions"
    if where is None:
        return StorageError(f"{cause}; {step}")
    return StorageError(f"{os.fsdecode(where)}: {cause}; {step}")


_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:]*(?::[^/\s@]*)?@")
_KEY_LIKE = re.compile(
    r"(?x)(?:\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}|\bhf_[A-Za-z0-9]{6,}|\bgh[pousr]_[A-Za-z0-9]{6,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{6,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{6,})"
)
_QUERY_SECRET = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|password|secret|sig)=)[^&\s'\"]+")


def redact(text: str) -> str:
    """``text`` with URL credentials, secret query values and key-like values replaced by ``***``.

    Example:
        >>> redact("http://me:pw@host/v1?api_key=abc and sk-abcdef123456")
        'http://***@host/v1?api_key=*** and ***'
    """
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    text = _QUERY_SECRET.sub(r"\1***", text)
    return _KEY_LIKE.sub("***", text)
