"""Which names in the human-study folders are conversation files: everything else is a problem."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from human_fixture import make_full_release
from release_fixture import make_release

from recllmsim_hf.errors import InputError, ValidationFailed
from recllmsim_hf.sources.human_listing import human_files
from recllmsim_hf.sources.staging import check_pinned_human, stage_source, validate_source

R0 = "real_human_user/User_0/旅行规划"
V0 = "human_exp_V2/User_0"
TASKS = "['旅行规划', '技能学习规划', '菜谱规划', '礼物准备']"
NOT_A_FILE_NAME = "<listing>: not a conversation file name: must be <n>.json (e.g. 12.json)"


def _copy(root: Path) -> None:
    shutil.copy(root / R0 / "3.json", root / R0 / "3 (copy).json")


def _rename(old: str, new: str):
    return lambda root: (root / old).rename(root / new)


def _write(rel: str, text: str = "{}"):
    return lambda root: (root / rel).write_text(text, encoding="utf-8")


def _mkdir(rel: str):
    return lambda root: (root / rel).mkdir()


def _link(rel: str, target: str):
    return lambda root: os.symlink(target, root / rel)


def _study_is_a_file(root: Path) -> None:
    shutil.rmtree(root / "human_exp_V2")
    (root / "human_exp_V2").write_text("not a folder\n", encoding="utf-8")


# (change, the problems it makes, human conversations still read of the fixture's 7)
CASES = {
    "copy of a file": (_copy, [f"{R0}/3 (copy).json: {NOT_A_FILE_NAME}, but got '3 (copy).json'"], 7),
    "leading zero": (
        _rename(f"{R0}/3.json", f"{R0}/03.json"),
        [f"{R0}/03.json: {NOT_A_FILE_NAME}, but got '03.json'"],
        6,
    ),
    "not json": (_write(f"{R0}/notes.txt"), [f"{R0}/notes.txt: {NOT_A_FILE_NAME}, but got 'notes.txt'"], 7),
    "folder named like a file": (
        _mkdir(f"{R0}/4.json"),
        [f"{R0}/4.json: <listing>: a folder where a conversation file belongs, but got '4.json'"],
        7,
    ),
    "broken link": (
        _link(f"{R0}/5.json", "missing.json"),
        [
            f"{R0}/5.json: <listing>: a broken or looping symbolic link where a conversation file belongs, "
            "but got '5.json'"
        ],
        7,
    ),
    "looping link": (
        _link(f"{R0}/6.json", "6.json"),
        [
            f"{R0}/6.json: <listing>: a broken or looping symbolic link where a conversation file belongs, "
            "but got '6.json'"
        ],
        7,
    ),
    "pipe": (  # read, it would block the build for ever
        lambda root: os.mkfifo(root / f"{R0}/8.json"),
        [
            f"{R0}/8.json: <listing>: a pipe, socket or device where a conversation file belongs, "
            "but got '8.json'"
        ],
        7,
    ),
    "user folder not User_<k>": (
        _rename("human_exp_V2/User_1", "human_exp_V2/Bob"),
        [
            "human_exp_V2/Bob/: <listing>: not a user folder name: must be User_<k> (e.g. User_3), "
            "but got 'Bob'"
        ],
        5,
    ),
    "user number with a leading zero": (
        _rename("real_human_user/User_1", "real_human_user/User_01"),
        [
            "real_human_user/User_01/: <listing>: not a user folder name: must be User_<k> (e.g. User_3), "
            "but got 'User_01'"
        ],
        6,
    ),
    "file in the study folder": (
        _write("human_exp_V2/notes.txt"),
        ["human_exp_V2/notes.txt: <listing>: a file where only User_<k> folders belong, but got 'notes.txt'"],
        7,
    ),
    "file named like a user": (
        _write("real_human_user/User_7"),
        ["real_human_user/User_7: <listing>: a file where only User_<k> folders belong, but got 'User_7'"],
        7,
    ),
    "file in a user folder": (
        _write(f"{V0}/0.json"),
        [f"{V0}/0.json: <listing>: a file where only the task folders {TASKS} belong, but got '0.json'"],
        7,
    ),
    "unknown task folder": (
        _rename(f"{V0}/技能学习规划", f"{V0}/购物"),
        [f"{V0}/购物/: <listing>: unknown task folder, must be one of {TASKS}, but got '购物'"],
        6,
    ),
    "file where a study folder belongs": (
        _study_is_a_file,
        ["human_exp_V2: <listing>: a file where the study folder belongs, but got 'human_exp_V2'"],
        3,
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_each_bad_name_is_a_problem_and_build_refuses(tmp_path, name):
    change, expected, conversations = CASES[name]
    root = make_full_release(tmp_path / "rel")
    change(root)
    problems, counts = validate_source(root)
    assert [str(p) for p in problems] == expected
    assert counts["human_conversations"] == conversations
    with pytest.raises(ValidationFailed, match="^" + re.escape(expected[0])):
        stage_source(root, tmp_path / "staged", progress=False)
    assert not (tmp_path / "staged").exists()


def test_hidden_names_are_passed_over(tmp_path):
    root = make_full_release(tmp_path / "rel")
    for rel in ("human_exp_V2/.DS_Store", f"{V0}/.DS_Store", f"{R0}/.3.json.swp"):
        (root / rel).write_text("x", encoding="utf-8")
    (root / "real_human_user" / ".git").mkdir()
    problems, counts = validate_source(root)
    assert problems == [] and counts["human_conversations"] == 7


def test_a_lone_file_where_a_study_belongs_is_reported(tmp_path):
    """Without any other human folder nor the vocabulary, the source is still read as having studies."""
    root = make_release(tmp_path / "rel")
    (root / "real_human_user").write_text("", encoding="utf-8")
    problems, _ = validate_source(root)
    assert [str(p) for p in problems] == [
        "real_human_user: <listing>: a file where the study folder belongs, but got 'real_human_user'",
        "user_profiling/desc_translated.json: file is missing; the human profiles need it, but got None",
    ]


def test_listing_order_is_by_user_task_and_file_number(tmp_path):
    root = make_full_release(tmp_path / "rel", more_v2_users=9)  # User_2 .. User_10
    problems: list = []
    files = human_files(root / "human_exp_V2", problems)
    assert problems == []
    assert [p.relative_to(root / "human_exp_V2").as_posix() for p in files[:5]] == [
        "User_0/技能学习规划/1.json",
        "User_0/旅行规划/0.json",
        "User_1/礼物准备/0.json",
        "User_1/菜谱规划/2.json",
        "User_2/旅行规划/0.json",
    ]
    assert files[-1].parent.parent.name == "User_10"


def test_pinned_count_ignores_bad_names(tmp_path):
    """The download's check counts conversation files only; the bad names are validate's to report."""
    root = make_full_release(tmp_path / "rel")
    _copy(root)
    _write("human_exp_V2/notes.txt")(root)
    with pytest.raises(InputError, match=r"but found \{'real_human_user': 3, 'human_exp_V2': 4\}"):
        check_pinned_human(root)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recllmsim_hf", *args], capture_output=True, text=True, cwd=cwd
    )


def test_validate_lists_all_and_build_refuses_in_one_line(tmp_path):
    root = make_full_release(tmp_path / "rel")
    _copy(root)
    _rename("human_exp_V2/User_1", "human_exp_V2/Bob")(root)
    _write(f"{V0}/0.json")(root)
    result = _cli("validate", str(root), "--json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert [(p["file"], p["field"], p["value"]) for p in report["problems"]] == [
        (f"{R0}/3 (copy).json", "<listing>", "3 (copy).json"),
        ("human_exp_V2/Bob/", "<listing>", "Bob"),
        (f"{V0}/0.json", "<listing>", "0.json"),
    ]
    result = _cli("build", "--source", str(root), "--out", "ds", "-q", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (
        f"recllmsim: error: {R0}/3 (copy).json: {NOT_A_FILE_NAME}, but got '3 (copy).json' "
        "(and 2 more problems; run `recllmsim validate` to list them all)\n"
    )
    assert not (tmp_path / "ds").exists()
