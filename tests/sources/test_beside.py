"""The human studies staged in a child process beside the release: same result, same problems."""

import json
import os
import time

import pytest
from human_fixture import make_full_release

import recllmsim_hf.sources.beside as beside
from recllmsim_hf.dataset.build import build_dataset
from recllmsim_hf.errors import ValidationFailed
from recllmsim_hf.sources.beside import Beside
from recllmsim_hf.sources.staging import stage_source


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_in_a_child_equals_the_build_in_one_process(tmp_path, monkeypatch):
    source = make_full_release(tmp_path / "release")
    children = []
    real_fork = os.fork

    def counting_fork():
        pid = real_fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(beside, "can_fork", lambda: True)
    monkeypatch.setattr(os, "fork", counting_fork)
    build_dataset(source, tmp_path / "forked", progress=False)
    assert len(children) == 1  # the human pass did run in a child
    monkeypatch.setattr(beside, "can_fork", lambda: False)
    build_dataset(source, tmp_path / "serial", progress=False)
    forked, serial = _files(tmp_path / "forked"), _files(tmp_path / "serial")
    assert len(forked) > 10 and forked == serial
    assert not list((tmp_path).rglob("_human.pickle"))


@pytest.mark.parametrize("fork", [True, False])
def test_problems_found_in_the_child_are_reported_in_order(tmp_path, monkeypatch, fork):
    source = make_full_release(tmp_path / "release")
    bad = source / "human_exp_V2/User_0/旅行规划/0.json"
    data = json.loads(bad.read_text(encoding="utf-8"))
    data["history"][0]["intent"] = ["猜测"]
    bad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    (source / "LLM_agent_user/recipe planning/1.json").write_text("{", encoding="utf-8")
    monkeypatch.setattr(beside, "can_fork", lambda: fork)
    with pytest.raises(ValidationFailed) as caught:
        stage_source(source, tmp_path / "staged", progress=False)
    files = [p.file for p in caught.value.problems]
    assert files == ["recipe planning/1.json", "human_exp_V2/User_0/旅行规划/0.json"]
    assert "猜测" in str(caught.value.problems[1].value)
    assert not (tmp_path / "staged").exists()


def test_the_childs_exception_is_raised_in_the_caller(tmp_path):
    def boom():
        raise ValueError("bad value 42")

    with Beside(boom, tmp_path / "r.pickle") as job, pytest.raises(ValueError, match="bad value 42"):
        job.result()
    assert not (tmp_path / "r.pickle").exists()


def test_a_child_that_died_is_redone_in_the_caller(tmp_path):
    parent = os.getpid()

    def work():
        if os.getpid() != parent:
            os._exit(3)  # the child dies without a result
        return "done here"

    with Beside(work, tmp_path / "r.pickle") as job:
        assert job.pid is not None
        assert job.result() == "done here"


def test_close_kills_and_reaps_a_running_child(tmp_path):
    job = Beside(lambda: time.sleep(60), tmp_path / "r.pickle")
    pid = job.pid
    assert pid is not None
    job.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left
    assert job.pid is None and not (tmp_path / "r.pickle").exists()


def test_a_ctrl_c_during_the_fork_ends_the_caller_and_reaps_its_child(tmp_path, monkeypatch):
    import signal

    real_fork, children = os.fork, []

    def fork_then_ctrl_c():
        pid = real_fork()
        if pid:  # the signal arrives before the caller could note its child
            children.append(pid)
            os.kill(os.getpid(), signal.SIGINT)
        return pid

    monkeypatch.setattr(beside, "can_fork", lambda: True)
    monkeypatch.setattr(os, "fork", fork_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        Beside(lambda: time.sleep(30), tmp_path / "r.pickle")
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # killed and reaped, not left sleeping


def test_one_usable_cpu_means_no_child(monkeypatch):
    monkeypatch.delenv("RECLLMSIM_NO_FORK", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert not beside.can_fork()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert beside.can_fork()
    monkeypatch.setenv("RECLLMSIM_NO_FORK", "1")
    assert not beside.can_fork()
