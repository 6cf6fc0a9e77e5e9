"""The release importer on the real release (../shared) and on our own small fixture."""

from collections import Counter
from pathlib import Path

import pytest

from recllmsim_hf.errors import Problem
from recllmsim_hf.schema import RATING_METRICS, TASKS
from recllmsim_hf.sources.release import ReleaseReader, parse_file, scenario_id_for

# The paper's Table 2 (per-task means of the seven ratings, metrics in RATING_METRICS order).
TABLE_2 = {
    "skills learning planning": [1.233, 0.144, 1.564, 0.941, 1.951, 1.888, 1.841],
    "travel planning": [1.837, 0.436, 1.551, 0.943, 1.795, 1.736, 1.707],
    "preparing gifts": [1.228, 0.019, 1.618, 0.998, 1.920, 1.867, 1.989],
    "recipe planning": [1.670, 0.389, 1.616, 0.977, 1.830, 1.795, 0.653],
}


@pytest.fixture(scope="module")
def release(release_dir):
    reader = ReleaseReader(release_dir / "LLM_agent_user", problems=[])
    conversations = list(reader.conversations())
    return reader, conversations


def test_every_conversation_is_kept(release):
    reader, conversations = release
    assert reader.problems == []
    assert len(conversations) == 1856
    assert len({c.conversation_id for c in conversations}) == 1856


def test_intent_counts(release):
    _, conversations = release
    counts = Counter(t.intent for c in conversations for t in c.turns if t.role == "user")
    assert counts == {
        "Planning": 2416,
        "Others": 2028,
        "Recommendation": 1263,
        "Search & Recommendation": 1009,
        "Search": 380,
    }


def test_hallucinations(release):
    _, conversations = release
    judged = [t for c in conversations for t in c.turns if t.role == "assistant"]
    assert len(judged) == 7103
    assert sum(t.hallucination for t in judged) == 39
    assert all(t.reason for t in judged if t.hallucination)


def test_profiles_and_scenarios(release):
    reader, _ = release
    assert len(reader.profiles) == 100
    assert len({p.text for p in reader.profiles.values()}) == 85
    assert len(reader.scenarios) == 22
    # ids 5 and 7 occur in both travel rounds with different texts: two scenarios each
    for ctx in (5, 7):
        one, two = reader.scenarios[f"travel_planning-{ctx}"], reader.scenarios[f"travel_planning-r2-{ctx}"]
        assert one.text != two.text and (one.round, two.round) == (1, 2)
    assert all(p.fields is not None and p.fields.gender for p in reader.profiles.values())


def test_conversations_starting_with_the_assistant_are_kept(release):
    _, conversations = release
    assert sum(c.turns[0].role == "assistant" for c in conversations) == 7


def test_table_2_per_task_means(release):
    _, conversations = release
    assert {c.task for c in conversations} == set(TASKS)
    for task, expected in TABLE_2.items():
        rated = [c.ratings for c in conversations if c.task == task]
        means = [round(sum(getattr(r, m) for r in rated) / len(rated), 3) for m in RATING_METRICS]
        assert means == pytest.approx(expected, abs=5e-4), task


def test_unmodelled_keys_are_kept(release):
    _, conversations = release
    extra_keys = Counter(k for c in conversations for k in c.extra)
    assert extra_keys["strategy"] == 1856 and extra_keys["strategy_V3"] == 1856
    assert extra_keys["strategy_1120"] == 150 and extra_keys["preference_summary_old"] == 1657
    assert sum("content_zh_old" in t.extra for c in conversations for t in c.turns) == 306


def test_new_travel_planning_is_round_2_of_travel_planning(release):
    _, conversations = release
    rounds = Counter((c.task, c.round) for c in conversations if c.task == "travel planning")
    assert rounds == {("travel planning", 1): 358, ("travel planning", 2): 199}


def test_scenario_ids():
    assert scenario_id_for("travel planning", 1, 5) == "travel_planning-5"
    assert scenario_id_for("travel planning", 2, 5) == "travel_planning-r2-5"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda d: d["history"][0].update(intent="Shopping"), "history[0].intent", "must be one of"),
        (lambda d: d["history"][0].update(intent_zh="推荐"), "history[0].intent_zh", "does not match"),
        (lambda d: d["rating"].update({"Diversity": 3}), "rating.Diversity", "integer from 0 to 2"),
        (lambda d: d["rating"].update({"Memorization": "1"}), "rating.Memorization", "integer from 0 to 1"),
        (lambda d: d["rating"].update({"Fun": 1}), "rating.Fun", "unknown rating metric"),
        (lambda d: d.pop("history"), "history", "required field is missing"),
        (lambda d: d.update(history=[]), "history", "non-empty list"),
        (lambda d: d.update(task="shopping"), "task", "must be one of"),
        (lambda d: d["history"][1].update(role="system"), "history[1].role", "must be one of"),
        (lambda d: d["history"][1].update(hallucination="yes"), "history[1].hallucination", "expected"),
    ],
)
def test_each_bad_value_is_one_problem_naming_the_field(tmp_path, mutate, field, message):
    from release_fixture import conversation

    data = conversation("recipe planning", 1, 0)
    mutate(data)
    import json

    path = write(tmp_path / "recipe planning/0.json", json.dumps(data))
    problems: list[Problem] = []
    assert parse_file(path, "recipe planning/0.json", problems) is None
    assert [(p.file, p.field) for p in problems] == [("recipe planning/0.json", field)]
    assert message in problems[0].message


def test_missing_rating_metric_is_null_not_zero(tmp_path):
    import json

    from release_fixture import conversation

    data = conversation("recipe planning", 1, 0)
    del data["rating"]["Diversity"]
    path = write(tmp_path / "recipe planning/0.json", json.dumps(data))
    parsed = parse_file(path, "recipe planning/0.json", [])
    assert parsed.conversation.ratings.diversity is None
    assert parsed.conversation.ratings.memorization is not None


def test_truncated_json_is_a_problem(tmp_path):
    path = write(tmp_path / "recipe planning/0.json", '{"task": "recipe planning", "histo')
    problems: list[Problem] = []
    assert parse_file(path, "recipe planning/0.json", problems) is None
    assert "not valid JSON" in problems[0].message


def test_a_pipe_or_a_broken_link_named_like_a_file_is_called_what_it_is(tmp_path):
    import os

    from release_fixture import make_release

    root = make_release(tmp_path / "rel", per_task=1)
    folder = root / "LLM_agent_user" / "recipe planning"
    os.mkfifo(folder / "7.json")  # read, it would block for ever
    os.symlink("missing.json", folder / "8.json")
    problems: list[Problem] = []
    list(ReleaseReader(root / "LLM_agent_user", problems).conversations())
    assert [(p.file, p.value) for p in problems] == [
        ("recipe planning/7.json", "a pipe, socket or device"),
        ("recipe planning/8.json", "a broken or looping symbolic link"),
    ]


def test_values_nested_deeper_than_the_serializer_goes_are_a_problem(tmp_path):
    import json

    from release_fixture import conversation

    deep = json.loads('{"a": ' * 300 + "1" + "}" * 300)  # parses, but pydantic writes <= 255 levels
    data = {**conversation("recipe planning", 0, 0), "notes": deep}
    path = write(tmp_path / "recipe planning/0.json", json.dumps(data))
    problems: list[Problem] = []
    assert parse_file(path, "recipe planning/0.json", problems) is None
    assert [(p.value, p.message) for p in problems] == [
        ("deeply nested lists or objects", "nested too deeply to be a release file")
    ]
