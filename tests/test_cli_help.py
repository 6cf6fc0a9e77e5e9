"""How the CLI presents itself: --version, --help in the order of the work, readable metavars,
each command's own help, one JSON document on stdout with --json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from release_fixture import make_release

from recllmsim_hf.cli import command

RECLLMSIM = str(Path(sys.executable).parent / "recllmsim")
ORDER = ["build", "validate", "stats", "baseline", "generate", "annotate", "push-to-hub", "scenarios"]


def run(*args, cwd=None):
    return subprocess.run([RECLLMSIM, *args], capture_output=True, text=True, cwd=cwd, env=dict(os.environ))


def _all_commands(cmd, path=()):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _all_commands(sub, (*path, name))


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout == f"recllmsim {version('recllmsim')}\n" and out.stderr == ""


def test_help_lists_commands_in_work_order_uncut():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    section = out.stdout.split("Commands:\n", 1)[1]
    names = [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line[2] != " "]
    assert names == ORDER
    assert "..." not in section
    flat = " ".join(section.split())
    assert "Build every config of the source (nine for the release) as parquet shards plus a card" in flat
    assert "Publish a build folder as a Hub dataset repo in one commit that replaces the previous" in flat
    assert "--plots draws Figures 5 and 6 and the comparison." in flat
    # both baseline commands are named, not only intent detection
    assert "intent detection (the paper's Table 4, ours, LLMs) and profile identification" in flat


@pytest.mark.parametrize("path", [(), ("generate",), ("baseline",), ("scenarios",)])
def test_no_description_is_cut(path):
    out = run(*path, "--help")
    assert out.returncode == 0, out.stderr
    assert not re.search(r"\w\.\.\.$", out.stdout, re.M), out.stdout


def test_every_help_has_readable_metavars():
    cli = command()
    seen = 0
    for path, _ in _all_commands(cli):
        out = run(*path, "--help")
        assert out.returncode == 0, (path, out.stderr)
        # --batch-command's help shows its own placeholders; any other brace is a typer metavar
        text = re.sub(r"\{(input|output|model)\}", "", out.stdout)
        for bad in ("<list[", "<str>", "<path>", "<int", "<float", "{"):
            assert bad not in text, (path, bad, out.stdout)
        seen += 1
    assert seen >= 14
    build = run("build", "--help").stdout
    assert "--split-by [utterance|conversation]" in build and "--citation FILE" in build
    assert "Usage: recllmsim push-to-hub [OPTIONS] FOLDER REPO_ID" in run("push-to-hub", "--help").stdout
    assert "--catalog FILE" in run("scenarios", "list", "--help").stdout


def _option_help(path, flag):
    cli = command()
    cmd = cli
    for name in path:
        cmd = cmd.commands[name]
    return next(p.help for p in cmd.params if flag in getattr(p, "opts", ()))


def test_each_command_has_its_own_seed_help():
    profiles = _option_help(("generate", "profiles"), "--seed")
    conversations = _option_help(("generate", "conversations"), "--seed")
    assert "assignment" not in profiles and "profile request" in profiles
    assert "assignment of scenarios and profiles" in conversations
    assert len({profiles, conversations, _option_help(("build",), "--seed")}) == 3


def test_build_json_is_one_document_on_stdout(tmp_path):
    src = make_release(tmp_path / "rel")
    out = run("build", "--source", str(src), "--out", "ds", "--json", cwd=tmp_path)  # progress left on
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("{") and out.stdout.endswith("}\n")
    assert json.loads(out.stdout)["configs"]["conversations"]["train"] > 0
    assert out.stderr == ""  # no bar residue when stderr is no terminal
    for args in (
        ("validate", str(src), "--json"),
        ("stats", "ds", "--json"),
        ("push-to-hub", "ds", "me/x", "--dry-run", "--json"),
    ):
        out = run(*args, cwd=tmp_path)
        assert out.returncode == 0, (args, out.stderr)
        assert out.stdout.startswith(("{", "[")), args
        json.loads(out.stdout)  # exactly one document: anything before or after would not parse
