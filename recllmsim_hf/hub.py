"""``recllmsim push-to-hub``: publish a build folder as a Hub dataset repo in ONE commit.

The commit adds every file of the build and deletes every file of the target revision that the
build does not have (except ``.gitattributes``), so the card's ``configs``, its
``dataset_info`` and the parquet shards on the Hub always come from the same build: a stale
split left by an earlier, larger push cannot make ``load_dataset`` fail.

Steps: check the build locally (every config of the card loads, every shard is in a config);
with ``dry_run`` stop there and return the plan (no network call at all). Otherwise resolve the
token (``--token``, ``HF_TOKEN``, the ``hf auth login`` token), ask the Hub who it belongs to,
create the repo if missing (and the branch for ``revision``), list the remote files, send one
commit (or open a pull request with ``create_pr``) and check the remote tree afterwards.

Errors are one line naming the fix; the token never appears in output, messages or files.

Example:
    >>> result = push_to_hub("recllmsim", "me/recllmsim")  # doctest: +SKIP
    >>> result["commit_url"]  # doctest: +SKIP
    'https://huggingface.co/datasets/me/recllmsim/commit/1f0c...'
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from recllmsim_hf.errors import InputError, RecLLMSimError, ServiceError
from recllmsim_hf.schema import PRETTY_NAME

REPO_TYPE = "dataset"
KEEP_REMOTE = frozenset({".gitattributes"})


@dataclass
class BuildCheck:
    """What the local check of a build found: its files, card and loaded split sizes."""

    folder: Path
    files: dict[str, int]  # relative posix path -> size in bytes
    card: str
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> rows
    aliases: tuple[str, ...] = ()  # configs reading the same files as an earlier one (not counted)
    pretty_name: str = PRETTY_NAME


def _local_files(folder: Path) -> dict[str, int]:
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[rel.as_posix()] = path.stat().st_size
    return out


def rebuild_advice(folder: Path) -> str:
    """Advice that is safe as printed: only a folder an earlier build marked is rebuilt, from its source."""
    import shlex

    from recllmsim_hf.safety import read_marker

    marker = read_marker(folder)
    if marker is None or marker.get("kind") != "build":
        return "pass a folder written by `recllmsim build`"
    given = marker.get("source") or []
    source = "".join(f" --source {shlex.quote(s)}" for s in ([given] if isinstance(given, str) else given))
    return f"rebuild it with `recllmsim build{source} --out {shlex.quote(str(folder))}`"


def check_build(folder: str | os.PathLike, progress: bool = False) -> BuildCheck:
    """Refuse a broken build: the card must parse, every config must load, every shard be in a config.

    Example:
        >>> check_build("recllmsim").sizes["intent"]  # doctest: +SKIP
        {'train': 5676, 'validation': 710, 'test': 710}
    """
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    fix = rebuild_advice(folder)
    if not (folder / "README.md").is_file():
        raise InputError(f"{folder}: no README.md (not a build folder); {fix}")
    card_text = (folder / "README.md").read_text(encoding="utf-8")
    try:
        meta = DatasetCard(card_text).data.to_dict()
    except Exception as e:  # malformed YAML or metadata
        raise InputError(
            f"{folder / 'README.md'}: the card's YAML does not parse ({_one_line(e)}); {fix}"
        ) from None
    configs = meta.get("configs") or []
    if not configs:
        raise InputError(f"{folder / 'README.md'}: no `configs:` in the card's YAML; {fix}")
    files = _local_files(folder)
    covered: set[str] = set()
    for config in configs:
        for entry in config.get("data_files") or []:
            matched = [p for p in files if fnmatch.fnmatchcase(p, entry["path"])]
            if not matched:
                raise InputError(
                    f"{folder / 'README.md'}: configs[{config['config_name']}].data_files: split "
                    f"{entry['split']!r} matches no file, but got pattern {entry['path']!r}; {fix}"
                )
            covered.update(matched)
    stray = sorted(p for p in files if p.endswith(".parquet") and p not in covered)
    if stray:
        raise InputError(f"{folder / stray[0]}: data file in no config of the card; remove it or {fix}")
    seen: list = []
    aliases = []
    for config in configs:
        files_of = sorted((e["split"], e["path"]) for e in config.get("data_files") or [])
        if files_of in seen:
            aliases.append(config["config_name"])
        seen.append(files_of)
    check = BuildCheck(folder, files, card_text, aliases=tuple(aliases))
    check.pretty_name = meta.get("pretty_name") or PRETTY_NAME
    for name in _progress([c["config_name"] for c in configs], "checking configs", progress):
        check.sizes[name] = _load_sizes(folder, name, fix)
    return check


def _load_sizes(folder: Path, config: str, fix: str) -> dict[str, int]:
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # the failure is reported once, below
    with tempfile.TemporaryDirectory(prefix="recllmsim-check-") as cache:
        try:
            loaded = datasets.load_dataset(str(folder.resolve()), config, cache_dir=cache)
        except Exception as e:  # any failure to load is a broken build
            raise InputError(f"{folder}: config {config!r} does not load ({_describe(e)}); {fix}") from None
        return {split: ds.num_rows for split, ds in loaded.items()}


def resolve_token(token: str | None) -> tuple[str, str]:
    """The token to use and where it came from: ``--token``, ``HF_TOKEN`` or the saved login."""
    if token:
        return token, "--token"
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise InputError("not logged in: run `hf auth login` or pass --token (or set HF_TOKEN)")
    return found, "HF_TOKEN" if os.environ.get("HF_TOKEN", "").strip() == found else "saved login"


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    dry_run: bool = False,
    endpoint: str | None = None,
    progress: bool = True,
) -> dict:
    """Push a build folder to the dataset repo ``repo_id`` in one commit; returns what was done."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise InputError(
            f"repo id {repo_id!r}: {_one_line(e)}; pass NAMESPACE/NAME, e.g. your-name/recllmsim"
        ) from None
    check = check_build(folder, progress=progress)
    message = commit_message or _default_message(check)
    plan = {
        "repo_id": repo_id,
        "revision": revision or "main",
        "create_pr": create_pr,
        "private": private,
        "commit_message": message,
        "files": _with_card(check, repo_id)[1],
        "configs": check.sizes,
        "dry_run": dry_run,
    }
    if dry_run:
        return {**plan, "card": _with_card(check, repo_id)[0].decode("utf-8")}
    token, source = resolve_token(token)
    with _hub_errors(repo_id, token, endpoint) as ctx:
        return {**plan, **_push(check, repo_id, plan, token, endpoint, ctx, progress), "token_source": source}


