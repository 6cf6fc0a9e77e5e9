"""The cases of the hostile-input sweep (``benchmarks/hostile_sweep.py`` runs and judges them).

A case is a command line, a setup that makes the hostile input in a fresh folder, what must
happen (a clean one-line error, or success), what the message must say, and which user files
must come out unchanged or which paths must not be left behind. Placeholders in the command
line (``{REL}``, ``{CORPUS}``, ``{BUILD}``, ``{UNBUILD}``, ``{URL}``) name the shared fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RECLLMSIM = str(Path(sys.executable).with_name("recllmsim"))
SECRET = "SECRETpw42"
# What `generate` must keep of a corpus it appends to (it may add scenarios and rewrite the manifest).
KEPT = ("corpus/conversations.jsonl", "corpus/profiles.jsonl")


@dataclass
class Case:
    name: str
    argv: list[str]
    setup: object = None  # callable(case_dir, fixtures) run before
    expect: str = "error"  # or "ok"
    protect: tuple[str, ...] = ()  # paths (relative to the case folder) whose bytes must not change
    absent: tuple[str, ...] = ()  # paths that must not exist afterwards
    contains: tuple[str, ...] = ()  # the error line must hold each (case-insensitive)
    nobody: bool = False
    timeout: float = 60.0


# -- fixtures ---------------------------------------------------------------------------------------


def _json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_lines(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def make_fixtures(base: Path) -> dict:
    from release_fixture import make_release
    from tiny_corpus import write_tiny_corpus

    f = {"BASE": str(base)}
    f["REL"] = str(make_release(base / "rel", per_task=2))
    f["CORPUS"] = str(write_tiny_corpus(base / "corpus"))
    unlabelled = base / "unlabelled"
    shutil.copytree(f["CORPUS"], unlabelled)
    convs = _lines(unlabelled / "conversations.jsonl")
    for c in convs:
        c["ratings"] = None
        for t in c["turns"]:
            t["intent"] = t["hallucination"] = t["reason"] = None
    _write_lines(unlabelled / "conversations.jsonl", convs)
    f["UNLABELLED"] = str(unlabelled)
    env = child_env(base)
    for name, source in (("BUILD", f["REL"]), ("UNBUILD", str(unlabelled))):
        out = base / name.lower()
        subprocess.run([RECLLMSIM, "build", "--source", source, "--out", str(out), "-q"], env=env,
                       check=True, capture_output=True)  # fmt: skip
        f[name] = str(out)
    return f


def child_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RECLLMSIM_", "HF_"))}
    env.update(HF_HOME=str(home / "hf"), RECLLMSIM_CACHE=str(home / "rcache"), HF_HUB_OFFLINE="1")
    env.update(NO_COLOR="1", COLUMNS="200", PYTHONDONTWRITEBYTECODE="1")
    return env


# -- setups ---------------------------------------------------------------------------------------


def copy_rel(d: Path, f: dict) -> Path:
    return Path(shutil.copytree(f["REL"], d / "rel", symlinks=True)) / "LLM_agent_user"


def copy_corpus(d: Path, f: dict, name: str = "corpus", key: str = "CORPUS") -> Path:
    return Path(shutil.copytree(f[key], d / name))


def user_project(d: Path, f: dict) -> None:
    (d / "proj" / "code").mkdir(parents=True)
    (d / "proj" / "thesis.tex").write_text("\\chapter{mine}\n")
    (d / "proj" / "code" / "main.py").write_text("print('mine')\n")


def edit_corpus_line(change):
    def setup(d: Path, f: dict) -> None:
        corpus = copy_corpus(d, f)
        convs = _lines(corpus / "conversations.jsonl")
        change(convs[0])
        _write_lines(corpus / "conversations.jsonl", convs)

    return setup


def edit_release(change):
    def setup(d: Path, f: dict) -> None:
        change(copy_rel(d, f))

    return setup


def tmpfs(d: Path, size: str = "256k") -> Path:
    mnt = d / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
    return mnt


def fill(mnt: Path) -> None:
    """Use up every free byte of the filesystem at ``mnt``."""
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    for i in range(1000):  # and the last inodes' worth of small files, if any fit
        try:
            (mnt / f"f{i}").write_bytes(b"")
        except OSError:
            break


def full_disk_corpus(d: Path, f: dict) -> None:
    mnt = tmpfs(d)
    shutil.copytree(f["CORPUS"], mnt / "corpus")
    fill(mnt)


def full_disk_profiles_only(d: Path, f: dict) -> None:
    mnt = tmpfs(d)
    (mnt / "corpus").mkdir()
    shutil.copy(Path(f["CORPUS"]) / "profiles.jsonl", mnt / "corpus" / "profiles.jsonl")
    fill(mnt)


def full_disk(d: Path, f: dict) -> None:
    fill(tmpfs(d, "64k"))


def full_disk_scenarios_known(d: Path, f: dict) -> None:
    """A corpus whose scenarios are already those asked for: the first write is the LLM cache's."""
    mnt = tmpfs(d)
    corpus = mnt / "corpus"
    corpus.mkdir()
    shutil.copy(Path(f["CORPUS"]) / "profiles.jsonl", corpus / "profiles.jsonl")
    argv = [RECLLMSIM, "scenarios", "list", "--json", "--tasks", "recipe planning"]
    listed = subprocess.run(argv, capture_output=True, text=True, check=True, env=child_env(d))
    _write_lines(corpus / "scenarios.jsonl", json.loads(listed.stdout))
    fill(mnt)


