"""The data of the test Hub (tests/hub_server.py): blobs, commits, repos, and the pure protocol steps.

A commit holds its whole tree (path -> :class:`Blob`); an LFS blob is listed with the git id of its
pointer file and its sha256, like the Hub does.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

GITATTRIBUTES = (
    b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.arrow filter=lfs diff=lfs merge=lfs -text\n"
)
LFS_OVER_BYTES = 10 * 1024 * 1024


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        spec = "version https://git-lfs.github.com/spec/v1"
        return f"{spec}\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def oid(self) -> str:
        """The git blob id (of the pointer file for an LFS file)."""
        return git_oid(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid

    def info(self, path: str) -> dict:
        out = {"type": "file", "path": path, "size": len(self.data), "oid": self.oid}
        if self.lfs:
            out["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(self.pointer)}
        return out


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    date: str
    tree: dict[str, Blob]


@dataclass
class Repo:
    repo_id: str
    owner: str
    private: bool
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    prs: int = 0

    def resolve(self, rev: str) -> Commit | None:
        oid = self.refs.get(rev, rev)
        return self.commits.get(oid)


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def rev_or_404(repo: Repo, rev: str) -> Commit:
    commit = repo.resolve(rev)
    if commit is None:
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
    return commit


def lfs_patterns(tree: dict[str, Blob]) -> list[str]:
    text = tree.get(".gitattributes", Blob(b"", False)).data.decode()
    return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line]


def tree_entries(commit: Commit, path: str, recursive: bool, itself: bool = False) -> list[dict]:
    if itself and path in commit.tree:
        return [commit.tree[path].info(path)]
    prefix = f"{path}/" if path else ""
    below = sorted(p for p in commit.tree if p.startswith(prefix))
    if not below:
        if itself:
            return []
        raise HubError(404, f"{path} does not exist", "EntryNotFound")
    if itself:
        return [{"type": "directory", "path": path, "oid": git_oid(path.encode()), "size": 0}]
    out, folders = [], set()
    for p in below:
        rest = p[len(prefix) :].split("/")
        for depth in range(1, len(rest)):
            folders.add(prefix + "/".join(rest[:depth]))
            if not recursive:
                break
        if recursive or len(rest) == 1:
            out.append(commit.tree[p].info(p))
    out += [{"type": "directory", "path": f, "oid": git_oid(f.encode()), "size": 0} for f in folders]
    return sorted(out, key=lambda e: e["path"])


def apply_operations(base: dict[str, Blob], lines: list[dict], lfs: dict[str, bytes]) -> dict[str, Blob]:
    """The tree after a commit's ndjson operations (file, lfsFile, deletedFile, deletedFolder)."""
    tree = dict(base)
    for item in lines:
        value = item["value"]
        if item["key"] == "file":
            tree[value["path"]] = Blob(base64.b64decode(value["content"]), False)
        elif item["key"] == "lfsFile":
            if value["oid"] not in lfs:
                raise HubError(400, f"LFS object {value['oid']} of {value['path']} was not uploaded")
            tree[value["path"]] = Blob(lfs[value["oid"]], True)
        elif item["key"] == "deletedFile":
            if tree.pop(value["path"], None) is None:
                raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
        elif item["key"] == "deletedFolder":
            prefix = value["path"].rstrip("/") + "/"
            for p in [p for p in tree if p.startswith(prefix)]:
                del tree[p]
    return tree
