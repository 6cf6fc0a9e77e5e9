"""Small paths through the real command line that cost money or hide mistakes (issue: never lose data).

Ctrl-C in `annotate` at any moment; a budget too small for one request with a huge -n; a failed
first `generate` leaving nothing behind while paid calls are kept."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from procs import sigint_default
from tiny_corpus import write_tiny_corpus

RECLLMSIM = str(Path(sys.executable).with_name("recllmsim"))
INTERRUPTED = "recllmsim: interrupted; run the same command again to resume"


def env() -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RECLLMSIM_"))}
    return {**clean, "OPENAI_API_KEY": "sk-test-interrupt"}


def digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.glob("*.jsonl"))
    }


# seconds after the first LLM request arrived (a signal before the interpreter runs any of our code,
# in its first ~0.1 s, is out of any program's hands), and how many Ctrl-C in a row
@pytest.mark.parametrize(
    "delay, signals", [(0.0, 1), (0.5, 1), (1.1, 1), (1.8, 1), (0.3, 2), (1.2, 2), (0.7, 3), (2.4, 1)]
)
def test_ctrl_c_during_annotate_always_exits_130_with_one_line(tmp_path, delay, signals):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    before = digest(corpus)
    with FakeOpenAI(latency=0.15) as server:
        proc = subprocess.Popen(
            [RECLLMSIM, "annotate", "--corpus", str(corpus), "--overwrite", "--concurrency", "2", "-q",
             "--base-url", server.base_url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), preexec_fn=sigint_default,
        )  # fmt: skip
        started = time.monotonic()
        while server.count == 0 and proc.poll() is None and time.monotonic() - started < 60:
            time.sleep(0.01)
        time.sleep(delay)
        for _ in range(signals):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
        out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    if proc.returncode == 0:  # it finished before the signal: then the run is complete
        assert complete(corpus)
        return
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == INTERRUPTED, err
    # the corpus files are replaced only when every call is done: as before, or wholly annotated
    assert digest(corpus) == before or complete(corpus)


def complete(corpus: Path) -> bool:
    from recllmsim_hf.corpus import Corpus

    convs = list(Corpus(corpus).iter_conversations())
    return len(convs) == 5 and all(t.intent for c in convs for t in c.turns if t.role == "user")


def test_huge_n_with_a_tiny_budget_sends_nothing_and_ends_at_once(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    with FakeOpenAI() as server:
        result = subprocess.run(
            [RECLLMSIM, "generate", "conversations", "-n", "1000000000", "--out", str(corpus), "--budget-usd",
             "0.0001", "--tasks", "recipe planning", "-q", "--base-url", server.base_url],
            capture_output=True, text=True, env=env(), timeout=60,
        )  # fmt: skip
        completions = server.count
    assert result.returncode == 4, result.stderr
    # the one error line (a key warning may stand before it: the fake server is not an OpenAI host)
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith("recllmsim: error: --budget-usd 0.0001: spent 0 USD")
    assert completions == 0  # the budget is checked before the first request
    assert (corpus / "conversations.jsonl").read_text().count("\n") == 5


def test_a_failed_first_generate_leaves_nothing_but_keeps_paid_calls(tmp_path):
    from recllmsim_hf.generation.simulate.runfolder import corpus_run

    with pytest.raises(RuntimeError), corpus_run(tmp_path / "new") as corpus:
        (corpus / ".cache").mkdir(exist_ok=True)
        sqlite3.connect(corpus / ".cache" / "llm.sqlite").execute(
            "CREATE TABLE responses (k)"
        ).connection.close()
        (corpus / "manifest.json").write_text("{}")
        raise RuntimeError("the endpoint went away")
    assert not (tmp_path / "new").exists()

    with pytest.raises(RuntimeError), corpus_run(tmp_path / "paid") as corpus:
        (corpus / ".cache").mkdir(exist_ok=True)
        db = sqlite3.connect(corpus / ".cache" / "llm.sqlite")
        db.execute("CREATE TABLE responses (k)")
        db.execute("INSERT INTO responses VALUES ('a paid answer')")
        db.commit()
        db.close()
        raise RuntimeError("stopped after one paid call")
    assert (tmp_path / "paid" / ".cache" / "llm.sqlite").is_file()  # a rerun replays it for free

    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError), corpus_run(tmp_path / "empty"):
        raise RuntimeError("no profiles")
    assert list((tmp_path / "empty").iterdir()) == []  # the folder was the user's: kept, emptied of ours


def test_a_failed_generate_with_copied_profiles_leaves_nothing(tmp_path):
    """`generate conversations --profiles FILE` copies the profiles into a new corpus: a run that then
    reaches no endpoint paid for nothing, and the folder goes with the copy (a rerun copies again)."""
    source = write_tiny_corpus(tmp_path / "src")
    out = tmp_path / "new"
    args = [
        "generate",
        "conversations",
        "-n",
        "3",
        "--out",
        str(out),
        "--profiles",
        str(source / "profiles.jsonl"),
    ]
    done = subprocess.run(
        [RECLLMSIM, *args, "--base-url", "http://127.0.0.1:9/v1", "-q"],
        capture_output=True,
        text=True,
        env=env(),
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("recllmsim: error:")]
    assert done.returncode == 3 and len(errors) == 1, done.stderr
    assert "127.0.0.1:9" in errors[0] and "cannot connect" in errors[0] and "Traceback" not in done.stderr
    assert not out.exists()
    from recllmsim_hf.generation.simulate.runfolder import corpus_run

    with pytest.raises(RuntimeError), corpus_run(tmp_path / "profiles") as corpus:
        (corpus / "profiles.jsonl").write_text('{"profile_id": "1"}\n')  # what `generate profiles` made
        raise RuntimeError("stopped after the profiles")
    assert (tmp_path / "profiles" / "profiles.jsonl").is_file()


def test_only_an_error_caused_by_ctrl_c_counts_as_an_interrupt():
    from recllmsim_hf.cli import _caused_by_interrupt

    try:
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("Event loop stopped before Future completed.")
    except RuntimeError as e:
        assert _caused_by_interrupt(e)
    assert not _caused_by_interrupt(RuntimeError("a bug"))


def test_ctrl_c_while_the_commands_are_imported_is_an_interrupt(monkeypatch, capsys):
    import recllmsim_hf.cli as cli

    def interrupted():
        raise KeyboardInterrupt  # as if Ctrl-C came while a command's module was being imported

    monkeypatch.setattr(cli, "_register_subcommands", interrupted)
    monkeypatch.setattr("sys.argv", ["recllmsim", "build", "--help"])
    monkeypatch.setattr("signal.signal", lambda *a: None)  # main ignores a second Ctrl-C: not in pytest
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 130
    assert capsys.readouterr().err == "recllmsim: interrupted; run the same command again to resume\n"


def test_an_unawaited_connect_left_by_a_stopped_run_prints_nothing_after_the_error():
    """A connect attempt cut short when another batch part failed is garbage at exit: Python would
    print a RuntimeWarning (two lines) after the command's one error line."""
    code = (
        "import sys; sys.argv = ['recllmsim', '--version']\n"
        "from recllmsim_hf.cli import main\n"
        "async def connect(): pass\n"
        "left = connect()\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "del left\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env())
    assert done.stdout.startswith("recllmsim ") and done.stderr == ""
