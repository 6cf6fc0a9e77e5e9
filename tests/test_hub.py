"""``recllmsim push-to-hub`` against a local Hub-protocol server (tests/hub_server.py).

huggingface_hub and datasets read HF_ENDPOINT when they are imported, so every push and every
``load_dataset`` from the server runs in a subprocess with HF_ENDPOINT, HF_HUB_DISABLE_XET=1 (the
LFS upload path), its own HF_HOME and the token in HF_TOKEN or --token.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import Blob, HubServer
from tiny_corpus import write_tiny_corpus

from recllmsim_hf.dataset.card_settings import set_repo_id
from recllmsim_hf.errors import InputError
from recllmsim_hf.features import CONFIG_NAMES
from recllmsim_hf.hub import check_build, push_to_hub
from recllmsim_hf.schema import INTENT_LABELS

TOKEN = "hf_test_me_0123456789abcdef"
OTHER = "hf_test_other_0123456789abcdef"
READ_ONLY = "hf_test_readonly_0123456789abcdef"

# Loads configs from the server (or a local folder) and prints, per job, the split sizes, the
# features and a digest of the rows (or the error), as JSON.
LOADER = r"""
import hashlib, json, sys
import datasets
datasets.disable_progress_bars()
out = []
for job in json.loads(sys.argv[1]):
    try:
        ds = datasets.load_dataset(job["path"], job["config"], revision=job.get("revision"))
    except Exception as e:
        out.append({"error": type(e).__name__, "message": str(e)[:300]})
        continue
    result = {"sizes": {s: d.num_rows for s, d in ds.items()},
              "features": next(iter(ds.values())).features.to_dict()}
    if job.get("digest"):
        result["digest"] = {
            s: hashlib.sha256(json.dumps(d.to_list(), sort_keys=True, default=str).encode()).hexdigest()
            for s, d in ds.items()
        }
    out.append(result)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def hub():
    with HubServer(tokens={TOKEN: "me", OTHER: "other", READ_ONLY: "me"}, read_only={READ_ONLY}) as server:
        yield server


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    """A build of the tiny generated corpus: 4 conversations, intent split 7/1/1."""
    from recllmsim_hf.dataset.build import build_dataset

    root = tmp_path_factory.mktemp("tiny")
    build_dataset(write_tiny_corpus(root / "corpus"), root / "build", progress=False)
    return root / "build"


def _env(hub: HubServer, home: Path, token: str | None = TOKEN) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_HUB_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1")
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def _cli(hub: HubServer, home: Path, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "recllmsim_hf", "push-to-hub", *map(str, args), "-q"]
    return subprocess.run(cmd, env=_env(hub, home, token), capture_output=True, text=True, timeout=240)


