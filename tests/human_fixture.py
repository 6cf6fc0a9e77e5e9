"""A tiny made-up release with both human studies, in the original layout, for tests.

``real_human_user/User_<k>/<任务>/<n>.json``, ``human_exp_V2/User_<k>/<任务>/<n>.json`` and
``user_profiling/desc_translated.json`` beside ``LLM_agent_user/`` (from ``release_fixture``).
The texts and the small profile vocabulary are our own; only the key layout, the label
names and the questionnaire wording (the importer checks it) follow the public release.

What it holds (tests count on it):
- real_human_user: User_0 (2 files: 旅行规划/3, 菜谱规划/0) and User_1 (1 file: 礼物准备/5),
  3 user turns a file with intents; User_0 states two profile versions (its 菜谱规划 file
  adds "阅读" to daily_interests).
- human_exp_V2: User_0 and User_1 (numbered on their own), 2 files each, one assistant model
  a file from MODELS, satisfaction and hallucination on assistant turns, no intents.
"""

from __future__ import annotations

import json
from pathlib import Path

from release_fixture import make_release

from recllmsim_hf.human_schema import QUESTIONNAIRE

VOCABULARY = {
    "personality": {"内向": "Introverted", "乐观": "Optimistic", "好奇": "Curious", "其他": "Others"},
    "occupation": {"学生": "Student", "工程师": "Engineer", "其他": "Others"},
    "daily_interests": {"阅读": "Reading", "运动": "Sports", "烘焙/烹饪": "Cooking", "其他": "Others"},
    "travel_habits": {
        "自驾游": "Self-driving tour",
        "自然风光": "Nature-based destinations",
        "其他": "Others",
    },
    "dining_preferences": {"素食": "Vegan", "海鲜": "Seafood", "其他": "Others"},
    "spending_habits": {"节俭": "Frugal", "捐款": "Donations", "其他": "Others"},
    "other_aspects": {"租房": "Living in a rented house", "无符合描述": "No description", "其他": "Others"},
}
MODELS = ["model-a", "model-b"]
# option of each question, by answer number (0 = best)
OPTIONS = {q.summary: sorted(q.scores, key=q.scores.get, reverse=True) for q in QUESTIONNAIRE}


def questionnaire(k: int) -> list[dict]:
    out = []
    for i, q in enumerate(QUESTIONNAIRE):
        options = OPTIONS[q.summary]
        out.append({"query": q.query, "summary": q.summary, "option": options[(k + i) % len(options)]})
    return out


def profile(user: int, v2: bool, variant: int = 0) -> dict:
    p = {
        "gender": "Female" if user % 2 else "Male",
        "age": 20 + user,
        "personality": ["内向", "乐观"] if user % 2 == 0 else ["其他"],
        "occupation": "学生" if user % 2 == 0 else "工程师",
        "daily_interests": ["运动"] + (["阅读"] if variant else []),
        "travel_habits": ["自然风光"],
        "dining_preferences": ["海鲜", "素食"],
        "spending_habits": [] if v2 else ["节俭"],
        "other_aspects": ["无符合描述"],
    }
    if v2:
        p = {"gender": p["gender"], "age": p["age"], "background": "信息科学与技术", **p}
        p["complete_tid"] = {"旅行规划": [user]}
    return p


def strategy(runs: int) -> dict:
    item = {"information_request": "Planning", "order": "Depth", "context": "High", "question": "Broad"}
    return {"final": item, **{str(i): {**item, "question": "Specific"} for i in range(1, runs + 1)}}


def strategy_v3(runs: int) -> dict:
    item = {"question_broadness": 4, "context_dependency": 3, "feedback": "NoFeedback"}
    return {"final": item, **{str(i): {**item, "question_broadness": i} for i in range(1, runs + 1)}}


def human_file(study: str, user: int, task_zh: str, k: int, variant: int = 0) -> dict:
    v2 = study == "human_exp_V2"
    history = []
    intents = [["推荐"], ["规划", "推荐"], ["评估"], ["其它"]]
    for i in range(3):
        turn = {"role": "user", "content": f"用户{user}的问题{i}（{task_zh}）"}
        if not v2:
            turn["intent"] = intents[(k + i) % len(intents)]
        history.append(turn)
        judged = ["否", "是", "无法判断"][(k + i) % 3]
        answer = {"role": "assistant", "content": f"助手的回答{i}", "hallucination": judged}
        if v2:
            answer["satisfaction"] = str(1 + (k + i) % 5)
            if (k + i) % 5 < 2:
                answer["reason"] = "不够细致"
        history.append(answer)
    data = {"history": history, "task_context": f"你要完成{task_zh}（{k}）", "task_type": task_zh}
    if v2:
        data = {"chat_model": MODELS[k % len(MODELS)], **data}
    data["profile"] = profile(user, v2, variant)
    data["questionnaire"] = questionnaire(k)
    data["strategy"] = strategy(3)
    data["strategy_V3"] = strategy_v3(3)
    if not v2:
        data["strategy_V2"] = {"final": {"order": "Breadth", "feedback": "Both"}}
    return data


# (study, user, task folder, file number, profile variant)
FILES = [
    ("real_human_user", 0, "旅行规划", 3, 0),
    ("real_human_user", 0, "菜谱规划", 0, 1),
    ("real_human_user", 1, "礼物准备", 5, 0),
    ("human_exp_V2", 0, "旅行规划", 0, 0),
    ("human_exp_V2", 0, "技能学习规划", 1, 0),
    ("human_exp_V2", 1, "礼物准备", 0, 0),
    ("human_exp_V2", 1, "菜谱规划", 2, 0),
]


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def make_full_release(root: Path, per_task: int = 3, more_v2_users: int = 0) -> Path:
    """Write LLM_agent_user (``release_fixture``), both human studies and the vocabulary under ``root``;
    ``more_v2_users`` adds human_exp_V2 users User_2, User_3, ... with one 旅行规划/0.json each."""
    make_release(root, per_task)
    extra = [("human_exp_V2", 2 + u, "旅行规划", 0, 0) for u in range(more_v2_users)]
    for k, (study, user, task_zh, n, variant) in enumerate(FILES + extra):
        path = root / study / f"User_{user}" / task_zh / f"{n}.json"
        write_json(path, human_file(study, user, task_zh, k, variant))
    write_json(root / "user_profiling" / "desc_translated.json", VOCABULARY)
    return root
