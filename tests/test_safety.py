"""The output-folder rule (recllmsim_hf.safety), the OS-error boundary helpers and redaction, in process.

The same cases through the real command line, as other users and on a full disk, are in
tests/test_hostile_sweep.py (benchmarks/hostile_sweep.py)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from release_fixture import make_release
from tiny_corpus import write_tiny_corpus

from recllmsim_hf.errors import InputError, StorageError, from_os_error, naming, redact
from recllmsim_hf.safety import (
    MARKER,
    claim_cache_file,
    claim_corpus,
    claim_output,
    read_marker,
    write_marker,
)

RECLLMSIM = str(Path(sys.executable).with_name("recllmsim"))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return make_release(tmp_path_factory.mktemp("rel"), per_task=2)


def build(*args, umask: int = 0o022, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RECLLMSIM, "build", "-q", *map(str, args)], capture_output=True, text=True, cwd=cwd,
        preexec_fn=lambda: os.umask(umask), timeout=300,
    )  # fmt: skip


# -- claim_output ---------------------------------------------------------------------------------


def test_missing_and_empty_folders_may_be_written(tmp_path):
    assert claim_output(tmp_path / "new" / "deeper", "build") == (tmp_path / "new" / "deeper").resolve()
    (tmp_path / "empty").mkdir()
    assert claim_output(tmp_path / "empty", "build") == (tmp_path / "empty").resolve()


def test_a_folder_with_user_files_is_refused_naming_them(tmp_path):
    (tmp_path / "proj" / "code").mkdir(parents=True)
    (tmp_path / "proj" / "thesis.tex").write_text("mine")
    expected = r"^--out .*proj: holds 2 entries that `recllmsim build` did not write \(code/, thesis.tex\); "
    with pytest.raises(InputError, match=expected + "nothing was changed"):
        claim_output(tmp_path / "proj", "build")


def test_a_marked_build_may_be_replaced_but_not_with_a_user_file_in_it(tmp_path):
    out = tmp_path / "b"
    (out / "conversations").mkdir(parents=True)
    (out / "conversations" / "train-00000-of-00001.parquet").write_bytes(b"x")
    write_marker(out, "build", ["conversations/train-00000-of-00001.parquet"], source="/src")
    assert claim_output(out, "build") == out.resolve()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"holds 1 file\(s\) the earlier build did not write \(notes.txt\)"):
        claim_output(out, "build")


def test_a_marker_of_another_command_is_not_a_licence(tmp_path):
    (tmp_path / "figs").mkdir()
    write_marker(tmp_path / "figs", "figures", ["score_distribution.png"])
    with pytest.raises(InputError, match=r"was written by `recllmsim stats --plots`, not `recllmsim build`"):
        claim_output(tmp_path / "figs", "build")
    assert claim_output(tmp_path / "figs", "figures") == (tmp_path / "figs").resolve()


def test_a_hand_written_marker_of_an_unknown_kind_is_not_ours(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / MARKER).write_text(json.dumps({"kind": "anything"}))
    assert read_marker(tmp_path / "x") is None
    with pytest.raises(InputError, match="did not write"):
        claim_output(tmp_path / "x", "build")


@pytest.mark.parametrize("relation", ["equal", "inside", "containing", "through a symlink"])
def test_output_and_source_may_not_overlap(tmp_path, relation):
    src = tmp_path / "rel" / "LLM_agent_user"
    src.mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "rel")
    out, source = {
        "equal": (tmp_path / "rel", tmp_path / "rel"),
        "inside": (src / "x", tmp_path / "rel"),
        "containing": (tmp_path / "rel", src),
        "through a symlink": (tmp_path / "rel" / "new", tmp_path / "alias"),
    }[relation]
    with pytest.raises(InputError, match="the source"):
        claim_output(out, "build", sources=[source])


def test_empty_path_symlink_and_file_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"^--out: must name a folder, but got ''$"):
        claim_output("", "build")
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(InputError, match="is a symbolic link"):
        claim_output(tmp_path / "link", "build")
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(InputError, match="exists and is not a folder"):
        claim_output(tmp_path / "afile", "build")
    with pytest.raises(InputError, match="afile is a file, not a folder"):
        claim_output(tmp_path / "afile" / "sub", "figures", flag="--plots")


# -- claim_corpus, claim_cache_file -----------------------------------------------------------------


def test_generate_appends_only_into_a_corpus_or_an_empty_folder(tmp_path):
    assert claim_corpus(tmp_path / "new") == (tmp_path / "new", False)
    corpus = write_tiny_corpus(tmp_path / "corpus")
    assert claim_corpus(corpus) == (corpus, True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "todo.txt").write_text("x")
    with pytest.raises(InputError, match=r"holds 1 entry and is not a corpus folder \(todo.txt\)"):
        claim_corpus(tmp_path / "mine")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="is not a corpus folder"):
        claim_corpus(tmp_path / "other")


def test_cache_file_must_be_new_empty_or_sqlite(tmp_path):
    assert claim_cache_file(tmp_path / "new.sqlite") == tmp_path / "new.sqlite"
    (tmp_path / "empty").write_bytes(b"")
    claim_cache_file(tmp_path / "empty")
    sqlite3.connect(tmp_path / "db.sqlite").execute("CREATE TABLE t (x)").connection.close()
    claim_cache_file(tmp_path / "db.sqlite")
    (tmp_path / "notes").write_text("my notes")
    with pytest.raises(InputError, match="exists and is not an SQLite response cache; nothing was changed"):
        claim_cache_file(tmp_path / "notes")


# -- OS errors and secrets -------------------------------------------------------------------------


def test_os_errors_become_one_line_with_path_cause_and_next_step():
    e = from_os_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/a.parquet"))
    assert isinstance(e, StorageError) and e.exit_code == 2
    assert str(e) == "out/a.parquet: No space left on device (ENOSPC); free some space or write elsewhere"
    e = from_os_error(PermissionError(errno.EACCES, "Permission denied", "rel/x.json"))
    assert str(e) == "rel/x.json: Permission denied (EACCES); check the permissions"
    moved = from_os_error(OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b"))
    assert str(moved).startswith("a -> b: Invalid cross-device link (EXDEV)")


def test_naming_adds_the_path_an_error_lacks(tmp_path):
    with pytest.raises(OSError) as info, naming(tmp_path / "conversations.jsonl"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(from_os_error(info.value)).startswith(f"{tmp_path}/conversations.jsonl: No space left")
    with pytest.raises(sqlite3.OperationalError) as info, naming(tmp_path / "llm.sqlite"):
        raise sqlite3.OperationalError("database or disk is full")
    assert str(from_os_error(info.value)) == (
        f"{tmp_path}/llm.sqlite: SQLite: database or disk is full; free some space or write elsewhere"
    )


@pytest.mark.parametrize(
    "text, shown",
    [
        ("http://user:SECRET@127.0.0.1:1/v1", "http://***@127.0.0.1:1/v1"),
        ("https://tok@host/x", "https://***@host/x"),
        ("http://h/v1?api_key=SECRET&x=1", "http://h/v1?api_key=***&x=1"),
        ("key sk-proj-SECRET123 refused", "key *** refused"),
        ("token hf_SECRETsecret1", "token ***"),
        ("Authorization: Bearer SECRETtoken", "Authorization: ***"),
        ("plain words stay, user@example.org too", "plain words stay, user@example.org too"),
    ],
)
def test_redact(text, shown):
    assert redact(text) == shown


# -- through the command line: modes, marker, advice ------------------------------------------------


@pytest.mark.parametrize("umask, dirs, files", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_built_folders_and_files_get_the_usual_modes(tmp_path, release, umask, dirs, files):
    result = build("--source", release, "--out", tmp_path / "b", umask=umask)
    assert result.returncode == 0, result.stderr
    modes = {
        p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777 for p in (tmp_path / "b").rglob("*")
    }
    modes["b"] = (tmp_path / "b").stat().st_mode & 0o777
    assert {m for p, m in modes.items() if (tmp_path / p).is_dir()} == {dirs}
    assert {m for p, m in modes.items() if (tmp_path / p).is_file()} == {files}


def test_a_build_is_marked_and_may_be_rebuilt_in_place(tmp_path, release):
    out = tmp_path / "b"
    assert build("--source", release, "--out", out).returncode == 0
    marker = read_marker(out)
    assert marker["kind"] == "build" and marker["written_by"] == "recllmsim build"
    assert marker["source"] == str(release.resolve())
    on_disk = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MARKER
    )
    assert marker["files"] == on_disk and "README.md" in on_disk
    # no empty config folders: every folder holds a shard
    assert all(any(d.iterdir()) for d in out.iterdir() if d.is_dir())
    again = build("--source", release, "--out", out, "--seed", "7")
    assert again.returncode == 0, again.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_push_to_hub_advice_is_safe_as_printed(tmp_path, release):
    corpus = write_tiny_corpus(tmp_path / "my corpus")
    before = {p: p.read_bytes() for p in corpus.rglob("*") if p.is_file()}
    result = subprocess.run([RECLLMSIM, "push-to-hub", str(corpus), "me/x", "--dry-run"], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().endswith("pass a folder written by `recllmsim build`")
    assert "--out" not in result.stderr
    # a marked build with a broken card: the advice names its source, quoted for the shell
    out = tmp_path / "built here"
    assert build("--source", release, "--out", out).returncode == 0
    (out / "README.md").write_text("no card\n")
    result = subprocess.run([RECLLMSIM, "push-to-hub", str(out), "me/x", "--dry-run"], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    advice = result.stderr.strip().rsplit("rebuild it with ", 1)[1]
    assert advice == f"`recllmsim build --source {release.resolve()} --out '{out}'`"
    assert {p: p.read_bytes() for p in corpus.rglob("*") if p.is_file()} == before


# -- hostile sizes, in process -----------------------------------------------------------------------


def test_the_conversation_plan_is_lazy():
    from recllmsim_hf.generation.simulate.conversations import Plan, plan
    from recllmsim_hf.generation.simulate.scenarios import load_scenarios

    from recllmsim_hf.schema import Profile

    scenarios = load_scenarios()
    profiles = [Profile(profile_id=str(i), text=f"profile {i}") for i in range(100)]
    tracemalloc.start()
    big = Plan(scenarios, profiles, 10**12, seed=3)
    first = [big.item(i) for i in range(50)]
    last = big.item(10**12 - 1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2_000_000  # a list of 10**12 items would not fit in any memory
    assert [it.conversation_id for it in first] == [
        it.conversation_id for it in plan(scenarios, profiles, 50, 3)
    ]
    assert big.index_of(last.conversation_id) == 10**12 - 1
    assert big.index_of(first[7].conversation_id) == 7
    assert Plan(scenarios, profiles, 7, seed=3).index_of(first[7].conversation_id) is None  # beyond -n
    assert big.index_of("c000007-0000000000") is None


def test_alias_bomb_is_refused_before_expansion():
    from recllmsim_hf.generation.simulate.scenarios import parse_catalog

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    with pytest.raises(InputError, match=r"^bomb.yaml: YAML aliases expand to more than 100,000 values"):
        parse_catalog("\n".join(lines + ["tasks: [*a9]"]) + "\n", "bomb.yaml")
    task = "- task: {}\n  template: 'Go {{where}}.'\n  variables: {}\n"
    few = "tasks:\n" + task.format("t", "&b {where: [home, out]}") + task.format("u", "*b")
    assert [s.task for s in parse_catalog(few, "ok.yaml")] == ["t", "u"]  # a plain alias is fine


def test_a_build_of_an_unannotated_corpus_holds_no_empty_config_folders(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    lines = [json.loads(x) for x in (corpus / "conversations.jsonl").read_text().splitlines()]
    for c in lines:
        c["ratings"] = None
        for t in c["turns"]:
            t["intent"] = t["hallucination"] = t["reason"] = None
    (corpus / "conversations.jsonl").write_text("".join(json.dumps(c) + "\n" for c in lines))
    assert build("--source", corpus, "--out", tmp_path / "b").returncode == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir() if p.is_dir()) == ["conversations", "profiles"]
    stats = subprocess.run(
        [RECLLMSIM, "stats", str(tmp_path / "b"), "--json"], capture_output=True, text=True
    )
    assert stats.returncode == 0, stats.stderr
    result = json.loads(stats.stdout)
    assert result["table2"]["rows"] == [] and result["hallucinations"] == {"count": 0, "annotated_replies": 0}
    assert result["table1"]["filtered"]["conversations"] == 4
