"""The human-study importer: the real studies' counts, the questionnaire mapping, and every bad input."""

import json
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from human_fixture import VOCABULARY, make_full_release
from release_fixture import make_release

from recllmsim_hf.errors import ValidationFailed
from recllmsim_hf.human_schema import (
    CONTEXT_LEVELS,
    FEEDBACKS,
    HUMAN_TASKS,
    INFORMATION_REQUESTS,
    ORDERS,
    ORDERS_V2,
    QUESTION_KINDS,
    QUESTIONNAIRE,
    SCORES_1_TO_5,
    STRATEGY_VALUES,
)
from recllmsim_hf.sources.human import HumanReader
from recllmsim_hf.sources.staging import stage_source, validate_source


@pytest.fixture(scope="module")
def real(release_dir):
    """(conversations, people) of the real release's two studies."""
    reader = HumanReader(release_dir, problems=None)
    return list(reader.conversations()), reader.people


def test_real_counts_per_study_task_and_model(real):
    conversations, people = real
    assert Counter(c.study for c in conversations) == {"real_human_user": 291, "human_exp_V2": 1833}
    by_task = Counter((c.study, c.task) for c in conversations)
    assert [by_task["real_human_user", t] for t in HUMAN_TASKS.values()] == [77, 74, 68, 72]
    assert [by_task["human_exp_V2", t] for t in HUMAN_TASKS.values()] == [502, 398, 402, 531]
    models = Counter(c.assistant_model for c in conversations if c.study == "human_exp_V2")
    assert models == {
        "gpt-4-turbo-preview": 526,
        "gemini-2.0-pro-exp-02-05": 498,
        "claude-3-7-sonnet-20250219": 465,
        "deepseek-v3": 344,
    }
    assert {c.assistant_model for c in conversations if c.study == "real_human_user"} == {None}
    assert Counter(p.study for p in people.values()) == {"real_human_user": 31, "human_exp_V2": 115}
    assert sum(p.num_conversations for p in people.values()) == 2124


def test_real_intent_labels(real):
    conversations, _ = real
    labels = Counter(label for c in conversations for t in c.turns for label in t.intents)
    assert labels == {"Recommendation": 723, "Planning": 623, "Evaluation": 212, "Others": 87}
    user_turns = [
        t for c in conversations if c.study == "real_human_user" for t in c.turns if t.role == "user"
    ]
    assert len(user_turns) == 1343 and all(t.intents for t in user_turns)
    assert Counter(len(t.intents) for t in user_turns) == {1: 1058, 2: 268, 3: 17}
    assert not any(t.intents for c in conversations if c.study == "human_exp_V2" for t in c.turns)


def test_real_assistant_judgements(real):
    conversations, _ = real
    judged = Counter(
        (c.study, t.hallucination) for c in conversations for t in c.turns if t.role == "assistant"
    )
    assert judged == {
        ("real_human_user", "no"): 1197,
        ("real_human_user", "yes"): 69,
        ("real_human_user", "cannot tell"): 69,
        ("human_exp_V2", "no"): 7545,
        ("human_exp_V2", "yes"): 221,
        ("human_exp_V2", "cannot tell"): 294,
    }
    scores = Counter(t.satisfaction for c in conversations if c.study == "human_exp_V2" for t in c.turns)
    assert scores == {5: 3697, 4: 3102, 3: 843, 2: 279, 1: 139, None: 8204}


def test_user_ids_of_the_two_studies_never_merge(real):
    conversations, people = real
    assert "real_human_user/User_0" in people and "human_exp_V2/User_0" in people
    assert people["real_human_user/User_0"].profile != people["human_exp_V2/User_0"].profile
    for c in conversations:
        assert c.user_id.startswith(f"{c.study}/User_") and c.conversation_id.startswith(f"{c.study}-User_")
    assert len({c.conversation_id for c in conversations}) == 2124
    # a person's conversations are all in one study
    assert all(len({c.study for c in conversations if c.user_id == u}) == 1 for u in people)


