"""`recllmsim build` and `recllmsim validate` end to end, through the installed console script."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from http_fixtures import FileServer
from release_fixture import make_release

# the console script installed beside the interpreter running the tests
RECLLMSIM = str(Path(sys.executable).parent / "recllmsim")


def run(*args, cwd=None, env=None):
    return subprocess.run(
        [RECLLMSIM, *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}
    )


def break_release(root: Path) -> None:
    """Four kinds of bad input, one per file."""
    base = root / "LLM_agent_user"
    truncated = base / "recipe planning/0.json"
    truncated.write_text(truncated.read_text()[:150])
    for rel, edit in (
        ("preparing gifts/1.json", lambda d: d["history"][0].update(intent="Shopping")),
        ("travel planning/2.json", lambda d: d["rating"].update({"Diversity": 5})),
        ("skills learning planning/0.json", lambda d: d.pop("history")),
    ):
        path = base / rel
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))


def test_build_then_load(tmp_path):
    src = make_release(tmp_path / "rel")
    result = run("build", "--source", str(src), "--out", "ds", "--json", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["configs"]["conversations"] == {"train": 15}
    assert (tmp_path / "ds" / "README.md").is_file()


def test_bad_input_build_fails_in_one_line_and_keeps_previous_output(tmp_path):
    src = make_release(tmp_path / "rel")
    assert run("build", "--source", str(src), "--out", "ds", "-q", cwd=tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()}
    break_release(src)
    result = run("build", "--source", str(src), "--out", "ds", "-q", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("recllmsim: error: preparing gifts/1.json: history[0].intent: must be one of")
    assert "'Shopping'" in lines[0] and "(and 3 more problems; run `recllmsim validate`" in lines[0]
    assert {p: p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()} == before


def test_validate_lists_every_problem_at_once(tmp_path):
    src = make_release(tmp_path / "rel")
    break_release(src)
    result = run("validate", str(src), "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    found = sorted((p["file"], p["field"]) for p in report["problems"])
    assert found == [
        ("preparing gifts/1.json", "history[0].intent"),
        ("recipe planning/0.json", ""),
        ("skills learning planning/0.json", "history"),
        ("travel planning/2.json", "rating.Diversity"),
    ]
    assert report["counts"] == {"files": 15, "conversations": 11}
    text = run("validate", str(src))
    assert text.returncode == 2
    assert len(text.stdout.strip().splitlines()) == 4
    assert "4 problem(s) in 15 file(s)" in text.stderr


def test_validate_clean_source(tmp_path):
    result = run("validate", str(make_release(tmp_path / "rel")))
    assert result.returncode == 0
    assert "0 problem(s) in 15 file(s), 15 conversation(s) read" in result.stdout


def test_build_from_an_archive_url(tmp_path):
    src = make_release(tmp_path / "rel")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(src.rglob("*.json")):
            zf.write(path, "RecLLMSim-main/" + path.relative_to(src).as_posix())
    cache = tmp_path / "cache"
    with FileServer({"/main.zip": buf.getvalue()}, faults=["503"]) as srv:
        for _ in range(2):
            result = run(
                "build",
                "--source",
                srv.url("/main.zip"),
                "--out",
                "ds",
                "-q",
                "--json",
                cwd=tmp_path,
                env={"RECLLMSIM_CACHE": str(cache)},
            )
            assert result.returncode == 0, result.stderr
        assert srv.count == 2  # one 503, one download; the second build used the cache
    assert json.loads(result.stdout)["configs"]["profiles"] == {"train": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "--split-by", "speaker"], "Invalid value for '--split-by'"),
        (["build", "--seed", "x"], "Invalid value for '--seed'"),
        (["build", "--colour"], "No such option: --colour"),
        (["validate", "/nonexistent/place"], "/nonexistent/place"),
    ],
)
def test_bad_flags_are_one_line(args, message, tmp_path):
    result = run(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_build_card_flags(tmp_path):
    src = make_release(tmp_path / "rel")
    (tmp_path / "cite.bib").write_text("@misc{mine2026, title = {Mine}}\n")
    result = run(
        "build", "--source", str(src), "--out", "ds", "-q", "--name", "my-rec", "--pretty-name", "My Rec",
        "--license", "cc-by-4.0", "--citation", "cite.bib", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert "license: cc-by-4.0\n" in card and "pretty_name: My Rec\n" in card and "\n# My Rec\n" in card
    assert "@misc{mine2026, title = {Mine}}" in card and "please also cite it" in card
    assert 'ds = load_dataset("your-name/my-rec", "intent")' in card


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--license", "Apache 2.0"], "--license: must be a Hub license id in lower case"),
        (["--name", "a/b"], "--name: must be letters, digits"),
        (["--citation", "missing.bib"], "--citation missing.bib: no such file; pass a BibTeX file"),
        (["--citation", "a-folder"], "--citation a-folder: is a folder; pass a BibTeX file"),
        (
            ["--citation", "fence.bib"],
            "--citation fence.bib: holds ``` (a Markdown fence); pass a BibTeX file",
        ),
        (["--citation", "latin1.bib"], "--citation latin1.bib: not UTF-8 text (byte 0xe9 at offset 20)"),
        (
            ["--pretty-name", "Two\nlines"],
            "--pretty-name: must be one line of printable text (the card's title), but got 'Two\\nlines'",
        ),
    ],
)
def test_bad_card_flags_are_one_line_and_build_nothing(tmp_path, flags, message):
    src = make_release(tmp_path / "rel")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "fence.bib").write_text("@misc{x}\n```\n# Not a citation\n")
    (tmp_path / "latin1.bib").write_bytes("@misc{x, author={Ren\u00e9}}\n".encode("latin-1"))
    result = run("build", "--source", str(src), "--out", "ds", "-q", *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"recllmsim: error: {message}") and result.stderr.count("\n") == 1
    assert not (tmp_path / "ds").exists() and result.stdout == ""


def test_a_folder_of_only_the_human_studies_is_not_read_as_task_folders(tmp_path):
    import shutil

    from human_fixture import make_full_release

    root = make_full_release(tmp_path / "rel")
    shutil.rmtree(root / "LLM_agent_user")  # left: real_human_user/, human_exp_V2/, user_profiling/
    for args in (["validate", str(root)], ["build", "--source", str(root), "--out", "ds", "-q"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr == (
            f"recllmsim: error: {root}: not a RecLLMSim release (no LLM_agent_user/<task>/<n>.json nor "
            "<task>/<n>.json — it holds real_human_user/, human_exp_V2/, user_profiling/ but no "
            "LLM_agent_user/); pass the repository folder, its LLM_agent_user/ folder or its archive\n"
        )
    assert not (tmp_path / "ds").exists()


def test_a_corpus_line_that_is_not_utf8_is_one_problem_and_build_keeps_the_previous_output(tmp_path):
    from tiny_corpus import write_tiny_corpus

    corpus = write_tiny_corpus(tmp_path / "corpus")
    assert run("build", "--source", str(corpus), "--out", "ds", "-q", cwd=tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()}
    with open(corpus / "conversations.jsonl", "ab") as f:
        f.write('{"conversation_id": "caf\u00e9"}\n'.encode("latin-1"))
    expected = (
        f"{corpus}/conversations.jsonl:6: not UTF-8 (byte 0xe9 at offset 24), "
        'but got \'{"conversation_id": "caf\ufffd"}\''
    )
    result = run("validate", str(corpus), cwd=tmp_path)
    assert result.returncode == 2 and result.stdout.splitlines()[0] == expected, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    result = run("build", "--source", str(corpus), "--out", "ds", "-q", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr == f"recllmsim: error: {expected}\n"
    assert {p: p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()} == before


def test_a_build_folder_given_as_source_is_named_as_such(tmp_path):
    """A build folder is neither a release nor a corpus; its hidden marker (a .json file) does not
    make it look like a task folder."""
    from tiny_corpus import write_tiny_corpus

    corpus = write_tiny_corpus(tmp_path / "corpus")
    assert run("build", "--source", str(corpus), "--out", "ds", "-q", cwd=tmp_path).returncode == 0
    expected = (
        f"recllmsim: error: {tmp_path / 'ds'}: a folder written by `recllmsim build` (parquet shards and a "
        "card), not a release or corpus; pass the release or corpus it was built from\n"
    )
    for args in (
        ["validate", str(tmp_path / "ds")],
        ["build", "--source", str(tmp_path / "ds"), "--out", "b2"],
    ):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr == expected, result.stderr
    assert not (tmp_path / "b2").exists()


def test_sigterm_during_a_build_cleans_up_as_ctrl_c_does(tmp_path, release_dir):
    import signal
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [RECLLMSIM, "build", "--source", str(release_dir), "--out", str(out), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(3000):  # until the human studies are being staged (in the child, if forked)
            if list(tmp_path.glob(".out.building-*/_staged/conversations.jsonl")) or proc.poll() is not None:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip() == "recllmsim: interrupted; run the same command again to resume"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no hidden work folder left, no out
    left = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True).stdout.splitlines()
    assert [p for p in left if str(out) in p and not p.startswith("Z")] == []  # the child is gone too