def _load(hub: HubServer, home: Path, jobs: list[dict]) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(jobs)],
        env=_env(hub, home),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _local_files(folder: Path) -> dict[str, bytes]:
    """What a push uploads: every file of the build except hidden ones (the build's marker)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _card_sizes(folder: Path) -> dict[str, dict[str, int]]:
    from huggingface_hub import DatasetCard

    infos = DatasetCard.load(folder / "README.md").data.to_dict()["dataset_info"]
    return {i["config_name"]: {s["name"]: s["num_examples"] for s in i["splits"]} for i in infos}


def _assert_no_token(proc: subprocess.CompletedProcess, *tokens: str) -> None:
    for token in tokens:
        assert token not in proc.stdout and token not in proc.stderr


def test_round_trip_loads_what_was_built(hub, built_release, tmp_path):
    proc = _cli(hub, tmp_path / "home", built_release, "me/recllmsim")
    assert proc.returncode == 0, proc.stderr
    url = proc.stdout.strip().splitlines()[-1]
    head = hub.repos[("dataset", "me/recllmsim")].refs["main"]
    assert url == f"{hub.url}/datasets/me/recllmsim/commit/{head}"
    _assert_no_token(proc, TOKEN)
    pushed = hub.files("me/recllmsim")
    local = _local_files(built_release)
    assert pushed == {**local, "README.md": pushed["README.md"], ".gitattributes": pushed[".gitattributes"]}
    # the card on the Hub loads itself by its repo id; the local one shows a placeholder
    card = pushed["README.md"].decode()
    assert 'ds = load_dataset("me/recllmsim", "intent")\n' in card
    assert 'load_dataset("your-name/recllmsim", "intent")' in local["README.md"].decode()
    assert card == set_repo_id(local["README.md"].decode(), "me/recllmsim")
    repo = hub.repos[("dataset", "me/recllmsim")]
    assert repo.commits[head].title == "Upload RecLLMSim build: 9 configs, 1,856 conversations"

    jobs = [
        {"path": "me/recllmsim", "config": "intent", "digest": True},
        {"path": str(built_release), "config": "intent", "digest": True},
    ]
    remote, local = _load(hub, tmp_path / "home", jobs)
    assert remote == local
    assert remote["features"]["label"]["names"] == list(INTENT_LABELS)
    assert (
        remote["sizes"]
        == _card_sizes(built_release)["intent"]
        == {"train": 5676, "validation": 710, "test": 710}
    )
    assert hub.unhandled == []
    # the token was written nowhere: not in the build, not in the Hub caches
    for folder in (built_release, tmp_path / "home"):
        for path in folder.rglob("*"):
            assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path


def _two_shard_release(built_release: Path) -> dict[str, Blob]:
    """The release build as an earlier push with conversations in two shards (-of-00002)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tree = {path: Blob(data, path.endswith(".parquet")) for path, data in _local_files(built_release).items()}
    conversations = tree.pop("conversations/train-00000-of-00001.parquet")
    table = pq.read_table(io.BytesIO(conversations.data))
    half = table.num_rows // 2
    for i, part in enumerate((table.slice(0, half), table.slice(half))):
        sink = pa.BufferOutputStream()
        pq.write_table(part, sink)
        tree[f"conversations/train-0000{i}-of-00002.parquet"] = Blob(sink.getvalue().to_pybytes(), True)
    return tree


def test_smaller_push_replaces_the_earlier_one(hub, built_release, tiny_build, tmp_path):
    earlier = _two_shard_release(built_release)
    for repo_id in ("me/shrinking", "me/naive"):
        repo = hub.create_repo(repo_id, "me")
        hub.commit(repo, "main", "earlier push", {**repo.resolve("main").tree, **earlier})
    # what an upload without deletions would leave: the new files over the old ones
    naive = hub.repos[("dataset", "me/naive")]
    tiny = {path: Blob(data, path.endswith(".parquet")) for path, data in _local_files(tiny_build).items()}
    hub.commit(naive, "main", "upload without deletes", {**naive.resolve("main").tree, **tiny})

    proc = _cli(hub, tmp_path / "home", tiny_build, "me/shrinking")
    assert proc.returncode == 0, proc.stderr
    # the two conversation shards, and the 8 shards of the release's human-study configs the tiny build lacks
    assert "removed 10 file(s) of earlier pushes: conversations/train-00000-of-00002.parquet, " in proc.stdout
    assert set(hub.files("me/shrinking")) == set(_local_files(tiny_build)) | {".gitattributes"}

    expected = _card_sizes(tiny_build)
    jobs = [{"path": "me/shrinking", "config": c} for c in CONFIG_NAMES]
    jobs.append({"path": "me/naive", "config": "conversations"})
    *loaded, naive_load = _load(hub, tmp_path / "home", jobs)
    assert {c: r.get("sizes", r) for c, r in zip(CONFIG_NAMES, loaded, strict=True)} == expected
    assert expected["conversations"] == {"train": 4} and expected["intent"] == {
        "train": 7,
        "validation": 1,
        "test": 1,
    }
    # the pitfall the one-commit push avoids: stale shards make the card's split sizes wrong
    assert naive_load["error"] == "NonMatchingSplitsSizesError", naive_load