def test_every_questionnaire_option_maps_to_its_score(real):
    """Each option text of the release, per question, counted before and after the mapping."""
    conversations, _ = real
    answers = Counter((a.summary, a.option) for c in conversations for a in c.questionnaire)
    assert answers == {
        ("Memorization", "否"): 1972,
        ("Memorization", "是"): 152,
        ("Detail", "详细"): 1450,
        ("Detail", "一般"): 606,
        ("Detail", "简略"): 68,
        ("Availability", "很有用"): 1256,
        ("Availability", "有一定参考"): 830,
        ("Availability", "不可用"): 38,
        ("Diversity", "结果多样"): 1469,
        ("Diversity", "一般"): 591,
        ("Diversity", "结果单一"): 64,
    }
    scores = Counter((r, getattr(c.ratings, r)) for c in conversations for r in type(c.ratings).model_fields)
    # forgetting ("是", yes) is the bad answer: 0; "否" (no) is 1
    assert scores["memorization", 0] == 152 and scores["memorization", 1] == 1972
    assert (scores["detail_level", 2], scores["detail_level", 1], scores["detail_level", 0]) == (
        1450,
        606,
        68,
    )
    assert [scores["practical_usefulness", s] for s in (2, 1, 0)] == [1256, 830, 38]
    assert [scores["diversity", s] for s in (2, 1, 0)] == [1469, 591, 64]
    assert {q.summary: q.scores for q in QUESTIONNAIRE} == {
        "Memorization": {"否": 1, "是": 0},
        "Detail": {"详细": 2, "一般": 1, "简略": 0},
        "Availability": {"很有用": 2, "有一定参考": 1, "不可用": 0},
        "Diversity": {"结果多样": 2, "一般": 1, "结果单一": 0},
    }


def test_real_profiles_in_both_languages_and_strategies(real):
    conversations, people = real
    p = people["human_exp_V2/User_0"].profile
    assert (p.gender, p.gender_zh, p.age, p.background_zh) == ("Female", "女", 19, "社会科学与行为科学")
    assert p.personality_zh == ["乐观", "坚定", "上进"] and p.personality == [
        "Optimistic",
        "Determined",
        "Ambitious",
    ]
    assert p.occupation_zh == "其他" and p.occupation == "Others"
    assert Counter(x.num_profile_versions for x in people.values()) == {1: 144, 2: 2}
    shapes = Counter(tuple(sorted(c.strategies)) for c in conversations)
    assert shapes[("strategy", "strategy_v2", "strategy_v3")] == 251
    assert (
        shapes[
            (
                "strategy",
                "strategy_human",
                "strategy_human_v2",
                "strategy_human_v3",
                "strategy_v2",
                "strategy_v3",
            )
        ]
        == 40
    )
    assert shapes[("strategy", "strategy_v3")] == 1833
    assert all(len(c.strategies["strategy"]["runs"]) == 3 for c in conversations)
    assert all(
        c.strategies["strategy_human"]["runs"] == []
        for c in conversations
        if "strategy_human" in c.strategies
    )
    assert sum("profile.complete_tid" in c.extra for c in conversations) == 1080


