"""A tiny made-up release in the original layout (``<task>/<n>.json``), for tests.

The texts are our own; only the key layout follows the public release format.
"""

from __future__ import annotations

import json
from pathlib import Path

METRICS = [
    "Preference Alignment",
    "Additional Preferences",
    "Role-Playing Completeness",
    "Memorization",
    "Detail Level",
    "Practical Usefulness",
    "Diversity",
]
INTENTS = [("Planning", "规划"), ("Search", "检索"), ("Recommendation", "推荐"), ("Others", "其他")]


def profile_text(pid: int) -> str:
    return f"1. Gender: Female\n2. Age: {20 + pid}\n3. Personality: Curious\n4. Occupation: Tester {pid}"


def conversation(task: str, pid: int, ctx: int, n_user: int = 2, seed: int = 0) -> dict:
    history = []
    for i in range(n_user):
        intent, intent_zh = INTENTS[(i + seed) % len(INTENTS)]
        history.append(
            {
                "role": "user",
                "content": f"user says {i} in {task}",
                "content_zh": f"用户 {i}",
                "intent": intent,
                "intent_zh": intent_zh,
            }
        )
        history.append(
            {
                "role": "assistant",
                "content": f"assistant answers {i}",
                "content_zh": f"助手 {i}",
                "hallucination": {"hallucination": (i + seed) % 5 == 4, "memo": "No Hallucination"},
            }
        )
    return {
        "task": task,
        "preference_id": pid,
        "task_context_id": ctx,
        "preference": profile_text(pid),
        "preference_zh": f"1. 性别：女 ({pid})",
        "task_context": f"You plan something for {task} #{ctx}.",
        "task_context_zh": f"计划 {ctx}",
        "history": history,
        "conflict": False,
        "preference_summary": ["cheap", "quiet"],
        "rating": {m: (seed + k) % 2 for k, m in enumerate(METRICS)},
        "profile_mapped": {
            "Gender": {"en": "Female", "zh": "女"},
            "Age": {"en": str(20 + pid), "zh": str(20 + pid)},
            "Personality": [{"en": "Curious", "zh": "好奇"}],
            "Occupation": {"en": "Others", "zh": "其他"},
            "Daily Interests and Hobbies": [{"en": "Reading", "zh": "阅读"}],
            "Travel Habits": [],
            "Dining Preferences": [],
            "Spending Habits": [],
            "Other Aspects": [],
        },
        "strategy": {"final": {"order": "Comprehensive"}},
    }


def make_release(root: Path, per_task: int = 3) -> Path:
    """Write a small release under ``root/LLM_agent_user``; returns ``root``."""
    tasks = [
        "travel planning",
        "new travel planning",
        "recipe planning",
        "skills learning planning",
        "preparing gifts",
    ]
    for t, task in enumerate(tasks):
        folder = root / "LLM_agent_user" / task
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_task):
            data = conversation(task, pid=n % 2, ctx=n % 2, n_user=2 + n % 2, seed=t + n)
            (folder / f"{n}.json").write_text(
                json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8"
            )
    return root
