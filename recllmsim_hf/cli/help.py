"""How `recllmsim --help` reads: commands in the order of the work, descriptions whole, plain metavars.

- :class:`OrderedGroup` lists the commands in :data:`COMMAND_ORDER` (build, validate, stats,
  baseline, generate, annotate, push-to-hub, scenarios; others after, as registered) and never
  cuts a description with "...": it wraps instead.
- :func:`readable_metavars` names every value the way man pages do: ``--out OUT``,
  ``--tasks TASKS``, ``--split-by [utterance|conversation]``, arguments ``SOURCE`` (``[SOURCE]``
  when optional), instead of typer's ``<path>``, ``<list[str]>`` and ``{source}``. A metavar set
  on an option by hand is kept.
- :func:`version` is what ``recllmsim --version`` prints.

Example:
    >>> from importlib.metadata import version as dist_version
    >>> version() == f"recllmsim {dist_version('recllmsim')}"
    True
"""

from __future__ import annotations

from typer.core import TyperArgument, TyperGroup

COMMAND_ORDER: tuple[str, ...] = (
    "build",
    "validate",
    "stats",
    "baseline",
    "generate",
    "annotate",
    "push-to-hub",
    "scenarios",
)
_NO_CUT = 10_000  # characters: a description is wrapped by the help formatter, never cut


def version() -> str:
    """``recllmsim 0.1.0``: the installed distribution's version."""
    from importlib.metadata import version as dist_version

    return f"recllmsim {dist_version('recllmsim')}"


class OrderedGroup(TyperGroup):
    """A command group listing its commands in the order of the work, with whole descriptions."""

    def list_commands(self, ctx) -> list[str]:
        names = list(self.commands)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), names.index(n)))

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(_NO_CUT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class _PlainArgument(TyperArgument):
    """An argument shown as NAME (required) or [NAME], without a type after it."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx):
        return None


def readable_metavars(command) -> None:
    """Give every argument and valued option of ``command`` (and its subcommands) a plain metavar."""
    for param in command.params:
        if param.param_type_name == "argument":
            if param.metavar is None:
                param.metavar = param.name.upper()
            if isinstance(param, TyperArgument):
                param.__class__ = _PlainArgument  # same object, plainer help: no copy of its settings
        elif param.metavar is None and not (getattr(param, "is_flag", False) or getattr(param, "count", 0)):
            kind = getattr(param, "type_descriptor", None)
            choices = kind.choices if kind is not None and kind.is_choice else None
            long = max(param.opts, key=len).lstrip("-").replace("-", "_").upper()
            param.metavar = f"[{'|'.join(map(str, choices))}]" if choices else long
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