def test_real_strategy_values_are_exactly_the_vocabularies(real):
    conversations, _ = real
    seen: dict[tuple[str, str], Counter] = {}
    finals: Counter = Counter()
    for c in conversations:
        for column, annotation in c.strategies.items():
            for item in [annotation["final"], *annotation["runs"]]:
                for field, value in item.items():
                    seen.setdefault((column, field), Counter())[value] += 1
            if column in ("strategy_v2", "strategy_v3"):
                finals.update((column, f, v) for f, v in annotation["final"].items())
    for key, fields in STRATEGY_VALUES.items():
        for field, values in fields.items():
            assert set(seen[key.lower(), field]) <= set(values), (key, field)
    # no value of a vocabulary is invented: each occurs in the release
    assert set(seen["strategy", "order"]) == set(ORDERS) and set(seen["strategy_v2", "order"]) == set(
        ORDERS_V2
    )
    assert set(seen["strategy_v2", "feedback"]) == set(seen["strategy_v3", "feedback"]) == set(FEEDBACKS)
    assert set(seen["strategy", "information_request"]) == set(INFORMATION_REQUESTS)
    assert set(seen["strategy", "context"]) == set(CONTEXT_LEVELS)
    assert set(seen["strategy", "question"]) == set(QUESTION_KINDS)
    for field in ("question_broadness", "context_dependency"):
        assert set(seen["strategy_v3", field]) == set(SCORES_1_TO_5)
    assert seen["strategy_v3", "question_broadness"][1] == 8  # in the numbered runs only, never final
    assert [finals["strategy_v2", "order", v] for v in ORDERS_V2] == [36, 11, 206, 38]
    assert [finals["strategy_v3", "feedback", v] for v in FEEDBACKS] == [1225, 551, 171, 177]
    assert [finals["strategy_v3", "context_dependency", v] for v in SCORES_1_TO_5] == [7, 74, 1089, 886, 68]
    assert [finals["strategy_v3", "question_broadness", v] for v in SCORES_1_TO_5] == [0, 47, 595, 1430, 52]


# -- hand-written fixture ----------------------------------------------------------------------------


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


R0 = Path("real_human_user/User_0/旅行规划/3.json")
V0 = Path("human_exp_V2/User_0/旅行规划/0.json")


def _set(keys, value):
    def change(data):
        target = data
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


def _drop(key):
    return lambda data: data.pop(key)