def _push(
    check: BuildCheck, repo_id: str, plan: dict, token: str, endpoint, ctx: dict, progress: bool
) -> dict:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, RepoFile
    from huggingface_hub.utils import disable_progress_bars, logging

    # the progress display and the messages are the project's own: no tqdm bars from the
    # upload, and with -q not even huggingface_hub's warnings ("No files have been modified ...",
    # which the CLI reports as "the repo already holds this build")
    disable_progress_bars()
    if progress:
        logging.set_verbosity_warning()
    else:
        logging.set_verbosity_error()
    api = HfApi(endpoint=endpoint, token=token, library_name="recllmsim")
    ctx["step"] = "checking the token"
    me = api.whoami(token=token)
    ctx["mine"] = {me.get("name"), *(org.get("name") for org in me.get("orgs") or [])}
    if "/" not in repo_id:
        repo_id = f"{me['name']}/{repo_id}"
        ctx["repo_id"] = plan["repo_id"] = repo_id
    notes = []
    ctx["step"] = "creating the repo"
    existed = api.repo_exists(repo_id, repo_type=REPO_TYPE)
    url = api.create_repo(repo_id, repo_type=REPO_TYPE, private=plan["private"] or None, exist_ok=True)
    revision = plan["revision"]
    if revision != "main":
        ctx["step"] = f"creating branch {revision!r}"
        api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
    ctx["step"] = "reading the repo"
    before = api.repo_info(repo_id, repo_type=REPO_TYPE, revision=revision)
    if existed and plan["private"] and not before.private:
        notes.append("--private ignored: the repo already exists and is public (change it in its settings)")
    ctx["step"] = "listing the remote files"
    remote = {
        f.path
        for f in api.list_repo_tree(repo_id, repo_type=REPO_TYPE, revision=before.sha, recursive=True)
        if isinstance(f, RepoFile)
    }
    deleted = sorted(remote - set(check.files) - KEEP_REMOTE)
    card, expected = _with_card(check, repo_id)  # the snippet names the repo id as resolved above
    operations = [
        CommitOperationAdd(path, card if path == "README.md" else str(check.folder / path))
        for path in check.files
    ]
    operations += [CommitOperationDelete(path) for path in deleted]
    ctx["step"] = "uploading and committing"
    size = sum(expected.values())
    with _status(f"uploading {len(expected)} files ({size / 1e6:,.1f} MB) to {repo_id}", progress):
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=plan["commit_message"],
            repo_type=REPO_TYPE,
            revision=revision,
            create_pr=plan["create_pr"],
            # deletions were listed at this commit: a push landing in between fails (412) instead of mixing
            parent_commit=before.sha,
        )
    ctx["step"] = "checking the remote files"
    after = {
        f.path: f.size
        for f in api.list_repo_tree(repo_id, repo_type=REPO_TYPE, revision=info.oid, recursive=True)
        if isinstance(f, RepoFile) and f.path not in KEEP_REMOTE
    }
    if after != expected:
        wrong = sorted(set(after.items()) ^ set(expected.items()))[0][0]
        raise ServiceError(
            f"{repo_id}@{info.oid[:12]}: {wrong} differs from the build after the push; push again"
        )
    return {
        "files": expected,
        "repo_url": str(url),
        "commit_url": info.commit_url,
        "commit_oid": info.oid,
        "pr_url": info.pr_url,
        "unchanged": info.oid == before.sha,
        "deleted": deleted,
        "notes": notes,
    }