def readonly_fs_build(d: Path, f: dict) -> None:
    shutil.copytree(f["BUILD"], d / "build")
    mnt = tmpfs(d)
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)


def readonly_dir(d: Path, f: dict) -> None:
    (d / "ro").mkdir()
    (d / "ro" / "keep.txt").write_text("mine\n")
    os.chmod(d / "ro", 0o555)


def unreadable_file(d: Path, f: dict) -> None:
    root = copy_rel(d, f)
    os.chmod(root / "recipe planning" / "1.json", 0o000)


def unreadable_folder(d: Path, f: dict) -> None:
    root = copy_rel(d, f)
    os.chmod(root / "preparing gifts", 0o000)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def bomb(d: Path, f: dict) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("tasks: [*a9]")
    (d / "bomb.yaml").write_text("\n".join(lines) + "\n")


def stray_shard(d: Path, f: dict) -> None:
    build = Path(shutil.copytree(f["BUILD"], d / "build"))
    src = build / "conversations" / "train-00000-of-00001.parquet"
    shutil.copy(src, build / "conversations" / "train-00001-of-00001.parquet")


def _set(path: list, value):
    def change(record: dict) -> None:
        target = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _file_change(rel: str, change):
    def apply(root: Path) -> None:
        p = root / rel
        data = json.loads(p.read_text(encoding="utf-8"))
        change(data)
        p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    return apply


def _manifest(d: Path, f: dict) -> None:
    corpus = copy_corpus(d, f)
    m = json.loads((corpus / "manifest.json").read_text())
    m["schema_version"] = "2.0"
    (corpus / "manifest.json").write_text(json.dumps(m))


def _empty_conversations(d: Path, f: dict) -> None:
    corpus = copy_corpus(d, f)
    (corpus / "conversations.jsonl").write_text("")
    shutil.copytree(f["BUILD"], d / "prev")


def _no_conversations(d: Path, f: dict) -> None:
    (copy_corpus(d, f) / "conversations.jsonl").unlink()


def _marked_with_extra(d: Path, f: dict) -> None:
    build = Path(shutil.copytree(f["BUILD"], d / "build"))
    (build / "notes.txt").write_text("my notes\n")


def _link_to_project(d: Path, f: dict) -> None:
    user_project(d, f)
    (d / "link").symlink_to(d / "proj")