BAD = [
    (R0, _set(["history", 0, "intent"], ["推荐", "购物"]), r"history\[0\]\.intent: unknown intent.*'购物'"),
    (R0, _set(["history", 0, "intent"], "推荐"), r"history\[0\]\.intent: expected a list of labels"),
    (
        V0,
        _set(["history", 1, "hallucination"], "可能"),
        r"history\[1\]\.hallucination: must be one of.*'可能'",
    ),
    (
        V0,
        _set(["history", 1, "satisfaction"], "6"),
        r"history\[1\]\.satisfaction: must be a score from 1 to 5",
    ),
    (
        R0,
        _set(["questionnaire", 1, "option"], "非常详细"),
        r"questionnaire\[1\]\.option: unknown option.*'非常详细'",
    ),
    (
        R0,
        _set(["questionnaire", 0, "query"], "对方是否记得前文"),
        r"questionnaire\[0\]\.query: not the known Memorization",
    ),
    (
        R0,
        _set(["questionnaire", 2, "summary"], "Usefulness"),
        r"questionnaire\[2\]\.summary: unknown question",
    ),
    (
        V0,
        _set(["profile", "personality"], ["内向", "暴躁"]),
        r"profile\.personality: not a value of personality.*'暴躁'",
    ),
    (V0, _set(["profile", "occupation"], ["学生"]), r"profile\.occupation: must be a string"),
    (V0, _set(["profile", "background"], "法学"), r"profile\.background: unknown background.*'法学'"),
    (V0, _set(["profile", "gender"], "男"), r"profile\.gender: must be one of \['Male', 'Female'\]"),
    (
        R0,
        _set(["strategy", "2"], {"order": "Depth"}),
        r"strategy\.2\.information_request: required field is missing",
    ),
    (
        R0,
        _set(["strategy", "2"], "Depth"),
        r"strategy\.2: expected an object with the fields \['information_request', ",
    ),
    (  # the field that does not belong is named, not hidden in a cut-short dump of the object
        R0,
        _set(
            ["strategy_human"],
            {
                "final": {
                    "information_request": "Planning",
                    "order": "Depth",
                    "context": "High",
                    "question": "Broad",
                }
            },
        ),
        r"strategy_human\.final: unknown field, expected only "
        r"\['information_request', 'context', 'question'\], but got 'order'$",
    ),
    (
        R0,
        _set(["strategy_V3", "final", "question_broadness"], "4"),
        r"strategy_V3\.final\.question_broadness: must be an integer",
    ),
    (R0, _set(["task_type"], "菜谱规划"), r"task_type: differs from its folder '旅行规划'"),
    (V0, _set(["chat_model"], 4), r"chat_model: must be a string"),
    # values of the wrong type are problems too, not crashes
    (R0, _set(["history", 2, "intent"], [["规划"]]), r"history\[2\]\.intent: unknown.*got \['规划'\]$"),
    (V0, _set(["history", 3, "hallucination"], {"否": 1}), r"history\[3\]\.hallucination: must be one of"),
    (V0, _set(["profile", "gender"], ["Male"]), r"profile\.gender: must be one of"),
    (V0, _set(["profile", "background"], {"a": 1}), r"profile\.background: unknown background"),
    # named by the release's key, not the record's field (scenario_zh)
    (V0, _set(["task_context"], None), r"task_context: must be a string, but got None$"),
    (R0, _set(["task_context"], ["旅行"]), r"task_context: must be a string, but got \['旅行'\]$"),
    # every file of both studies has these, so they are required
    (R0, _drop("task_type"), r"task_type: required field is missing, but got None$"),
    (V0, _drop("profile"), r"profile: required field is missing, but got None$"),
    (R0, _drop("questionnaire"), r"questionnaire: required field is missing, but got None$"),
    (V0, _drop("history"), r"history: required field is missing, but got None$"),
    # strategy values come from closed sets (STRATEGY_VALUES)
    (
        R0,
        _set(["strategy", "final", "order"], "Random"),
        r"strategy\.final\.order: unknown value, must be one of \['Comprehensive', 'Breadth', 'Depth'\], "
        r"but got 'Random'$",
    ),
    (  # a value of strategy.order is not one of strategy_V2.order
        R0,
        _set(["strategy_V2", "final", "order"], "Comprehensive"),
        r"strategy_V2\.final\.order: unknown value, must be one of "
        r"\['Breadth', 'Depth', 'BreadthDepth', 'DepthBreadth'\], but got 'Comprehensive'$",
    ),
    (
        V0,
        _set(["strategy", "1", "information_request"], "planning"),
        r"strategy\.1\.information_request: unknown value, must be one of \['Planning', 'Sequential'\]",
    ),
    (V0, _set(["strategy", "3", "context"], "Medium"), r"strategy\.3\.context: unknown value.*'Medium'$"),
    (V0, _set(["strategy", "2", "question"], "Narrow"), r"strategy\.2\.question: unknown value.*'Narrow'$"),
    (
        V0,
        _set(["strategy_V3", "2", "context_dependency"], 6),
        r"strategy_V3\.2\.context_dependency: unknown value, must be one of \[1, 2, 3, 4, 5\], but got 6$",
    ),
    (
        V0,
        _set(["strategy_V3", "1", "question_broadness"], 0),
        r"strategy_V3\.1\.question_broadness: unknown value.*got 0$",
    ),
    (
        V0,
        _set(["strategy_V3", "final", "question_broadness"], True),
        r"strategy_V3\.final\.question_broadness: must be an integer",
    ),
    (
        R0,
        _set(["strategy_V3", "final", "feedback"], "Mixed"),
        r"strategy_V3\.final\.feedback: unknown value, must be one of "
        r"\['NoFeedback', 'Positive', 'Negative', 'Both'\], but got 'Mixed'$",
    ),
]


@pytest.mark.parametrize("rel, change, message", BAD, ids=[m.split(":")[0] for _, _, m in BAD])
def test_bad_human_value_names_file_field_and_value(tmp_path, rel, change, message):
    root = make_full_release(tmp_path / "rel")
    _edit(root / rel, change)
    with pytest.raises(ValidationFailed, match=rf"^{rel.as_posix()}: {message}"):
        stage_source(root, tmp_path / "staged", progress=False)
    assert not (tmp_path / "staged").exists()