def _with_card(check: BuildCheck, repo_id: str) -> tuple[bytes, dict[str, int]]:
    """The card as pushed to ``repo_id`` (its usage snippet loads that repo) and the file sizes with it."""
    from recllmsim_hf.dataset.card_settings import set_repo_id

    card = set_repo_id(check.card, repo_id).encode("utf-8")
    return card, {**check.files, "README.md": len(card)}


def _default_message(check: BuildCheck) -> str:
    """``Upload RecLLMSim build: 5 configs, 1,856 conversations``: aliases are not counted, as in the card."""
    conversations = sum(check.sizes.get("conversations", {}).values())
    configs = [name for name in check.sizes if name not in check.aliases]
    return f"Upload {check.pretty_name} build: {len(configs)} configs, {conversations:,} conversations"


def _describe(e: BaseException) -> str:
    """``Type: message``, plus the root cause when datasets wraps it (DatasetGenerationError)."""
    root = e
    while root.__cause__ is not None or (root.__context__ is not None and not root.__suppress_context__):
        root = root.__cause__ or root.__context__
    text = f"{type(e).__name__}: {_one_line(e)}"
    return text if root is e else f"{text}; caused by {type(root).__name__}: {_one_line(root)}"


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


@contextmanager
def _hub_errors(repo_id: str, token: str, endpoint: str | None) -> Iterator[dict]:
    """Turn huggingface_hub / network failures into one-line errors that name the fix."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    ctx: dict = {"step": "starting", "repo_id": repo_id, "mine": set()}
    where = endpoint or constants.ENDPOINT
    try:
        yield ctx
    except RecLLMSimError:
        raise
    except (HfHubHTTPError, httpx2.HTTPError, OfflineModeIsEnabled, RuntimeError, ValueError) as e:
        hub_failure = (HfHubHTTPError, httpx2.HTTPError, OfflineModeIsEnabled)
        cause = e if isinstance(e, hub_failure) else e.__cause__
        if not isinstance(cause, hub_failure):
            raise  # not the Hub's doing: a bug, keep the traceback
        repo_id = ctx["repo_id"]
        namespace = repo_id.split("/")[0]
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if isinstance(cause, httpx2.TransportError | OfflineModeIsEnabled):
            error = ServiceError(
                f"cannot reach {where} while {ctx['step']} ({type(cause).__name__}); "
                "check the network or HF_ENDPOINT"
            )
        elif status == 401 and ctx["step"] == "checking the token":
            error = ServiceError(
                f"{where} rejected the token (401): run `hf auth login` again or pass a valid --token"
            )
        elif status == 401:
            error = ServiceError(
                f"{repo_id}: not authorized while {ctx['step']} (401); run `hf auth login` or pass --token"
            )
        elif status == 403 and namespace not in ctx["mine"] and ctx["step"] == "creating the repo":
            error = ServiceError(
                f"{repo_id}: you cannot create repos in namespace {namespace!r}; use a repo id under "
                f"{sorted(n for n in ctx['mine'] if n)} instead"
            )
        elif status == 403 and namespace not in ctx["mine"]:
            error = ServiceError(
                f"{repo_id}: repo exists and belongs to someone else; push to a repo under your own "
                "namespace or ask its owner for write access"
            )
        elif status == 403:
            error = ServiceError(
                f"{repo_id}: the token has no write access (403 while {ctx['step']}); "
                "create a token with write permission and pass it with --token"
            )
        elif isinstance(cause, RevisionNotFoundError):
            error = ServiceError(f"{repo_id}: revision not found while {ctx['step']}; check --revision")
        elif isinstance(cause, RepositoryNotFoundError):
            error = ServiceError(
                f"{repo_id}: repo not found or not accessible while {ctx['step']}; check the repo id"
            )
        elif status == 412:
            error = ServiceError(f"{repo_id}: the repo changed during the push; run the push again")
        elif status is not None:
            server = getattr(cause, "server_message", None) or ""
            error = ServiceError(
                f"{repo_id}: the Hub answered {status} while {ctx['step']} ({_one_line(server or cause)})"
            )
        else:
            error = ServiceError(
                f"{repo_id}: push failed while {ctx['step']} ({_one_line(cause)}); try again"
            )
        raise type(error)(str(error).replace(token, "<token>")) from None


def _progress(items: list, label: str, enabled: bool):
    from recllmsim_hf.sources.staging import track

    yield from track(items, len(items), label, enabled, describe=lambda item: f"{label}: {item}")


@contextmanager
def _status(text: str, enabled: bool) -> Iterator[None]:
    """A spinner with ``text`` on stderr while a step runs (a terminal only, like every bar here)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield
        return
    with console.status(text):
        yield
