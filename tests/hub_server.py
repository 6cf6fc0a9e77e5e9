"""A small but real Hugging Face Hub-protocol server for tests (stdlib ``http.server``, 127.0.0.1, port 0).

Enough of the Hub for huggingface_hub 2.4 (create_repo, create_branch, create_commit over the LFS
path, list_repo_tree, get_paths_info, repo_info, whoami, hf_hub_download) and datasets 5.2
(``load_dataset("user/repo", config)``)::

    with HubServer(tokens={"hf_me": "me"}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": "hf_me"}
        ...  # run the CLI / load_dataset in a subprocess with env
        assert hub.files("me/recllmsim").keys() == {".gitattributes", "README.md", ...}

Repos live in memory: refs (branch name or ``refs/pr/N``) -> commit oid, each commit holding its whole
tree (path -> :class:`Blob`). LFS objects are uploaded with the basic transfer (one ``PUT``) to
``/_lfs/<sha256>``. Tokens map to users (``tokens``) and optionally a role (``read_only``); a bad token
gets 401 "Invalid credentials in Authorization header" on every route, like the Hub. Another user's repo
is readable when public and refuses writes with 403. A commit naming a ``parentCommit`` that is no
longer the head gets 412. ``requests`` records (method, path) of every request (never a header),
``unhandled`` the requests no route matched; ``before_commit(repo)`` runs when a commit arrives.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml
from hub_store import (
    GITATTRIBUTES,
    LFS_OVER_BYTES,
    Blob,
    Commit,
    HubError,
    Repo,
    apply_operations,
    lfs_patterns,
    rev_or_404,
    tree_entries,
)

__all__ = ["Blob", "HubServer"]


class HubServer:
    """The server; ``tokens``: token -> user name; ``read_only``: tokens without write access."""

    def __init__(self, tokens: dict[str, str] | None = None, read_only: set[str] = frozenset()):
        self.tokens = dict(tokens or {"hf_test_me": "me"})
        self.read_only = set(read_only)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self._ticks = 0
        # called with the repo when a commit request arrives, before it is applied (to race a push)
        self.before_commit = None
        self._lock = threading.RLock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    # -- direct access for tests ------------------------------------------------------------------

    def create_repo(
        self, repo_id: str, owner: str, private: bool = False, repo_type: str = "dataset"
    ) -> Repo:
        with self._lock:
            repo = Repo(repo_id, owner, private)
            self.repos[(repo_type, repo_id)] = repo
            self.commit(repo, "main", "initial commit", {".gitattributes": Blob(GITATTRIBUTES, False)})
            return repo

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        """path -> content of every file of ``repo_id`` at ``revision``."""
        with self._lock:
            commit = self.repos[(repo_type, repo_id)].resolve(revision)
            return {path: blob.data for path, blob in commit.tree.items()}

    def commit(
        self, repo: Repo, ref: str, title: str, tree: dict[str, Blob], parent: str | None = None
    ) -> str:
        """Record a commit with ``tree`` on ``ref`` (parent: the ref's head unless given)."""
        with self._lock:
            self._ticks += 1
            parent = parent if parent is not None else repo.refs.get(ref)
            digest = hashlib.sha1(f"{repo.repo_id}\0{parent}\0{title}\0{self._ticks}".encode())
            for path in sorted(tree):
                digest.update(f"\0{path}\0{tree[path].oid}".encode())
            oid = digest.hexdigest()
            date = f"2026-01-01T00:{self._ticks // 60 % 60:02d}:{self._ticks % 60:02d}.000Z"
            repo.commits[oid] = Commit(oid, parent, title, date, dict(tree))
            repo.refs[ref] = oid
            return oid

    # -- protocol -----------------------------------------------------------------------------------

    def user_of(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        token = authorization.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.tokens[token]

    def repo(
        self, repo_type: str, repo_id: str, user: str | None, write: bool = False, token: str = ""
    ) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and repo.owner != user):
            raise HubError(404, "Repository not found", "RepoNotFound")
        if write and (repo.owner != user or token in self.read_only):
            raise HubError(403, f"You don't have write access to {repo_type} {repo_id}")
        return repo


def _handler(hub: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        # -- plumbing --------------------------------------------------------------------------

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, str(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def _json(self, data, status: int = 200, headers: dict | None = None) -> None:
            body = json.dumps(data).encode()
            self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

        def _serve(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
            query = urllib.parse.parse_qs(url.query)
            body = self._body() if method in ("POST", "PUT") else b""
            with hub._lock:
                hub.requests.append((method, url.path))
            try:
                user = hub.user_of(self.headers.get("Authorization"))
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                if not self._route(method, parts, query, body, user, token):
                    with hub._lock:
                        hub.unhandled.append((method, url.path))
                    raise HubError(404, f"no route for {method} {url.path}")
            except HubError as e:
                headers = {"X-Error-Message": e.message}
                if e.code:
                    headers["X-Error-Code"] = e.code
                self._json({"error": e.message}, e.status, headers)

        # -- routes -----------------------------------------------------------------------------

        def _route(self, method, parts, query, body, user, token) -> bool:
            if parts[:2] == ["api", "whoami-v2"] and method == "GET":
                if user is None:
                    raise HubError(401, "Invalid credentials in Authorization header")
                role = "read" if token in hub.read_only else "write"
                self._json(
                    {
                        "type": "user",
                        "name": user,
                        "fullname": user,
                        "orgs": [],
                        "auth": {
                            "type": "access_token",
                            "accessToken": {"displayName": "test", "role": role},
                        },
                    }
                )
                return True
            # huggingface_hub's user-agent registry
            if parts[:2] == ["api", "agent-harnesses"] and method == "GET":
                self._json({"standardEnvVars": [], "harnesses": {}})
                return True
            if parts[:3] == ["api", "repos", "create"] and method == "POST":
                self._create_repo(json.loads(body or b"{}"), user, token)
                return True
            if parts[:2] == ["api", "validate-yaml"] and method == "POST":
                self._validate_yaml(json.loads(body or b"{}"))
                return True
            if len(parts) >= 4 and parts[0] == "api" and parts[1] in ("datasets", "models", "spaces"):
                return self._repo_api(
                    method, parts[1][:-1], f"{parts[2]}/{parts[3]}", parts[4:], query, body, user, token
                )
            if len(parts) >= 4 and parts[0] == "datasets" and parts[2].endswith(".git") and method == "POST":
                repo_id = f"{parts[1]}/{parts[2][: -len('.git')]}"
                if parts[3:] == ["info", "lfs", "objects", "batch"]:
                    self._lfs_batch(
                        hub.repo("dataset", repo_id, user, write=True, token=token), json.loads(body)
                    )
                    return True
            if parts[0] == "_lfs" and method == "PUT" and len(parts) == 2:
                if hashlib.sha256(body).hexdigest() != parts[1]:
                    raise HubError(400, "uploaded content does not match its sha256")
                with hub._lock:
                    hub.lfs[parts[1]] = body
                self._send(200)
                return True
            if (
                len(parts) >= 6
                and parts[0] == "datasets"
                and parts[3] == "resolve"
                and method in ("GET", "HEAD")
            ):
                repo = hub.repo("dataset", f"{parts[1]}/{parts[2]}", user)
                self._resolve(repo, parts[4], "/".join(parts[5:]))
                return True
            return False

        def _create_repo(self, payload: dict, user: str | None, token: str) -> None:
            if user is None:
                raise HubError(401, "You must be authenticated to create a repo")
            namespace = payload.get("organization") or user
            repo_type = payload.get("type") or "model"
            repo_id = f"{namespace}/{payload['name']}"
            if namespace != user or token in hub.read_only:
                raise HubError(
                    403,
                    f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"',
                )
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            url = f"{hub.url}/{prefix}{repo_id}"
            with hub._lock:
                if (
                    repo_type,
                    repo_id,
                ) in hub.repos:  # the Hub's 409 carries the url (create_repo exist_ok reads it)
                    self._json({"error": "You already created this repo", "url": url}, 409)
                    return
                private = payload.get("private") or payload.get("visibility") == "private"
                hub.create_repo(repo_id, user, bool(private), repo_type)
            self._json({"url": url, "name": repo_id, "id": repo_id})

        def _validate_yaml(self, payload: dict) -> None:
            content = payload.get("content", "")
            head = content.split("\n---", 1)[0].removeprefix("---\n") if content.startswith("---") else ""
            try:
                data = yaml.safe_load(head)
                if head and not isinstance(data, dict):
                    raise yaml.YAMLError("metadata is not a mapping")
            except yaml.YAMLError as e:
                self._json({"errors": [{"message": f"invalid YAML: {e}"}], "warnings": []}, 400)
                return
            self._json({"errors": [], "warnings": []})

        def _repo_api(self, method, repo_type, repo_id, rest, query, body, user, token) -> bool:
            if method == "GET" and (not rest or rest[0] == "revision"):
                repo = hub.repo(repo_type, repo_id, user)
                commit = rev_or_404(repo, "/".join(rest[1:]) if rest else "main")
                self._json(self._repo_info(repo, commit))
                return True
            if method == "GET" and rest and rest[0] == "tree" and len(rest) >= 2:
                repo = hub.repo(repo_type, repo_id, user)
                recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
                self._json(tree_entries(rev_or_404(repo, rest[1]), "/".join(rest[2:]).strip("/"), recursive))
                return True
            if method == "POST" and rest and rest[0] == "paths-info" and len(rest) == 2:
                commit = rev_or_404(hub.repo(repo_type, repo_id, user), rest[1])
                form = urllib.parse.parse_qs(body.decode())
                paths = form.get("paths", []) or json.loads(body or b"{}").get("paths", [])
                self._json([info for p in paths for info in tree_entries(commit, p, False, itself=True)])
                return True
            if method == "POST" and rest and rest[0] == "preupload" and len(rest) == 2:
                repo = hub.repo(repo_type, repo_id, user, write=True, token=token)
                self._preupload(repo, rev_or_404(repo, rest[1]), json.loads(body))
                return True
            if method == "POST" and rest and rest[0] == "commit" and len(rest) == 2:
                repo = hub.repo(repo_type, repo_id, user, write=True, token=token)
                self._commit(repo, rest[1], body, query.get("create_pr", ["0"])[0] == "1")
                return True
            if method == "POST" and rest and rest[0] == "branch" and len(rest) == 2:
                repo = hub.repo(repo_type, repo_id, user, write=True, token=token)
                start = json.loads(body or b"{}").get("startingPoint") or "main"
                with hub._lock:
                    if rest[1] in repo.refs:
                        raise HubError(409, "Reference already exists")
                    repo.refs[rest[1]] = rev_or_404(repo, start).oid
                self._json({})
                return True
            return False

        def _repo_info(self, repo: Repo, commit: Commit) -> dict:
            card = commit.tree.get("README.md")
            card_data = None
            if card is not None and card.data.startswith(b"---"):
                card_data = yaml.safe_load(card.data.decode().split("\n---", 1)[0].removeprefix("---\n"))
            return {
                "id": repo.repo_id,
                "author": repo.owner,
                "sha": commit.oid,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "createdAt": repo.commits[repo.refs["main"]].date if "main" in repo.refs else commit.date,
                "lastModified": commit.date,
                "cardData": card_data,
                "siblings": [{"rfilename": path} for path in sorted(commit.tree)],
            }

        def _preupload(self, repo: Repo, commit: Commit, payload: dict) -> None:
            patterns = lfs_patterns(commit.tree)
            files = []
            for f in payload["files"]:
                lfs = f["size"] > LFS_OVER_BYTES or any(
                    fnmatch.fnmatch(f["path"].rsplit("/")[-1], p) for p in patterns
                )
                old = commit.tree.get(f["path"])
                oid = None if old is None else (old.sha256 if old.lfs else old.oid)
                files.append(
                    {
                        "path": f["path"],
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False,
                        "oid": oid,
                    }
                )
            self._json({"files": files, "commitOid": commit.oid})

        def _lfs_batch(self, repo: Repo, payload: dict) -> None:
            objects = []
            for obj in payload["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.lfs:
                    entry["actions"] = {"upload": {"href": f"{hub.url}/_lfs/{obj['oid']}", "header": {}}}
                objects.append(entry)
            body = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode()
            self._send(200, body, {"Content-Type": "application/vnd.git-lfs+json"})

        def _commit(self, repo: Repo, rev: str, body: bytes, create_pr: bool) -> None:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next((x["value"] for x in lines if x["key"] == "header"), {})
            if hub.before_commit is not None:
                hub.before_commit(repo)
            with hub._lock:
                if rev not in repo.refs or (rev.startswith("refs/pr/") and create_pr):
                    raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
                base, parent = repo.resolve(rev), header.get("parentCommit")
                if parent and create_pr:  # a pull request starts from the parent commit
                    base = next((c for oid, c in repo.commits.items() if oid.startswith(parent)), None)
                    if base is None:
                        raise HubError(404, f"Invalid rev id: {parent}", "RevisionNotFound")
                elif parent and not base.oid.startswith(parent):
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
                tree = apply_operations(base.tree, lines, hub.lfs)
                pr_url = None
                if create_pr:
                    repo.prs += 1
                    ref = f"refs/pr/{repo.prs}"
                    oid = hub.commit(repo, ref, header.get("summary", ""), tree, parent=base.oid)
                    pr_url = f"{hub.url}/datasets/{repo.repo_id}/discussions/{repo.prs}"
                else:
                    oid = hub.commit(repo, rev, header.get("summary", ""), tree)
            self._json(
                {
                    "success": True,
                    "commitOid": oid,
                    "commitUrl": f"{hub.url}/datasets/{repo.repo_id}/commit/{oid}",
                    "pullRequestUrl": pr_url,
                }
            )

        def _resolve(self, repo: Repo, rev: str, path: str) -> None:
            commit = rev_or_404(repo, rev)
            blob = commit.tree.get(path)
            if blob is None:
                raise HubError(404, "Entry not found", "EntryNotFound")
            headers = {
                "X-Repo-Commit": commit.oid,
                "ETag": f'"{blob.etag}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            if blob.lfs:
                headers.update({"X-Linked-Etag": f'"{blob.etag}"', "X-Linked-Size": len(blob.data)})
            data, status = blob.data, 200
            spec = self.headers.get("Range", "")
            if spec.startswith("bytes="):
                start_s, _, end_s = spec[len("bytes=") :].partition("-")
                start = int(start_s) if start_s else max(0, len(data) - int(end_s))
                end = min(int(end_s), len(data) - 1) if start_s and end_s else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                data, status = data[start : end + 1], 206
            self._send(status, data, headers)

    return Handler
