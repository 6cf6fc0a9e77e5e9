"""recllmsim_hf.sources.download: folders, archives and URLs (a local HTTP server) -> release folder."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from http_fixtures import FileServer

from recllmsim_hf.errors import InputError, RecLLMSimError, ServiceError
from recllmsim_hf.sources import download
from recllmsim_hf.sources.download import (
    DEFAULT_RELEASE_URL,
    RELEASE_FILE_COUNT,
    RELEASE_TASK_FOLDERS,
    default_cache_dir,
    resolve_release,
)

SHA = "d680f2f9d5b8caba6174b4deeef854ea4a8f4b20"
TOP = f"RecLLMSim-{SHA}"
TINY = {"travel planning": 3, "new travel planning": 1, "skills learning planning": 2, "recipe planning": 2}
TINY_TOTAL = sum(TINY.values())


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch):
    monkeypatch.setattr(download, "BACKOFF_SECONDS", 0.0)  # the retry schedule itself is not under test
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A made-up repository checkout: LLM_agent_user/<task>/<n>.json plus files to ignore."""
    root = tmp_path / "src" / "RecLLMSim"
    for task, n in TINY.items():
        (root / "LLM_agent_user" / task).mkdir(parents=True)
        for i in range(1, n + 1):
            record = {"task": task, "history": [{"role": "user", "content": f"hello {i}"}]}
            (root / "LLM_agent_user" / task / f"{i}.json").write_text(json.dumps(record))
    (root / "README.md").write_text("# RecLLMSim\n")
    (root / "human_exp" / "x").mkdir(parents=True)
    (root / "human_exp" / "x" / "1.json").write_text("{}")  # json outside LLM_agent_user: ignored
    return root


def zip_bytes(root: Path, top: str = TOP, level: int = 1, pad: int = 0) -> bytes:
    """``root`` zipped under ``top``/ (level 0: the file texts appear as they are), plus ``pad`` bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for path in sorted(root.rglob("*")):
            zf.write(path, f"{top}/{path.relative_to(root)}")
        if pad:
            zf.writestr(f"{top}/pad.bin", bytes(pad))
    return buf.getvalue()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def leftovers(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob(".tmp-*"))


@pytest.fixture(scope="session")
def release_zip(release_dir, tmp_path_factory) -> Path:
    """The real release zipped like GitHub's archive of the pinned commit (top folder + README.md)."""
    path = tmp_path_factory.mktemp("archive") / f"{SHA}.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(f"{TOP}/README.md", "# RecLLMSim\n")
        for p in sorted((release_dir / "LLM_agent_user").rglob("*")):
            zf.write(p, f"{TOP}/{p.relative_to(release_dir)}")
    path.write_bytes(buf.getvalue())
    return path


# -- cache folder --------------------------------------------------------------------------------------


def test_default_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RECLLMSIM_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "recllmsim"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "recllmsim"
    monkeypatch.setenv("RECLLMSIM_CACHE", str(tmp_path / "rc"))
    assert default_cache_dir() == tmp_path / "rc"


# -- folders -------------------------------------------------------------------------------------------


def test_folder_source_at_each_level(repo, tmp_path):
    want = repo / "LLM_agent_user"
    for source in (repo, want, repo.parent, repo.parent.parent, str(repo)):
        assert resolve_release(source, expected_files=TINY_TOTAL, cache_dir=tmp_path / "c") == want
    assert not (tmp_path / "c").exists()  # folders are read in place


def test_real_release_folder(release_dir, tmp_path):
    root = resolve_release(release_dir, cache_dir=tmp_path)
    assert root == release_dir / "LLM_agent_user"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(RELEASE_TASK_FOLDERS)


def test_folder_wrong_count_names_the_counts(repo):
    with pytest.raises(
        InputError, match=r"expected 9 conversation files .* but found 8 \(new travel planning 1"
    ):
        resolve_release(repo, expected_files=9)


def test_task_folder_is_not_a_release(repo):
    with pytest.raises(InputError, match=r"recipe planning: not a RecLLMSim release .*one task folder"):
        resolve_release(repo / "LLM_agent_user" / "recipe planning", expected_files=None)


def test_missing_path_and_bad_scheme(tmp_path):
    with pytest.raises(InputError, match=r"nope\.zip: no such file or folder"):
        resolve_release(tmp_path / "nope.zip")
    with pytest.raises(InputError, match=r"ftp://x/y\.zip: unsupported URL scheme"):
        resolve_release("ftp://x/y.zip")