def test_a_push_racing_another_commit_fails_cleanly(hub, tiny_build, tmp_path):
    repo = hub.create_repo("me/raced", "me")
    hub.commit(repo, "main", "earlier push", {**repo.resolve("main").tree, "old.parquet": Blob(b"x", True)})

    def sneak_in(target):  # someone else pushes between our listing and our commit
        if target is repo and "late.txt" not in target.resolve("main").tree:
            hub.commit(
                repo, "main", "late push", {**repo.resolve("main").tree, "late.txt": Blob(b"hi", False)}
            )

    hub.before_commit = sneak_in
    try:
        proc = _cli(hub, tmp_path / "home", tiny_build, "me/raced")
    finally:
        hub.before_commit = None
    assert proc.returncode == 3
    assert proc.stderr == "recllmsim: error: me/raced: the repo changed during the push; run the push again\n"
    assert set(hub.files("me/raced")) == {".gitattributes", "old.parquet", "late.txt"}  # nothing half-done


def test_dry_run_makes_no_request(hub, tiny_build, tmp_path):
    before = len(hub.requests)
    proc = _cli(hub, tmp_path / "home", tiny_build, "me/dry", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert len(hub.requests) == before
    assert ("dataset", "me/dry") not in hub.repos
    lines = proc.stdout.splitlines()
    assert lines[0] == "dry run: nothing was sent to the Hub (no token needed)"
    assert any(
        line.startswith("  add     intent_utterances/validation-00000-of-00001.parquet") for line in lines
    )
    assert "  intent               train 7, validation 1, test 1" in lines
    card = (tiny_build / "README.md").read_text(encoding="utf-8")
    assert proc.stdout.endswith(set_repo_id(card, "me/dry"))
    assert 'ds = load_dataset("me/dry", "intent")\n' in proc.stdout
    assert (
        "commit message: Upload tiny test corpus: RecLLMSim-style conversations build: 5 configs, 4 "
        in proc.stdout
    )
    _assert_no_token(proc, TOKEN)


def test_wrong_token_is_one_clear_line(hub, tiny_build, tmp_path):
    proc = _cli(hub, tmp_path / "home", tiny_build, "me/wrong", token="hf_wrong_token_0000")
    assert proc.returncode == 3
    assert proc.stderr == (
        f"recllmsim: error: {hub.url} rejected the token (401): "
        "run `hf auth login` again or pass a valid --token\n"
    )
    _assert_no_token(proc, "hf_wrong_token_0000")
    assert ("dataset", "me/wrong") not in hub.repos


def test_not_logged_in(hub, tiny_build, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    before = len(hub.requests)
    with pytest.raises(
        InputError, match=r"^not logged in: run `hf auth login` or pass --token \(or set HF_TOKEN\)$"
    ):
        push_to_hub(tiny_build, "me/anon", endpoint=hub.url, progress=False)
    assert len(hub.requests) == before


def test_someone_elses_repo_is_refused(hub, tiny_build, tmp_path):
    repo = hub.create_repo("other/theirs", "other")
    before = dict(repo.refs)
    proc = _cli(hub, tmp_path / "home", tiny_build, "other/theirs")
    assert proc.returncode == 3
    assert proc.stderr.startswith("recllmsim: error: other/theirs: repo exists and belongs to someone else; ")
    assert proc.stderr.count("\n") == 1
    assert repo.refs == before

    proc = _cli(hub, tmp_path / "home", tiny_build, "other/new")
    assert proc.returncode == 3
    assert proc.stderr == (
        "recllmsim: error: other/new: you cannot create repos in namespace 'other'; "
        "use a repo id under ['me'] instead\n"
    )


def test_read_only_token_is_refused(hub, tiny_build, tmp_path):
    hub.create_repo("me/readonly", "me")
    proc = _cli(hub, tmp_path / "home", tiny_build, "me/readonly", "--token", READ_ONLY, token=None)
    assert proc.returncode == 3
    assert proc.stderr.startswith("recllmsim: error: me/readonly: the token has no write access (403 while ")
    _assert_no_token(proc, READ_ONLY)


def test_branch_and_pull_request(hub, tiny_build, tmp_path):
    proc = _cli(
        hub, tmp_path / "home", tiny_build, "me/branched", "--revision", "v1", "--commit-message", "v1 build"
    )
    assert proc.returncode == 0, proc.stderr
    repo = hub.repos[("dataset", "me/branched")]
    assert set(hub.files("me/branched", "v1")) == set(_local_files(tiny_build)) | {".gitattributes"}
    assert set(hub.files("me/branched")) == {".gitattributes"}
    assert repo.resolve("v1").title == "v1 build"

    proc = _cli(hub, tmp_path / "home", tiny_build, "me/branched", "--create-pr")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"opened {hub.url}/datasets/me/branched/discussions/1"
    assert set(hub.files("me/branched")) == {".gitattributes"}  # main untouched until the PR is merged
    assert set(hub.files("me/branched", "refs/pr/1")) == set(_local_files(tiny_build)) | {".gitattributes"}


def test_broken_builds_are_refused(tiny_build, tmp_path):
    import shutil

    cases = {
        "missing shard": lambda d: (d / "intent_utterances/test-00000-of-00001.parquet").unlink(),
        "stray shard": lambda d: shutil.copy(
            d / "profiles/train-00000-of-00001.parquet", d / "profiles.parquet"
        ),
        "stale split size": lambda d: (d / "README.md").write_text(
            (d / "README.md").read_text().replace("num_examples: 4\n", "num_examples: 5\n", 1)
        ),
        "no card": lambda d: (d / "README.md").unlink(),
    }
    messages = {}
    for name, corrupt in cases.items():
        folder = tmp_path / name.replace(" ", "_")
        shutil.copytree(tiny_build, folder)
        corrupt(folder)
        with pytest.raises(InputError) as err:
            check_build(folder)
        messages[name] = str(err.value)
        assert "\n" not in messages[name] and "recllmsim build" in messages[name]
    assert "split 'test' matches no file" in messages["missing shard"]
    assert "profiles.parquet: data file in no config of the card" in messages["stray shard"]
    assert "does not load (NonMatchingSplitsSizesError" in messages["stale split size"]
    assert "no README.md" in messages["no card"]
    sizes = check_build(tiny_build).sizes
    assert sizes == _card_sizes(tiny_build) and list(sizes) == list(CONFIG_NAMES)


def test_quiet_push_prints_only_the_projects_own_lines(hub, tiny_build, tmp_path):
    first = _cli(hub, tmp_path / "home", tiny_build, "me/quiet")  # _cli passes -q
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    assert first.stdout.splitlines()[-1].startswith(f"{hub.url}/datasets/me/quiet/commit/")
    again = _cli(hub, tmp_path / "home", tiny_build, "me/quiet")
    assert again.returncode == 0, again.stderr
    # huggingface_hub's own "No files have been modified since last commit..." stays silent
    assert again.stderr == "the repo already holds this build: no new commit\n"


def test_dry_run_aligns_the_long_config_names(hub, tmp_path):
    from human_fixture import make_full_release

    from recllmsim_hf.dataset.build import build_dataset

    build_dataset(make_full_release(tmp_path / "rel"), tmp_path / "build", progress=False)
    proc = _cli(hub, tmp_path / "home", tmp_path / "build", "me/dry-human", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    checked = proc.stdout.split("configs checked locally:\n")[1].split("--- README.md ---")[0].splitlines()
    assert [line.split()[0] for line in checked][-4:] == [
        "human_conversations",
        "human_profiles",
        "human_intent_utterances",
        "profile_identification",
    ]
    assert {line.index(" train ") for line in checked} == {len("  human_intent_utterances")}