def test_every_bad_strategy_value_of_a_file_is_listed(tmp_path):
    root = make_full_release(tmp_path / "rel")
    _edit(root / R0, _set(["strategy", "final", "order"], "Random"))
    _edit(root / R0, _set(["strategy", "2", "context"], "Medium"))
    _edit(root / R0, _set(["strategy", "2", "question"], "Narrow"))
    _edit(root / R0, _set(["strategy_V3", "3", "question_broadness"], 9))
    problems, counts = validate_source(root)
    assert [(p.field, p.value) for p in problems] == [
        ("strategy.final.order", "Random"),
        ("strategy.2.context", "Medium"),
        ("strategy.2.question", "Narrow"),
        ("strategy_V3.3.question_broadness", 9),
    ]
    assert {p.file for p in problems} == {R0.as_posix()} and counts["human_conversations"] == 6


def test_unknown_profile_value_of_the_synthetic_release_is_reported(tmp_path):
    root = make_full_release(tmp_path / "rel")
    vocab = {**VOCABULARY, "personality": {k: v for k, v in VOCABULARY["personality"].items() if k != "好奇"}}
    (root / "user_profiling" / "desc_translated.json").write_text(json.dumps(vocab, ensure_ascii=False))
    problems, _ = validate_source(root)
    assert [str(p) for p in problems] == [
        "LLM_agent_user (profile 0): profile_mapped.Personality: not a value of personality in "
        "user_profiling/desc_translated.json, but got {'en': 'Curious', 'zh': '好奇'}",
        "LLM_agent_user (profile 1): profile_mapped.Personality: not a value of personality in "
        "user_profiling/desc_translated.json, but got {'en': 'Curious', 'zh': '好奇'}",
    ]


def test_missing_vocabulary_is_a_problem(tmp_path):
    root = make_full_release(tmp_path / "rel")
    (root / "user_profiling" / "desc_translated.json").unlink()
    with pytest.raises(ValidationFailed, match=r"^user_profiling/desc_translated.json: file is missing"):
        stage_source(root, tmp_path / "staged", progress=False)


def test_validate_lists_every_problem_of_both_studies(tmp_path):
    root = make_full_release(tmp_path / "rel")
    for rel, change, _ in (BAD[0], BAD[2], BAD[4], BAD[7]):
        _edit(root / rel, change)
    result = subprocess.run(
        [sys.executable, "-m", "recllmsim_hf", "validate", str(root)], capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "real_human_user/User_0/旅行规划/3.json: history[0].intent: unknown intent, must be one of "
        "['推荐', '规划', '评估', '其它'], but got '购物'",
        "real_human_user/User_0/旅行规划/3.json: questionnaire[1].option: unknown option, must be one of "
        "['详细', '一般', '简略'], but got '非常详细'",
        "human_exp_V2/User_0/旅行规划/0.json: history[1].hallucination: must be one of "
        "['否', '是', '无法判断'], but got '可能'",
        "human_exp_V2/User_0/旅行规划/0.json: profile.personality: not a value of personality in "
        "user_profiling/desc_translated.json, but got '暴躁'",
    ]
    assert "4 problem(s) in 23 file(s), 15 conversation(s) read, 5 of real people" in result.stderr


