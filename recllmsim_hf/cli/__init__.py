"""The `recllmsim` command line.

Commands are thin: each parses flags and calls one library function. Errors of
the project's family (``RecLLMSimError``) and bad flags become one line on
stderr and a non-zero exit here, in one place. Heavy libraries (datasets,
openai, sklearn) are imported inside the commands, never at start-up.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from recllmsim_hf.cli.help import OrderedGroup, readable_metavars, version
from recllmsim_hf.errors import RecLLMSimError

app = typer.Typer(
    name="recllmsim",
    cls=OrderedGroup,
    help="Generate, build, analyse and publish RecLLMSim-style recommendation conversations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version())
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    """Generate, build, analyse and publish RecLLMSim-style recommendation conversations."""


class SplitBy(StrEnum):
    utterance = "utterance"
    conversation = "conversation"


@app.command()
def build(
    source: list[str] = typer.Option(
        None,
        "--source",
        help="Release folder, .zip/.tar.gz, URL, or corpus folder [default: the pinned release]; "
        "repeat it to merge several generated corpora (e.g. the shards of one run)",
    ),
    # str, not Path: typer would turn an empty --out into "." (the current folder)
    out: str = typer.Option(
        "recllmsim", "--out", help="Output folder: new, empty, or an earlier build (replaced atomically)."
    ),
    seed: int = typer.Option(42, "--seed", help="Seed of the train/validation/test split."),
    split_by: SplitBy = typer.Option(
        SplitBy.utterance, "--split-by", help="Split unit of the intent config."
    ),
    name: str = typer.Option(
        None, "--name", help="Short name of the dataset [default: recllmsim, or the corpus name]."
    ),
    pretty_name: str = typer.Option(
        None, "--pretty-name", metavar="TITLE", help="Title of the card [default: the source's]."
    ),
    license_id: str = typer.Option(
        None, "--license", metavar="ID", help="Hub license id [default: apache-2.0 (release), unknown]."
    ),
    citation: Path = typer.Option(
        None, "--citation", metavar="FILE", help="BibTeX file citing the dataset (RecLLMSim is credited too)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a machine-readable summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Build every config of the source (nine for the release) as parquet shards plus a card into OUT."""
    from recllmsim_hf.dataset.build import build_dataset
    from recllmsim_hf.dataset.card_settings import CardSettings

    card = CardSettings.from_options(name, pretty_name, license_id, citation)
    sources = list(source or [])
    chosen = sources if len(sources) > 1 else (sources[0] if sources else None)
    summary = build_dataset(chosen, out, seed=seed, split_by=split_by.value, progress=not quiet, card=card)
    _print_summary(summary, json_out)