def test_two_release_folders_are_ambiguous(repo, tmp_path):
    other = tmp_path / "src" / "copy" / "LLM_agent_user" / "recipe planning"
    other.mkdir(parents=True)
    (other / "1.json").write_text("{}")
    with pytest.raises(InputError, match=r"holds several LLM_agent_user/ folders"):
        resolve_release(tmp_path / "src", expected_files=None)


# -- archive files -------------------------------------------------------------------------------------


def test_zip_file_extracts_only_release_files_and_is_reused(repo, tmp_path):
    archive = tmp_path / "repo.zip"
    archive.write_bytes(zip_bytes(repo))
    cache = tmp_path / "cache"
    root = resolve_release(archive, cache_dir=cache, expected_files=TINY_TOTAL)
    assert root.parent == cache / "extracted" and len(root.name) == 64
    assert tree(root) == tree(repo / "LLM_agent_user")
    assert not (root / "README.md").exists() and not (root / "human_exp").exists()
    stamp = root.stat().st_ino
    assert resolve_release(archive, cache_dir=cache, expected_files=TINY_TOTAL) == root
    assert root.stat().st_ino == stamp and leftovers(cache) == []


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz"])
def test_tar_gz_file(repo, tmp_path, suffix):
    archive = tmp_path / f"repo{suffix}"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(repo, arcname=TOP)
    root = resolve_release(archive, cache_dir=tmp_path / "cache", expected_files=None)
    assert tree(root) == tree(repo / "LLM_agent_user")