def _afile(d: Path, f: dict) -> None:
    (d / "afile").write_text("mine\n")


def _cwd_project(d: Path, f: dict) -> None:
    (d / ".git").mkdir()
    (d / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (d / "paper.md").write_text("mine\n")


def _plots_user(d: Path, f: dict) -> None:
    (d / "figs").mkdir()
    (d / "figs" / "score_distribution.png").write_bytes(b"my own picture")


def _eval_user(d: Path, f: dict) -> None:
    (d / "ev").mkdir()
    (d / "ev" / "report.json").write_text('{"mine": true}\n')


def _generate_user(d: Path, f: dict) -> None:
    (d / "out").mkdir()
    (d / "out" / "todo.txt").write_text("mine\n")


def _loop(root: Path) -> None:
    (root / "recipe planning" / "loop.json").symlink_to(root / "recipe planning" / "loop.json")


def _dir_named_json(root: Path) -> None:
    (root / "recipe planning" / "999.json").mkdir()


def _copy_named(root: Path) -> None:
    shutil.copy(root / "recipe planning" / "1.json", root / "recipe planning" / "3 (copy).json")


def _slug_twin(root: Path) -> None:
    (root / "recipe_planning").mkdir()
    shutil.copy(root / "recipe planning" / "1.json", root / "recipe_planning" / "1.json")


def _unknown_task(root: Path) -> None:
    (root / "shopping").mkdir()
    shutil.copy(root / "recipe planning" / "1.json", root / "shopping" / "1.json")


def _deep(root: Path) -> None:
    (root / "recipe planning" / "1.json").write_text(
        '{"task": "recipe planning", "x": ' + nested(200_000) + "}"
    )


def _huge(root: Path) -> None:
    with open(root / "recipe planning" / "1.json", "wb") as out:
        out.truncate(400 * 1024 * 1024)  # sparse: no disk used, but 400 MB to parse


def _deep_corpus(d: Path, f: dict) -> None:
    corpus = copy_corpus(d, f)
    with open(corpus / "conversations.jsonl", "a") as out:
        out.write('{"conversation_id": "deep", "extra": ' + nested(200_000) + "}\n")


def _deep_yaml(d: Path, f: dict) -> None:
    (d / "deep.yaml").write_text("tasks: " + nested(50_000) + "\n")


def _plots_ro(d: Path, f: dict) -> None:
    shutil.copytree(f["BUILD"], d / "build")
    readonly_dir(d, f)


def _bad_cache(d: Path, f: dict) -> None:
    (d / "notes.sqlite").write_text("my notes, not a database\n")


# -- the cases ------------------------------------------------------------------------------------


def cases() -> list[Case]:
    B, V = ["build", "-q"], ["validate"]
    dead = "http://127.0.0.1:1/v1"
    llm = ["--base-url", "{URL}", "--api-key", "sk-test", "-q"]
    c = [
        # §1 output folders
        Case(
            "build --out proj (user files)",
            B + ["--source", "{REL}", "--out", "proj"],
            user_project,
            protect=("proj",),
            contains=("thesis.tex",),
        ),
        Case(
            "build --out . (cwd with .git)",
            B + ["--source", "{REL}", "--out", "."],
            _cwd_project,
            protect=(".git", "paper.md"),
        ),
        Case("build --out ''", B + ["--source", "{REL}", "--out", ""], _cwd_project, protect=(".git",)),
        Case(
            "build --source corpus --out corpus",
            B + ["--source", "corpus", "--out", "corpus"],
            copy_corpus,
            protect=("corpus",),
            contains=("source",),
        ),
        Case(
            "build --source REL --out REL",
            B + ["--source", "rel", "--out", "rel"],
            copy_rel,
            protect=("rel",),
            contains=("source",),
        ),
        Case(
            "build --out inside the source",
            B + ["--source", "rel", "--out", "rel/LLM_agent_user/x"],
            copy_rel,
            protect=("rel",),
            absent=("rel/LLM_agent_user/x",),
            contains=("source",),
        ),
        Case(
            "build --out containing the source",
            B + ["--source", "rel/LLM_agent_user", "--out", "rel"],
            copy_rel,
            protect=("rel",),
            contains=("source",),
        ),
        Case(
            "build --out symlink to a project",
            B + ["--source", "{REL}", "--out", "link"],
            _link_to_project,
            protect=("proj", "link"),
            contains=("symbolic link",),
        ),
        Case(
            "build --out a marked build + user file",
            B + ["--source", "{REL}", "--out", "build"],
            _marked_with_extra,
            protect=("build",),
            contains=("notes.txt",),
        ),
        Case(
            "build --out figures folder",
            B + ["--source", "{REL}", "--out", "figs"],
            lambda d, f: _plots_ok_setup(d, f),
            protect=("figs",),
        ),
        Case(
            "build --out an earlier build",
            B + ["--source", "{REL}", "--out", "build"],
            lambda d, f: shutil.copytree(f["BUILD"], d / "build"),
            expect="ok",
        ),
        Case(
            "build --out an empty folder",
            B + ["--source", "{REL}", "--out", "empty"],
            lambda d, f: (d / "empty").mkdir(),
            expect="ok",
        ),
        Case(
            "build --out afile/sub",
            B + ["--source", "{REL}", "--out", "afile/sub"],
            _afile,
            protect=("afile",),
            contains=("afile",),
        ),
        Case("build --out /proc/nope", B + ["--source", "{REL}", "--out", "/proc/nope/x"]),
        Case(
            "build --out read-only parent (unprivileged)",
            B + ["--source", "{REL}", "--out", "ro/out"],
            readonly_dir,
            protect=("ro",),
            nobody=True,
            contains=("ro",),
        ),
        Case(
            "build on a full disk",
            B + ["--source", "{REL}", "--out", "small/out"],
            full_disk,
            absent=("small/out",),
            contains=("space",),
        ),
        Case(
            "stats --plots proj (user files)",
            ["stats", "{BUILD}", "--plots", "figs"],
            _plots_user,
            protect=("figs",),
        ),
        Case(
            "stats --plots afile/sub",
            ["stats", "{BUILD}", "--plots", "afile/sub"],
            _afile,
            protect=("afile",),
        ),
        Case(
            "stats --plots read-only (unprivileged)",
            ["stats", "build", "--plots", "ro/figs"],
            _plots_ro,
            protect=("ro",),
            nobody=True,
        ),
        Case("stats --plots ''", ["stats", "{BUILD}", "--plots", ""]),
        Case(
            "stats --plots into its own folder",
            ["stats", "{BUILD}", "--plots", "figs"],
            lambda d, f: _plots_ok_setup(d, f),
            expect="ok",
        ),
        Case(
            "annotate --evaluate --out afile",
            ["annotate", "--evaluate", "--source", "{REL}", "--out", "afile", "--sample", "1"] + llm,
            _afile,
            protect=("afile",),
        ),
        Case(
            "annotate --evaluate --out user folder",
            ["annotate", "--evaluate", "--source", "{REL}", "--out", "ev", "--sample", "1"] + llm,
            _eval_user,
            protect=("ev",),
        ),
        Case(
            "annotate --evaluate --out the source",
            ["annotate", "--evaluate", "--source", "rel", "--out", "rel", "--sample", "1"] + llm,
            copy_rel,
            protect=("rel",),
        ),
        Case(
            "generate conversations --out user folder",
            ["generate", "conversations", "-n", "1", "--out", "out"] + llm,
            _generate_user,
            protect=("out",),
        ),
        Case(
            "generate profiles --out afile",
            ["generate", "profiles", "-n", "1", "--out", "afile"] + llm,
            _afile,
            protect=("afile",),
        ),
        Case("generate profiles --out ''", ["generate", "profiles", "-n", "1", "--out", ""] + llm),
        Case(
            "baseline --cache a user file",
            [
                "baseline",
                "intent",
                "{BUILD}",
                "--models",
                "llm-zero-shot",
                "--cache",
                "notes.sqlite",
                "--limit",
                "1",
            ]
            + llm,
            _bad_cache,
            protect=("notes.sqlite",),
        ),
        Case(
            "push-to-hub a corpus (advice)",
            ["push-to-hub", "corpus", "me/x", "--dry-run"],
            copy_corpus,
            protect=("corpus",),
        ),
        # §2 operating-system failures
        Case(
            "validate unreadable file (unprivileged)",
            V + ["rel"],
            unreadable_file,
            nobody=True,
            contains=("1.json",),
        ),
        Case(
            "build unreadable file (unprivileged)",
            B + ["--source", "rel", "--out", "b"],
            unreadable_file,
            nobody=True,
            absent=("b",),
            contains=("1.json",),
        ),
        Case(
            "validate unreadable task folder (unprivileged)",
            V + ["rel"],
            unreadable_folder,
            nobody=True,
            contains=("preparing gifts",),
        ),
        Case(
            "build unreadable task folder (unprivileged)",
            B + ["--source", "rel", "--out", "b"],
            unreadable_folder,
            nobody=True,
            absent=("b",),
        ),
        Case(
            "annotate on a full disk",
            ["annotate", "--corpus", "small/corpus", "--what", "intent"] + llm,
            full_disk_corpus,
            protect=("small/corpus/conversations.jsonl", "small/corpus/profiles.jsonl"),
        ),
        Case(
            "generate on a full disk",
            ["generate", "conversations", "-n", "2", "--out", "small/corpus", "--tasks", "recipe planning"]
            + llm,
            full_disk_profiles_only,
            protect=("small/corpus/profiles.jsonl",),
        ),
        Case(
            "generate on a full disk (the LLM cache)",
            ["generate", "conversations", "-n", "2", "--out", "small/corpus", "--tasks", "recipe planning"]
            + llm,
            full_disk_scenarios_known,
            protect=("small/corpus/profiles.jsonl", "small/corpus/scenarios.jsonl"),
            contains=("llm.sqlite", "full"),
        ),
        Case(
            "annotate --no-cache on a full disk",
            ["annotate", "--corpus", "small/corpus", "--what", "intent", "--no-cache"] + llm,
            full_disk_corpus,
            protect=("small/corpus/conversations.jsonl", "small/corpus/profiles.jsonl"),
            contains=("conversations.jsonl", "ENOSPC"),
        ),
        Case(
            "stats --plots on a read-only filesystem",
            ["stats", "build", "--plots", "small/figs"],
            readonly_fs_build,
            absent=("small/figs",),
            contains=("read-only filesystem",),
        ),
        Case(
            "build --out on a read-only filesystem",
            B + ["--source", "{REL}", "--out", "small/out"],
            readonly_fs_build,
            absent=("small/out",),
        ),
        Case(
            "annotate read-only corpus (unprivileged)",
            ["annotate", "--corpus", "corpus", "--what", "intent"] + llm,
            lambda d, f: (copy_corpus(d, f), os.chmod(d / "corpus", 0o555)),
            nobody=True,
            protect=("corpus",),
        ),
        # §3 validate and build agree
        Case(
            "validate rating '2'",
            V + ["corpus"],
            edit_corpus_line(_set(["ratings", "diversity"], "2")),
            contains=("'2'",),
        ),
        Case(
            "build rating '2'",
            B + ["--source", "corpus", "--out", "b"],
            edit_corpus_line(_set(["ratings", "diversity"], "2")),
            absent=("b",),
            contains=("'2'",),
        ),
        Case("validate round '1'", V + ["corpus"], edit_corpus_line(_set(["round"], "1")), contains=("'1'",)),
        Case(
            "build hallucination 'false'",
            B + ["--source", "corpus", "--out", "b"],
            edit_corpus_line(lambda c: c["turns"][1].update(hallucination="false")),
            absent=("b",),
            contains=("'false'",),
        ),
        Case(
            "validate recipe_planning/ beside recipe planning/",
            V + ["rel"],
            edit_release(_slug_twin),
            contains=("recipe_planning",),
        ),
        Case(
            "build recipe_planning/ beside recipe planning/",
            B + ["--source", "rel", "--out", "b"],
            edit_release(_slug_twin),
            absent=("b",),
        ),
        Case(
            "validate folder named 999.json",
            V + ["rel"],
            edit_release(_dir_named_json),
            contains=("999.json",),
        ),
        Case("validate symlink loop", V + ["rel"], edit_release(_loop), contains=("loop.json",)),
        Case("validate '3 (copy).json'", V + ["rel"], edit_release(_copy_named), contains=("3 (copy).json",)),
        Case(
            "validate unknown task folder", V + ["rel"], edit_release(_unknown_task), contains=("shopping",)
        ),
        Case(
            "build unknown task folder",
            B + ["--source", "rel", "--out", "b"],
            edit_release(_unknown_task),
            absent=("b",),
        ),
        Case("validate empty conversations.jsonl", V + ["corpus"], _empty_conversations),
        Case(
            "build empty conversations.jsonl over a build",
            B + ["--source", "corpus", "--out", "prev"],
            _empty_conversations,
            protect=("prev",),
        ),
        Case("validate schema_version 2.0", V + ["corpus"], _manifest, contains=("2.0",)),
        Case("stats with a stray shard", ["stats", "build"], stray_shard, contains=("00001-of-00001",)),
        Case("stats on an unannotated build", ["stats", "{UNBUILD}"], expect="ok"),
        Case(
            "validate missing release file task",
            V + ["rel"],
            edit_release(_file_change("recipe planning/1.json", lambda x: x.pop("task"))),
            contains=("task",),
        ),
        # §4 hostile sizes
        Case(
            "scenarios list --catalog alias bomb",
            ["scenarios", "list", "--catalog", "bomb.yaml"],
            bomb,
            timeout=20,
            contains=("alias",),
        ),
        Case(
            "scenarios list --catalog deep nesting",
            ["scenarios", "list", "--catalog", "deep.yaml"],
            _deep_yaml,
            timeout=20,
        ),
        Case(
            "generate -n 1e9 --budget-usd 0.0001",
            [
                "generate",
                "conversations",
                "-n",
                "1000000000",
                "--out",
                "corpus",
                "--budget-usd",
                "0.0001",
                "--tasks",
                "recipe planning",
            ]
            + llm,
            copy_corpus,
            protect=("corpus/conversations.jsonl",),
            timeout=30,
            contains=("budget",),
        ),
        Case("validate deeply nested release file", V + ["rel"], edit_release(_deep), contains=("1.json",)),
        Case(
            "build deeply nested release file",
            B + ["--source", "rel", "--out", "b"],
            edit_release(_deep),
            absent=("b",),
        ),
        Case("validate deeply nested corpus line", V + ["corpus"], _deep_corpus),
        Case("validate 400 MB release file", V + ["rel"], edit_release(_huge), timeout=30, contains=("MB",)),
        # §5 messages
        Case(
            "generate: credentials in --base-url",
            [
                "generate",
                "conversations",
                "-n",
                "1",
                "--out",
                "corpus",
                "--base-url",
                f"http://user:{SECRET}@127.0.0.1:1/v1",
                "-q",
            ],
            copy_corpus,
            protect=KEPT,
            contains=("connection refused", "simulator"),
        ),
        Case(
            "generate profiles: nothing listening",
            ["generate", "profiles", "-n", "1", "--out", "p", "--base-url", dead, "-q"],
            absent=("p",),
            contains=("connection refused", "profile role"),
        ),
        Case(
            "build: corpus without conversations.jsonl",
            B + ["--source", "corpus", "--out", "b"],
            _no_conversations,
            absent=("b",),
            contains=("conversations.jsonl",),
        ),
        Case("build --seed abc", B + ["--seed", "abc"], contains=("abc",)),
        Case(
            "generate: key in the --base-url query",
            [
                "generate",
                "conversations",
                "-n",
                "1",
                "--out",
                "corpus",
                "--base-url",
                "http://127.0.0.1:1/v1?key=sk-" + SECRET,
                "-q",
            ],
            copy_corpus,
            protect=KEPT,
        ),
        # §6 small paths
        Case(
            "annotate --what ''",
            ["annotate", "--corpus", "corpus", "--what", ""] + llm,
            copy_corpus,
            protect=("corpus",),
        ),
        Case(
            "baseline --split-seeds 4-0",
            ["baseline", "intent", "{BUILD}", "--split-seeds", "4-0"],
            contains=("4-0",),
        ),
        Case(
            "generate conversations -n 0",
            ["generate", "conversations", "-n", "0", "--out", "corpus"] + llm,
            copy_corpus,
            protect=("corpus",),
        ),
        Case(
            "generate conversations -n -5",
            ["generate", "conversations", "-n", "-5", "--out", "corpus"] + llm,
            copy_corpus,
            protect=("corpus",),
        ),
        Case(
            "generate profiles -n 0", ["generate", "profiles", "-n", "0", "--out", "p"] + llm, absent=("p",)
        ),
        Case(
            "generate profiles -n -5", ["generate", "profiles", "-n", "-5", "--out", "p"] + llm, absent=("p",)
        ),
        Case(
            "failed generate leaves nothing",
            ["generate", "conversations", "-n", "1", "--out", "new"] + llm,
            absent=("new",),
        ),
        Case(
            "failed generate into an empty folder",
            ["generate", "conversations", "-n", "1", "--out", "new"] + llm,
            lambda d, f: (d / "new").mkdir(),
            absent=("new/.cache",),
        ),
        # plain bad input over every command
        Case("validate nothing there", V + ["nope"]),
        Case("build --source nothing there", B + ["--source", "nope", "--out", "b"], absent=("b",)),
        Case("build --split-by bogus", B + ["--split-by", "bogus"]),
        Case("stats nothing there", ["stats", "nope"]),
        Case("stats a corpus", ["stats", "corpus"], copy_corpus, protect=("corpus",)),
        Case("baseline intent nothing there", ["baseline", "intent", "nope"]),
        Case("baseline --models ''", ["baseline", "intent", "{BUILD}", "--models", ""]),
        Case("generate filter nothing there", ["generate", "filter", "--corpus", "nope"]),
        Case(
            "annotate a non-corpus",
            ["annotate", "--corpus", "proj", "--what", "intent"] + llm,
            user_project,
            protect=("proj",),
        ),
        Case("scenarios list --catalog missing", ["scenarios", "list", "--catalog", "nope.yaml"]),
        Case("push-to-hub nothing there", ["push-to-hub", "nope", "me/x", "--dry-run"]),
        Case(
            "push-to-hub stray shard",
            ["push-to-hub", "build", "me/x", "--dry-run"],
            stray_shard,
            protect=("build",),
        ),
        Case(
            "generate conversations --out afile",
            ["generate", "conversations", "-n", "1", "--out", "afile"] + llm,
            _afile,
            protect=("afile",),
        ),
    ]
    return c


def _plots_ok_setup(d: Path, f: dict) -> None:
    env = child_env(Path(f["BASE"]))
    subprocess.run([RECLLMSIM, "stats", f["BUILD"], "--plots", str(d / "figs")], env=env, check=True,
                   capture_output=True)  # fmt: skip
