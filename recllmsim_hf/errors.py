"""The one error family of the project.

Every message says what failed, the bad value or path, and the next step. The CLI
turns any :class:`RecLLMSimError` into one line on stderr and a non-zero exit
(see ``recllmsim_hf.cli``); everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

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