def test_corrupt_zip_names_the_file_and_leaves_nothing(repo, tmp_path):
    data = bytearray(zip_bytes(repo, level=0))
    archive = tmp_path / "broken.zip"
    archive.write_bytes(bytes(data[: len(data) // 2]))  # no central directory
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=r"broken\.zip: corrupt zip archive \(File is not a zip file\)"):
        resolve_release(archive, cache_dir=cache, expected_files=None)
    i = data.index(b"hello 2")  # stored, so the text is in the bytes: flip it -> CRC mismatch
    data[i] ^= 1
    archive.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"broken\.zip: corrupt zip archive \(Bad CRC-32"):
        resolve_release(archive, cache_dir=cache, expected_files=None)
    assert list((cache / "extracted").iterdir()) == []


def test_not_an_archive(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt: not a \.zip/\.tar\.gz archive nor a folder"):
        resolve_release(tmp_path / "notes.txt", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("name", ["../LLM_agent_user/t/1.json", "/abs/LLM_agent_user/t/1.json"])
def test_unsafe_member_rejected(tmp_path, name):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok/LLM_agent_user/t/2.json", "{}")
        zf.writestr(name, "{}")
    with pytest.raises(InputError, match=r"evil\.zip: member .* has an unsafe path"):
        resolve_release(archive, cache_dir=tmp_path / "cache", expected_files=None)
    assert list((tmp_path / "cache" / "extracted").iterdir()) == []
    assert not (tmp_path / "LLM_agent_user").exists()


def test_tar_links_are_not_followed(tmp_path, repo):
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(repo / "LLM_agent_user" / "recipe planning" / "1.json", f"{TOP}/LLM_agent_user/r/1.json")
        link = tarfile.TarInfo(f"{TOP}/LLM_agent_user/r/2.json")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    root = resolve_release(archive, cache_dir=tmp_path / "cache", expected_files=None)
    assert sorted(tree(root)) == ["r/1.json"]


def test_archive_without_release_files(tmp_path):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("proj/README.md", "hi")
        zf.writestr("proj/data/1.json", "{}")
    with pytest.raises(InputError, match=r"other\.zip: holds no LLM_agent_user/<task>/<n>\.json files"):
        resolve_release(archive, cache_dir=tmp_path / "cache")


def test_wrong_count_in_archive_drops_the_extraction(repo, tmp_path):
    archive = tmp_path / "repo.zip"
    archive.write_bytes(zip_bytes(repo))
    with pytest.raises(InputError, match=r"repo\.zip: expected 1,856 conversation files .* found 8"):
        resolve_release(archive, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "extracted").iterdir()) == [] and archive.is_file()


def test_default_url_needs_every_task_folder(repo):
    # The default URL cannot be served here (https, pinned host), so its extra check is tested directly.
    with pytest.raises(InputError, match=r"in the task folders 'travel planning', .*'preparing gifts'"):
        download._verify(repo / "LLM_agent_user", "x", None, all_tasks=True, hint="h")
    assert DEFAULT_RELEASE_URL.endswith(f"/archive/{SHA}.zip") and RELEASE_FILE_COUNT == 1856


# -- URLs ----------------------------------------------------------------------------------------------


def test_real_release_from_url_downloaded_once(release_zip, release_dir, tmp_path):
    cache = tmp_path / "cache"
    with FileServer({f"/archive/{SHA}.zip": release_zip.read_bytes()}) as srv:
        url = srv.url(f"/archive/{SHA}.zip")
        root = resolve_release(url, cache_dir=cache, expected_files=1856, progress=False)
        assert srv.count == 1 and srv.requests[0][1].startswith("recllmsim/")
        assert sum(1 for _ in root.glob("*/*.json")) == 1856
        for task in RELEASE_TASK_FOLDERS:
            assert len(list((root / task).glob("*.json"))) == len(
                list((release_dir / "LLM_agent_user" / task).glob("*.json"))
            )
        sample = release_dir / "LLM_agent_user" / "recipe planning" / "1.json"
        assert (root / "recipe planning" / "1.json").read_bytes() == sample.read_bytes()
        assert resolve_release(url, cache_dir=cache, expected_files=1856, progress=False) == root
        assert srv.count == 1  # second call: zero requests
    (download_file,) = (cache / "downloads").iterdir()
    assert (
        download_file.name.endswith(f"-{SHA}.zip") and download_file.read_bytes() == release_zip.read_bytes()
    )


def test_retries_500_then_truncated_body(release_zip, tmp_path):
    cache = tmp_path / "cache"
    data = release_zip.read_bytes()
    with FileServer({"/r.zip": data}, faults=["500", "truncate"]) as srv:
        root = resolve_release(srv.url("/r.zip"), cache_dir=cache, expected_files=1856, progress=False)
        assert srv.count == 3
    assert sum(1 for _ in root.glob("*/*.json")) == 1856
    assert [p.read_bytes() == data for p in (cache / "downloads").iterdir()] == [True]
    assert leftovers(cache) == []


@pytest.mark.parametrize("faults", [["drop", "503"], ["chunked_cut"], ["no_length"]])
def test_retries_other_transient_failures(repo, tmp_path, faults, capfd):
    with FileServer({"/r.zip": zip_bytes(repo)}, faults=faults) as srv:
        root = resolve_release(
            srv.url("/r.zip"), cache_dir=tmp_path, expected_files=TINY_TOTAL, progress=True
        )
        assert srv.count == len(faults) + (faults != ["no_length"])
    assert tree(root) == tree(repo / "LLM_agent_user") and leftovers(tmp_path) == []
    out, err = capfd.readouterr()
    assert out == "" and "downloading r.zip" in err


def test_always_failing_server_raises_one_line_and_caches_nothing(repo, tmp_path):
    with FileServer({"/r.zip": zip_bytes(repo)}, always="500") as srv:
        with pytest.raises(ServiceError) as err:
            resolve_release(srv.url("/r.zip?token=s3cret"), cache_dir=tmp_path / "cache", progress=True)
        assert srv.count == download.MAX_TRIES == 5
    msg = str(err.value)
    assert "\n" not in msg and "s3cret" not in msg
    assert msg.startswith(f"{srv.url('/r.zip')}?…: download failed after 5 tries (last error: HTTP 500 ")
    assert msg.endswith("check your connection or pass --source PATH")
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_client_error_is_not_retried(tmp_path):
    with FileServer({}) as srv:
        with pytest.raises(ServiceError, match=r"/missing\.zip: download refused \(HTTP 404 "):
            resolve_release(srv.url("/missing.zip"), cache_dir=tmp_path, progress=False)
        assert srv.count == 1


def test_wrong_count_from_url_leaves_no_cache_entry(repo, tmp_path):
    cache = tmp_path / "cache"
    with FileServer({"/r.zip": zip_bytes(repo)}) as srv:
        with pytest.raises(InputError, match=r"/r\.zip: expected 9 conversation files .* found 8 .*removed"):
            resolve_release(srv.url("/r.zip"), cache_dir=cache, expected_files=9, progress=False)
        assert [p for p in cache.rglob("*") if p.is_file()] == []
        resolve_release(srv.url("/r.zip"), cache_dir=cache, expected_files=8, progress=False)
        assert srv.count == 2  # nothing was kept from the bad run


def test_served_garbage_is_input_error_and_not_kept(tmp_path):
    with FileServer({"/r.zip": b"<html>rate limited</html>"}) as srv:
        with pytest.raises(InputError, match=r"/r\.zip: corrupt zip archive"):
            resolve_release(srv.url("/r.zip"), cache_dir=tmp_path, progress=False)
    assert list((tmp_path / "downloads").iterdir()) == []


def test_damaged_cached_download_is_fetched_again(repo, tmp_path):
    with FileServer({"/r.zip": zip_bytes(repo)}) as srv:
        url = srv.url("/r.zip")
        root = resolve_release(url, cache_dir=tmp_path, expected_files=None, progress=False)
        (cached,) = (tmp_path / "downloads").iterdir()
        cached.write_bytes(b"PK damaged")
        for p in root.glob("*/*.json"):
            p.unlink()
        for p in root.iterdir():
            p.rmdir()
        root.rmdir()
        assert resolve_release(url, cache_dir=tmp_path, expected_files=None, progress=False) == root
        assert srv.count == 2 and tree(root) == tree(repo / "LLM_agent_user")


def test_proxy_from_environment_is_used(repo, tmp_path, monkeypatch):
    with FileServer({"/r.zip": zip_bytes(repo)}) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url(""))
        root = resolve_release(
            "http://release.invalid/r.zip", cache_dir=tmp_path, expected_files=None, progress=False
        )
        assert [path for path, _ in proxy.requests] == ["/r.zip"] and tree(root)


def test_killed_download_leaves_only_a_temp_file_cleaned_next_time(repo, tmp_path):
    cache = tmp_path / "cache"
    data = zip_bytes(repo, level=0, pad=4 << 20)  # big enough to be caught mid-body
    code = (
        "import sys; from recllmsim_hf.sources.download import resolve_release as r; "
        "r(sys.argv[1], cache_dir=sys.argv[2])"
    )
    with FileServer({"/r.zip": data}, faults=["stall"]) as srv:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, srv.url("/r.zip"), str(cache)], stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while (
            not any(p.stat().st_size for p in cache.glob("downloads/.tmp-*")) and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        (temp,) = (cache / "downloads").iterdir()
        assert temp.name.startswith(f".tmp-{proc.pid}-") and 0 < temp.stat().st_size < len(data)
        live = cache / "downloads" / f".tmp-{os.getpid()}-mine.part"  # a live process's: kept
        live.write_bytes(b"x")
        (cache / "extracted" / f".tmp-{proc.pid}-half").mkdir(parents=True)  # a dead one's: removed
        (cache / "extracted" / f".tmp-{proc.pid}-half" / "1.json").write_text("{")
        root = resolve_release(srv.url("/r.zip"), cache_dir=cache, expected_files=TINY_TOTAL, progress=False)
    assert tree(root) == tree(repo / "LLM_agent_user")
    assert leftovers(cache) == ["downloads/" + live.name]


def test_cache_folder_not_writable(repo, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    archive = tmp_path / "repo.zip"
    archive.write_bytes(zip_bytes(repo))
    with pytest.raises(RecLLMSimError, match=r"file/extracted: cannot write the cache .*RECLLMSIM_CACHE"):
        resolve_release(archive, cache_dir=blocker, expected_files=None)


@pytest.fixture
def no_dns(monkeypatch):
    """The operating system's resolver as on a machine without a network: every lookup of a name
    that is not an address fails the way glibc does (the HTTP client above it is the real one)."""
    import socket

    real, lookups = socket.getaddrinfo, []

    def resolve(host, *args, **kwargs):
        lookups.append(host)
        if host not in ("127.0.0.1", "localhost"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return lookups


def test_dns_failure_fails_at_once_with_the_offline_advice(no_dns, tmp_path):
    with pytest.raises(ServiceError) as err:
        resolve_release(None, cache_dir=tmp_path / "cache", progress=False)
    assert no_dns == ["github.com"]  # one lookup: no retries, no 15 s of backoff
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{DEFAULT_RELEASE_URL}: cannot resolve github.com (Name or service not known): ")
    assert "https://github.com/wzf2000/RecLLMSim" in msg and "`recllmsim build --source PATH`" in msg
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_dns_failure_of_another_url(no_dns, tmp_path):
    pattern = (
        r"cannot resolve mirror\.example \(Name or service not known\): .* "
        r"check the host name, or download the file elsewhere and pass --source PATH$"
    )
    with pytest.raises(ServiceError, match=pattern):
        resolve_release("https://mirror.example/r.zip", cache_dir=tmp_path, progress=False)
    assert no_dns == ["mirror.example"]