def test_fixture_maps_every_field(tmp_path):
    root = make_full_release(tmp_path / "rel")
    reader = HumanReader(root)
    convs = {c.source_file: c for c in reader.conversations()}
    c = convs[R0.as_posix()]
    assert (c.conversation_id, c.study, c.user_id, c.task) == (
        "real_human_user-User_0-travel_planning-3",
        "real_human_user",
        "real_human_user/User_0",
        "travel planning",
    )
    assert [t.intents for t in c.turns if t.role == "user"] == [
        ["Recommendation"],
        ["Planning", "Recommendation"],
        ["Evaluation"],
    ]
    assert [t.hallucination for t in c.turns if t.role == "assistant"] == ["no", "yes", "cannot tell"]
    assert c.ratings.model_dump() == {
        "memorization": 1,
        "detail_level": 1,
        "practical_usefulness": 0,
        "diversity": 2,
    }
    assert c.strategies["strategy_v2"] == {"final": {"order": "Breadth", "feedback": "Both"}, "runs": []}
    assert [r["question_broadness"] for r in c.strategies["strategy_v3"]["runs"]] == [1, 2, 3]
    v = convs[V0.as_posix()]
    assert v.assistant_model == "model-b" and v.extra == {"profile.complete_tid": {"旅行规划": [0]}}
    assert [t.satisfaction for t in v.turns] == [None, 4, None, 5, None, 1]
    assert [t.reason for t in v.turns] == [None, None, None, None, None, "不够细致"]
    assert v.profile.background == "Information science and technology" and v.profile.spending_habits == []
    person = reader.people["real_human_user/User_0"]
    assert (person.num_conversations, person.num_profile_versions) == (2, 2)
    assert person.profile.daily_interests_zh == ["运动"]  # tie between versions: the earliest file's


def test_release_with_only_llm_agent_user_stages_as_before(tmp_path):
    staged = stage_source(make_release(tmp_path / "rel"), tmp_path / "staged", progress=False)
    assert sorted(p.name for p in staged.iterdir()) == [
        "conversations.jsonl",
        "manifest.json",
        "profiles.jsonl",
        "scenarios.jsonl",
    ]
    manifest = json.loads((staged / "manifest.json").read_text())
    assert manifest["counts"] == {"profiles": 2, "scenarios": 10, "conversations": 15}