@app.command()
def validate(
    source: str = typer.Argument(..., help="Release folder, .zip/.tar.gz, URL, or corpus folder."),
    json_out: bool = typer.Option(False, "--json", help="Print the problems as JSON."),
) -> None:
    """List every problem of a release or corpus (file, field, bad value) without building."""
    from recllmsim_hf.sources.staging import validate_source

    problems, counts = validate_source(source)
    if json_out:
        import json

        payload = {
            "ok": not problems,
            "counts": counts,
            "problems": [
                {"file": p.file, "field": p.field, "value": p.value, "message": p.message} for p in problems
            ],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        for p in problems:
            typer.echo(str(p))
        human = (
            f", {counts['human_conversations']} of real people" if counts.get("human_conversations") else ""
        )
        typer.echo(
            f"{len(problems)} problem(s) in {counts.get('files', 0)} file(s), "
            f"{counts.get('conversations', 0)} conversation(s) read{human}",
            err=bool(problems),
        )
    if problems:
        raise typer.Exit(2)


def _print_summary(summary: dict, json_out: bool) -> None:
    if json_out:
        import json

        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    typer.echo(f"built {summary['out']}")
    width = max([20, *map(len, summary["configs"])])
    for config, splits in summary["configs"].items():
        sizes = ", ".join(f"{split} {n:,}" for split, n in splits.items()) or "no rows (not shipped)"
        typer.echo(f"  {config:<{width}} {sizes}")


def _register_subcommands() -> None:
    """Commands living in other modules (each imports its heavy parts lazily, inside the command)."""
    from recllmsim_hf.cli.analysis import baseline_app, stats
    from recllmsim_hf.cli.hub import push_to_hub_command
    from recllmsim_hf.generation.cli import generate_app, scenarios_app
    from recllmsim_hf.generation.cli_annotate import annotate

    app.add_typer(generate_app, name="generate")
    app.add_typer(scenarios_app, name="scenarios")
    app.command("annotate")(annotate)
    app.command("stats")(stats)
    app.add_typer(baseline_app, name="baseline")
    app.command("push-to-hub")(push_to_hub_command)


def command():
    """The click command of the app, every subcommand registered and every metavar readable."""
    _register_subcommands()
    cli = typer.main.get_command(app)
    readable_metavars(cli)
    return cli


def main() -> None:
    """Console-script entry: run the app; project errors, OS errors and bad flags become one line.

    This is the one error boundary: an OSError or sqlite3 error from anywhere below becomes a
    :class:`~recllmsim_hf.errors.StorageError` naming the path and the cause, and every line
    printed here is redacted (URL credentials, key-like values). A SIGTERM (``kill``, a job
    scheduler's stop) is an interrupt too: what a Ctrl-C cleans up (a build's hidden work folder,
    its child) is cleaned up, and the exit code is 143.
    """
    import signal
    import sqlite3
    import warnings

    signal.signal(signal.SIGTERM, _terminated)
    # A request cut short when a run stops (another batch part failed) can leave the HTTP client's
    # connect attempt un-awaited; Python would name it on the way out, after the error line.
    warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited", category=RuntimeWarning)

    from recllmsim_hf.errors import from_os_error

    try:
        cli = command()  # inside: a Ctrl-C during the imports is an interrupt like any other
        # without standalone mode, a command's typer.Exit(code) comes back as the return value
        code = cli(standalone_mode=False)
    except RecLLMSimError as e:
        _fail(str(e), e.exit_code)
    except (OSError, sqlite3.Error) as e:
        error = from_os_error(e)
        _fail(str(error), error.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        code = 130
    except typer.TyperException as e:  # bad flags and arguments (click's UsageError family)
        _fail(f"{e.format_message()}{_bad_value(e)} (see --help)", e.exit_code)
    except KeyboardInterrupt:
        code = 130
    except RuntimeError as e:
        # Ctrl-C while asyncio tears down can surface as "Event loop stopped before Future
        # completed"; it is the interrupt, not a bug, when a KeyboardInterrupt caused it.
        if not _caused_by_interrupt(e):
            raise
        code = 130
    if code == 130 and Terminated.seen:  # typer turns every KeyboardInterrupt into 130
        code = 143
    if code in (130, 143):  # Ctrl-C: typer turns it into a silent exit code; say what happened
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the exit short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        typer.echo("recllmsim: interrupted; run the same command again to resume", err=True)
    sys.exit(code if isinstance(code, int) else 0)


class Terminated(KeyboardInterrupt):
    """A SIGTERM, raised where the program was: everything that handles a Ctrl-C handles it."""

    seen = False


def _terminated(signum, frame) -> None:
    Terminated.seen = True
    raise Terminated


def _fail(message: str, exit_code: int) -> None:
    from recllmsim_hf.errors import redact

    typer.echo(f"recllmsim: error: {redact(message)}", err=True)
    sys.exit(exit_code)


def _caused_by_interrupt(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__context__
    return False


def _bad_value(error: typer.TyperException) -> str:
    """``, but got 'abc'`` for a flag whose value did not parse (click's message leaves it out)."""
    opts = getattr(getattr(error, "param", None), "opts", None)  # typer vendors its own click
    if not opts:
        return ""
    args, value = sys.argv[1:], None
    for i, arg in enumerate(args):
        for opt in opts:
            if arg == opt and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(opt + "="):
                value = arg[len(opt) + 1 :]
    if value is None or repr(value) in error.format_message():
        return ""
    return f", but got {value!r}"


if __name__ == "__main__":
    main()
