"""The ``recllmsim push-to-hub`` command (registered in ``recllmsim_hf.cli``); the work is in ``hub.py``."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def push_to_hub_command(
    folder: Path = typer.Argument(..., help="Build folder made by `recllmsim build`."),
    repo_id: str = typer.Argument(..., help="Dataset repo id, NAMESPACE/NAME (NAME alone: your user)."),
    private: bool = typer.Option(False, "--private", help="Create the repo private (a new repo only)."),
    revision: str = typer.Option(
        None, "--revision", help="Branch to push to (created from main if missing)."
    ),
    create_pr: bool = typer.Option(False, "--create-pr", help="Open a pull request instead of committing."),
    commit_message: str = typer.Option(None, "--commit-message", help="Commit title [default: a summary]."),
    token: str = typer.Option(None, "--token", help="Hub token [default: HF_TOKEN, then `hf auth login`]."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check the build, print the plan and card; no network."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a machine-readable result."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress display, and no messages of huggingface_hub."
    ),
) -> None:
    """Publish a build folder as a Hub dataset repo in one commit that replaces the previous push."""
    from recllmsim_hf.hub import push_to_hub

    result = push_to_hub(
        folder,
        repo_id,
        private=private,
        revision=revision,
        create_pr=create_pr,
        commit_message=commit_message,
        token=token,
        dry_run=dry_run,
        progress=not quiet,
    )
    _print(result, json_out)


def _print(result: dict, json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False))
        return
    if result["dry_run"]:
        total = sum(result["files"].values())
        typer.echo("dry run: nothing was sent to the Hub (no token needed)")
        target = "a pull request against" if result["create_pr"] else "branch"
        typer.echo(f"repo {result['repo_id']} (dataset), {target} {result['revision']}")
        typer.echo(f"commit message: {result['commit_message']}")
        typer.echo(f"one commit adding {len(result['files'])} files ({total:,} bytes):")
        for path, size in result["files"].items():
            typer.echo(f"  add     {path}  ({size:,} bytes)")
        typer.echo("  delete  every other file at that revision, except .gitattributes")
        typer.echo("configs checked locally:")
        width = max([20, *map(len, result["configs"])])
        for config, splits in result["configs"].items():
            typer.echo(f"  {config:<{width}} " + ", ".join(f"{s} {n:,}" for s, n in splits.items()))
        typer.echo("--- README.md ---")
        typer.echo(result["card"], nl=False)
        return
    for note in result["notes"]:
        typer.echo(f"note: {note}", err=True)
    if result["deleted"]:
        typer.echo(
            f"removed {len(result['deleted'])} file(s) of earlier pushes: " + ", ".join(result["deleted"])
        )
    if result["unchanged"]:
        typer.echo("the repo already holds this build: no new commit", err=True)
    if result["pr_url"]:
        typer.echo(f"opened {result['pr_url']}")
    typer.echo(result["commit_url"])