def test_archive_source_brings_the_human_studies(tmp_path):
    root = make_full_release(tmp_path / "rel")
    archive = tmp_path / "RecLLMSim-main.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*.json")):
            zf.write(path, "RecLLMSim-main/" + path.relative_to(root).as_posix())
    staged = stage_source(archive, tmp_path / "staged", progress=False)
    lines = (staged / "human_conversations.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7
    assert json.loads((staged / "manifest.json").read_text())["counts"]["human_people"] == 4
    vocabulary = json.loads((staged / "profile_vocabulary.json").read_text(encoding="utf-8"))
    assert vocabulary["occupation"] == [["学生", "Student"], ["工程师", "Engineer"], ["其他", "Others"]]


def test_archive_with_utf8_names_but_no_utf8_flag(tmp_path, monkeypatch):
    """Info-ZIP (`zip -r`), macOS and Windows write UTF-8 names without the flag zipfile looks for."""
    root = make_full_release(tmp_path / "rel")
    archive = tmp_path / "RecLLMSim-main.zip"
    with monkeypatch.context() as m:
        m.setattr(zipfile.ZipInfo, "_encodeFilenameFlags", lambda info: (info.filename.encode(), 0))
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted(root.rglob("*.json")):
                zf.write(path, "RecLLMSim-main/" + path.relative_to(root).as_posix())
    names = [i for i in zipfile.ZipFile(archive).infolist() if "User_0" in i.filename]
    assert names and not any(i.flag_bits & 0x800 for i in names)  # the flag really is missing
    staged = stage_source(archive, tmp_path / "staged", progress=False)
    lines = (staged / "human_conversations.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7
    assert sorted(json.loads(line)["source_file"] for line in lines)[0].startswith("human_exp_V2/User_0/")


def test_url_source_brings_the_human_studies_with_one_download(tmp_path, monkeypatch):
    from http_fixtures import FileServer

    monkeypatch.setenv("RECLLMSIM_CACHE", str(tmp_path / "cache"))
    root = make_full_release(tmp_path / "rel")
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*.json")):
            zf.write(path, "RecLLMSim-abc/" + path.relative_to(root).as_posix())
    with FileServer({"/archive/abc.zip": archive.read_bytes()}) as srv:
        staged = stage_source(srv.url("/archive/abc.zip"), tmp_path / "staged", progress=False)
        assert srv.count == 1
    assert len((staged / "human_conversations.jsonl").read_text(encoding="utf-8").splitlines()) == 7
    (companions,) = (tmp_path / "cache" / "companions").iterdir()
    assert sorted(p.name for p in companions.iterdir()) == [
        "human_exp_V2",
        "real_human_user",
        "user_profiling",
    ]
    (extracted,) = (tmp_path / "cache" / "extracted").iterdir()
    assert "real_human_user" not in {p.name for p in extracted.iterdir()}  # the release entry is as before


def test_staged_corpus_validates_and_reports_a_bad_human_line(tmp_path):
    staged = stage_source(make_full_release(tmp_path / "rel"), tmp_path / "staged", progress=False)
    problems, counts = validate_source(staged)
    assert problems == [] and counts["human_conversations"] == 7
    path = staged / "human_conversations.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[2])
    bad["study"] = "human_exp_V3"
    path.write_text(
        "\n".join([*lines[:2], json.dumps(bad, ensure_ascii=False), *lines[3:]]) + "\n", encoding="utf-8"
    )
    problems, _ = validate_source(staged)
    assert [(p.file, p.field, p.value) for p in problems] == [(f"{path}:3", "study", "human_exp_V3")]


def test_pinned_archive_content_check(release_dir, tmp_path):
    from recllmsim_hf.errors import InputError
    from recllmsim_hf.sources.staging import check_pinned_human

    check_pinned_human(release_dir)  # the real release has exactly the pinned counts
    with pytest.raises(InputError, match=r"expected the human studies .*'human_exp_V2': 1833.*but found "):
        check_pinned_human(make_full_release(tmp_path / "rel"))


@pytest.mark.parametrize("fork", ["1", "0"])
def test_a_deeply_nested_or_oversized_human_file_is_a_problem(tmp_path, monkeypatch, fork):
    monkeypatch.setenv("RECLLMSIM_NO_FORK", "0" if fork == "1" else "1")  # in the child, and here
    root = make_full_release(tmp_path / "rel")
    (root / V0).write_text("[" * 100_000 + "]" * 100_000)
    too_deep = rf"^{V0.as_posix()}: nested too deeply to be a human-study file"
    with pytest.raises(ValidationFailed, match=too_deep):
        stage_source(root, tmp_path / "staged", progress=False)
    assert not (tmp_path / "staged").exists()
    # 300 levels parse, but pydantic's serializer stops at 255: a traceback while staging, once
    other = make_full_release(tmp_path / "other")
    _edit(other / V0, lambda data: data.update(notes=json.loads('{"a": ' * 300 + "1" + "}" * 300)))
    with pytest.raises(ValidationFailed, match=too_deep):
        stage_source(other, tmp_path / "staged", progress=False)

    limit = max(p.stat().st_size for p in root.rglob("*.json"))  # every fixture file fits
    (root / V0).write_text(json.dumps({"chat_model": "x" * limit}))
    monkeypatch.setattr("recllmsim_hf.sources.human.MAX_FILE_BYTES", limit)
    with pytest.raises(ValidationFailed, match=rf"^{V0.as_posix()}: larger than a human-study file may be"):
        stage_source(root, tmp_path / "staged", progress=False)


def test_a_deeply_nested_vocabulary_is_a_problem(tmp_path):
    root = make_full_release(tmp_path / "rel")
    (root / "user_profiling" / "desc_translated.json").write_text("[" * 100_000 + "]" * 100_000)
    message = r"^user_profiling/desc_translated.json: nested too deeply to be the profile vocabulary"
    with pytest.raises(ValidationFailed, match=message):
        stage_source(root, tmp_path / "staged", progress=False)
