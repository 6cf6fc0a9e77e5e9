"""Hostile-input sweep: every command against bad folders, files, flags, sizes and OS failures.

Each case runs the real ``recllmsim`` console script in a child process (some unprivileged: root
without the capabilities that bypass file modes; some on a small tmpfs filled to the last byte),
then is judged:

- ``clean``: non-zero exit, no traceback, the last line on stderr is the one error line
  (``recllmsim: error: ...``; for ``validate`` its problem count), the message holds what the
  case expects (the bad value, the real cause) and no secret;
- ``ok``: a case that must succeed did (exit 0, no traceback);
- ``traceback``, ``wrong success`` (exit 0 where an error was due, or a wrong message),
  ``hung`` (no end within the case's time), ``lost`` (a file the project did not write
  changed or vanished: every case's inputs are hashed before and after).

Prints a table and the summary line; exits 1 unless there were 0 tracebacks, 0 wrong
successes, 0 hangs and 0 files lost. Needs root for the tmpfs and permission cases (CI runs as root).

    .venv/bin/python benchmarks/hostile_sweep.py            # all cases, 2 at a time
    .venv/bin/python benchmarks/hostile_sweep.py -k build   # cases whose name holds "build"
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_cases import RECLLMSIM, SECRET, Case, cases, child_env, make_fixtures  # noqa: E402


def snapshot(paths: list[Path]) -> dict[str, str]:
    out = {}
    for root in paths:
        if root.is_symlink() or root.is_file():
            out[str(root)] = _digest(root)
            continue
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                p = Path(dirpath, name)
                out[str(p)] = _digest(p)
    return out


def _digest(p: Path) -> str:
    if p.is_symlink():
        return "link:" + os.readlink(p)
    try:
        with open(p, "rb") as f:
            return hashlib.sha256(f.read(1 << 22)).hexdigest()
    except OSError as e:  # unreadable on purpose (a permission case): its mode is what we keep
        return f"unreadable:{e.errno}:{oct(p.stat().st_mode)}"


# -- running --------------------------------------------------------------------------------------


# A permission case runs the child as root without the two capabilities that bypass file
# permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): file modes then bind it as they bind any
# user, while it can still enter the checkout and its venv wherever CI cloned them (a folder only
# root may enter would shut a `nobody` child out before it ran a line).
_NO_DAC = "-dac_override,-dac_read_search"
AS_NOBODY = ["setpriv", f"--bounding-set={_NO_DAC}", f"--inh-caps={_NO_DAC}"]


def _open_up(d: Path) -> None:
    for dirpath, dirnames, _ in os.walk(d):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p) and os.stat(p).st_mode & 0o777 == 0o755:
                os.chmod(p, 0o777)
    os.chmod(d, 0o777)


def run_case(case: Case, base: Path, fixtures: dict, index: int) -> dict:
    d = base / f"case{index:03d}"
    d.mkdir()
    fmt = {**fixtures, "URL": fixtures["URL"]}
    try:
        if case.setup is not None:
            case.setup(d, fixtures)
        if case.nobody:
            _open_up(d)
        protected = [d / p for p in case.protect] + [Path(fixtures[k]) for k in ("REL", "CORPUS", "BUILD")]
        before = snapshot(protected)
        argv = (AS_NOBODY if case.nobody else []) + [RECLLMSIM] + [a.format(**fmt) for a in case.argv]
        env = child_env(d)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, cwd=d, env=env, capture_output=True, text=True, timeout=case.timeout)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = None, e.stdout or "", e.stderr or ""
            out, err = (x.decode() if isinstance(x, bytes) else x for x in (out, err))
        elapsed = time.perf_counter() - t0
        after = snapshot(protected)
        lost = sorted(k for k in before if after.get(k) != before[k])
        present = [p for p in case.absent if (d / p).exists() or (d / p).is_symlink()]
        verdict, why = judge(case, rc, out, err, lost, present)
        return {"case": case.name, "verdict": verdict, "why": why, "rc": rc, "s": round(elapsed, 2)}
    finally:
        for mnt in (d / "small",):
            if mnt.is_mount():
                subprocess.run(["umount", "-l", str(mnt)], check=False)


def judge(case: Case, rc, out: str, err: str, lost: list, present: list) -> tuple[str, str]:
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if rc is None:
        return "hung", f"no end within {case.timeout:g} s"
    if "Traceback (most recent call last)" in out + err:
        tail = [x for x in err.splitlines() if x.strip()][-1:] or [""]
        return "traceback", tail[0][:150]
    if lost:
        return "lost", f"changed: {lost[0]}"
    if SECRET in out + err:
        return "wrong success", "a secret was printed"
    if present:
        return "wrong success", f"left behind: {present[0]}"
    if case.expect == "ok":
        return (
            ("ok", out.splitlines()[0][:150] if out.strip() else "") if rc == 0 else ("wrong success", last)
        )
    if rc == 0:
        return "wrong success", "exit 0: " + (out.strip().splitlines() or [""])[-1][:120]
    one_line = last.startswith("recllmsim: error: ") or re.match(r"\d+ problem\(s\) in ", last)
    errors = [x for x in lines if x.startswith("recllmsim: error: ")]
    if not one_line or len(errors) > 1:
        return "wrong success", f"not one error line: {last[:120]!r}"
    message = (out + "\n" + last) if case.argv[0] == "validate" else last
    missing = [c for c in case.contains if c.lower() not in message.lower()]
    if missing:
        return "wrong success", f"message lacks {missing[0]!r}: {last[:150]}"
    return "clean", last[:150]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-k", default="", help="Run only cases whose name holds this text.")
    p.add_argument("-j", type=int, default=2, help="Cases run at the same time.")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("hostile_sweep: must run as root (tmpfs mounts and permission cases)", file=sys.stderr)
        return 2
    from fake_openai import FakeOpenAI

    chosen = [c for c in cases() if args.k in c.name]
    base = Path(tempfile.mkdtemp(prefix="recllmsim-sweep-"))
    os.chmod(base, 0o755)
    try:
        with FakeOpenAI() as server:
            fixtures = make_fixtures(base / "fixtures")
            fixtures["URL"] = server.base_url
            with ThreadPoolExecutor(args.j) as pool:
                results = list(pool.map(lambda ic: run_case(ic[1], base, fixtures, ic[0]), enumerate(chosen)))
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)
    if not results:
        print(f"hostile_sweep: no case matches -k {args.k!r}", file=sys.stderr)
        return 2
    width = max(len(r["case"]) for r in results)
    print(f"{'case':<{width}}  {'verdict':<13} {'rc':>4} {'s':>6}  message")
    for r in results:
        print(f"{r['case']:<{width}}  {r['verdict']:<13} {r['rc']!s:>4} {r['s']:>6.2f}  {r['why']}")
    count = {v: sum(r["verdict"] == v for r in results) for v in ("clean", "ok", "traceback", "wrong success",
                                                                  "hung", "lost")}  # fmt: skip
    print(
        f"tried {len(results)} / clean one-line error {count['clean']} / expected success {count['ok']} / "
        f"traceback {count['traceback']} / wrong success {count['wrong success']} / hung {count['hung']} / "
        f"user files lost {count['lost']}"
    )
    return 0 if count["clean"] + count["ok"] == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
