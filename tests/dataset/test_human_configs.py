"""The four human-study configs: one schema with the records, seeded splits, loading, and the card."""

import hashlib
from collections import Counter
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from datasets import ClassLabel, Features, List
from huggingface_hub import DatasetCard
from human_fixture import make_full_release

from recllmsim_hf.dataset.build import build_dataset
from recllmsim_hf.dataset.human_configs import read_vocabulary
from recllmsim_hf.features import (
    HUMAN_RATING_FEATURES,
    HUMAN_TABLES,
    HUMAN_TURN,
    SPLITS,
    features,
)
from recllmsim_hf.human_schema import (
    HUMAN_INTENT_LABELS,
    PROFILE_ATTRIBUTES,
    STRATEGIES,
    HumanConversation,
    HumanProfile,
    HumanRatings,
    HumanTurn,
)
from recllmsim_hf.schema import TASKS

SPLIT3 = ("train", "validation", "test")


def rows(folder, table, split=None):
    paths = sorted((folder / table).glob(f"{split or '*'}-*.parquet"))
    return [r for p in paths for r in pq.read_table(p).to_pylist()]


def split_rows(folder, table):
    return {s: rows(folder, table, s) for s in SPLITS[table]}


# -- one schema --------------------------------------------------------------------------------------


def test_features_are_the_human_records():
    assert set(HUMAN_TURN) == set(HumanTurn.model_fields) - {"extra"}
    assert list(HUMAN_RATING_FEATURES) == list(HumanRatings.model_fields)
    conv = features("human_conversations")
    assert list(conv["profile"]) == list(HumanProfile.model_fields)
    for column, shape in STRATEGIES.values():
        assert list(conv[column]["final"]) == list(shape) and list(conv[column]["runs"].feature) == list(
            shape
        )
    modelled = set(HumanConversation.model_fields) - {"strategies"} | {c for c, _ in STRATEGIES.values()}
    assert modelled - {"num_turns"} <= set(conv) | {"questionnaire"}
    assert set(HumanProfile.model_fields) <= set(features("human_profiles"))
    labels = features("human_intent_utterances")["labels"]
    assert isinstance(labels, List) and labels.feature.names == list(HUMAN_INTENT_LABELS)
    assert features("human_conversations")["task"].names == list(TASKS)


def test_profile_identification_needs_the_vocabulary():
    from recllmsim_hf.errors import InputError

    with pytest.raises(InputError, match="needs the profile vocabulary"):
        features("profile_identification")
    vocab = {name: [f"{name} {i}" for i in range(3)] for name in PROFILE_ATTRIBUTES}
    cols = features("profile_identification", vocabulary=vocab)
    assert cols["occupation"].feature.names == ["occupation 0", "occupation 1", "occupation 2"]
    assert cols["source"].names == ["synthetic", "human"]


# -- the real release ----------------------------------------------------------------------------------


def test_real_build_carries_exactly_the_features(built_release):
    card = DatasetCard.load(built_release / "README.md")
    for table in HUMAN_TABLES:
        paths = sorted((built_release / table).glob("*.parquet"))
        assert paths, table
        for path in paths:
            got = Features.from_arrow_schema(pq.read_schema(path))
            if table != "profile_identification":
                assert got == features(table), path
    pid = Features.from_arrow_schema(pq.read_schema(paths[0]))
    assert pid["personality"].feature.names[:3] == ["Introverted", "Extroverted", "Optimistic"]
    assert [len(pid[a].feature.names) for a in PROFILE_ATTRIBUTES] == [15, 15, 15, 15, 14, 15, 16]
    names = [c["config_name"] for c in card.data.to_dict()["configs"]]
    assert names[-4:] == list(HUMAN_TABLES)


def test_real_human_intent_utterances(built_release):
    by_split = split_rows(built_release, "human_intent_utterances")
    assert {s: len(r) for s, r in by_split.items()} == {"train": 1075, "validation": 134, "test": 134}
    names = features("human_intent_utterances")["labels"].feature.names
    total = Counter(names[i] for r in sum(by_split.values(), []) for i in r["labels"])
    assert total == {"Recommendation": 723, "Planning": 623, "Evaluation": 212, "Others": 87}
    assert {r["study"] for r in sum(by_split.values(), [])} == {0}
    first = next(r for r in by_split["train"] if r["turn_index"] == 0)
    assert first["context"] == ""
    assert Counter(r["task"] for r in sum(by_split.values(), [])) == {0: 422, 1: 304, 2: 288, 3: 329}


def test_real_conversations_and_profiles(built_release):
    convs = rows(built_release, "human_conversations")
    assert Counter(r["study"] for r in convs) == {0: 291, 1: 1833}
    assert sum(r["assistant_model"] is None for r in convs) == 291
    assert Counter(r["ratings"]["memorization"] for r in convs) == {1: 1972, 0: 152}
    people = rows(built_release, "human_profiles")
    assert len(people) == 146 and len({r["user_id"] for r in people}) == 146
    assert sum(r["num_conversations"] for r in people) == 2124
    assert sum(r["background"] is None for r in people) == 31


def test_both_studies_judge_hallucinations_as_the_card_says(built_release):
    judged = Counter(
        (r["study"], t["role"], t["hallucination"] is not None)
        for r in rows(built_release, "human_conversations")
        for t in r["turns"]
    )
    assert judged[(0, "assistant", True)] == 1335 and judged[(1, "assistant", True)] == 8060
    assert not judged[(0, "assistant", False)] and not judged[(1, "assistant", False)]
    assert not judged[(0, "user", True)] and not judged[(1, "user", True)]
    text = (built_release / "README.md").read_text(encoding="utf-8")
    assert (
        "| `turns.hallucination` | ClassLabel: 0 no, 1 yes, 2 cannot tell | Assistant turns of both studies:"
        in text
    )


def test_real_profile_identification_splits_by_person(built_release):
    by_split = split_rows(built_release, "profile_identification")
    owner: dict[str, set] = {}
    for split, rs in by_split.items():
        for r in rs:
            owner.setdefault(r["user_id"], set()).add(split)
    assert all(len(s) == 1 for s in owner.values())
    people = Counter((uid.split("/")[0], next(iter(s))) for uid, s in owner.items())
    assert [people["real_human_user", s] for s in SPLIT3] == [25, 3, 3]
    assert [people["human_exp_V2", s] for s in SPLIT3] == [91, 12, 12]
    assert [people["LLM_agent_user", s] for s in SPLIT3] == [67, 9, 9]  # 85 distinct profile texts
    sources = Counter((r["source"], s) for s, rs in by_split.items() for r in rs)
    assert sum(sources[0, s] for s in SPLIT3) == 1856 and sum(sources[1, s] for s in SPLIT3) == 2124
    human = [r for r in by_split["train"] if r["source"] == 1]
    assert all(r["text_en"] is None and r["text"] for r in human)


def test_load_dataset_reads_every_new_config(built_release):
    for name in HUMAN_TABLES:
        ds = datasets.load_dataset(str(built_release), name)
        assert set(ds) == set(SPLITS[name]), name
    pid = datasets.load_dataset(str(built_release), "profile_identification")["test"]
    assert isinstance(pid.features["occupation"].feature, ClassLabel)


def test_card_describes_each_new_config(built_release):
    text = (built_release / "README.md").read_text(encoding="utf-8")
    for heading in (
        "### `human_conversations` (2,124 rows)",
        "### `human_profiles` (146 rows)",
        "### `human_intent_utterances` (1,075 / 134 / 134 rows)",
        "### `profile_identification` (3,152 / 417 / 411 rows)",
    ):
        assert heading in text
    assert "| `real_human_user` |" in text and "gpt-4-turbo-preview (526)" in text
    assert "| Memorization | `memorization` |" in text and "否 = 1, 是 = 0" in text
    assert "| Evaluation | 评估 | 178 | 18 | 16 |" in text
    assert "**Limitations of the human data.**" in text
    assert "- **Splits:** 8:1:1 by utterance, the unit and seeded rule of `intent_utterances`" in text
    assert "- crowdsourced" in text.split("---")[1]
    # the strategy fields' value sets (human_schema.STRATEGY_VALUES)
    assert (
        "each field takes its values from a closed set, the release's own names: `information_request` "
        "Planning / Sequential; `order` Comprehensive / Breadth / Depth (`strategy`), Breadth / Depth / "
        "BreadthDepth / DepthBreadth (`strategy_v2`, `strategy_human_v2`); `context` High / Low; `question` "
        "Broad / Specific; `feedback` NoFeedback / Positive / Negative / Both; `question_broadness` 1-5; "
        "`context_dependency` 1-5)" in text
    )


# -- the hand-written fixture ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_builds(tmp_path_factory):
    """Builds of the fixture: seed 42, seed 42 again, seed 7, and seed 42 with other synthetic data."""
    root = tmp_path_factory.mktemp("human-build")
    rel = make_full_release(root / "rel", more_v2_users=30)
    other = make_full_release(root / "other", per_task=5, more_v2_users=30)
    return {
        "a": build_dataset(rel, root / "a", progress=False)["out"],
        "again": build_dataset(rel, root / "again", progress=False)["out"],
        "seed7": build_dataset(rel, root / "seed7", seed=7, progress=False)["out"],
        "other": build_dataset(other, root / "other-out", progress=False)["out"],
        "by_conversation": build_dataset(rel, root / "byconv", split_by="conversation", progress=False)[
            "out"
        ],
    }


def _digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _ids(folder, table, split, source=None):
    return sorted(
        r["conversation_id"]
        for r in rows(Path(folder), table, split)
        if source is None or r.get("source") == source
    )


def test_fixture_build_is_stable_and_seeded(fixture_builds):
    a, again, seed7 = (Path(fixture_builds[k]) for k in ("a", "again", "seed7"))
    assert _digest(a) == _digest(again)
    # 32 human_exp_V2 people cut 26:3:3; 2 real_human_user people: 8:1:1 of 2 is 2:0:0
    users = {
        s: {r["user_id"] for r in rows(a, "profile_identification", s) if r["source"] == 1} for s in SPLIT3
    }
    assert [len(users[s]) for s in SPLIT3] == [28, 3, 3]
    assert _ids(a, "profile_identification", "test", 1) != _ids(seed7, "profile_identification", "test", 1)


def test_human_test_split_does_not_depend_on_the_synthetic_rows(fixture_builds):
    a, other = Path(fixture_builds["a"]), Path(fixture_builds["other"])
    synthetic = [sum(len(_ids(f, "profile_identification", s, 0)) for s in SPLIT3) for f in (a, other)]
    assert synthetic == [15, 25]
    for split in SPLIT3:
        assert _ids(a, "profile_identification", split, 1) == _ids(other, "profile_identification", split, 1)


def test_human_intent_split_by_conversation(fixture_builds):
    folder = Path(fixture_builds["by_conversation"])
    owner: dict[str, set] = {}
    for split in SPLIT3:
        for r in rows(folder, "human_intent_utterances", split):
            owner.setdefault(r["conversation_id"], set()).add(split)
    assert len(owner) == 3 and all(len(s) == 1 for s in owner.values())


def test_fixture_rows(fixture_builds):
    folder = Path(fixture_builds["a"])
    convs = {r["conversation_id"]: r for r in rows(folder, "human_conversations")}
    c = convs["real_human_user-User_0-travel_planning-3"]
    assert [t["intents"] for t in c["turns"] if t["role"] == "user"] == [[0], [1, 0], [2]]
    assert c["strategy_v2"] == {"final": {"order": "Breadth", "feedback": "Both"}, "runs": []}
    assert c["strategy_human"] is None and c["assistant_model"] is None
    assert c["profile"]["personality"] == ["Introverted", "Optimistic"]
    pid = {r["conversation_id"]: r for s in SPLIT3 for r in rows(folder, "profile_identification", s)}
    synthetic = pid["recipe_planning-0"]
    assert (synthetic["source"], synthetic["study"], synthetic["user_id"]) == (0, None, "LLM_agent_user/0")
    assert (
        synthetic["personality"] == [2]
        and synthetic["occupation"] == [2]
        and synthetic["travel_habits"] == []
    )
    assert synthetic["text_en"].startswith("user says 0 in recipe planning")
    human = pid["real_human_user-User_0-travel_planning-3"]
    assert human["text"].split("\n") == [f"用户0的问题{i}（旅行规划）" for i in range(3)]
    assert human["occupation"] == [0] and human["other_aspects"] == [1]
    for name in HUMAN_TABLES:
        assert datasets.load_dataset(str(folder), name)
    card = (Path(fixture_builds["by_conversation"]) / "README.md").read_text(encoding="utf-8")
    assert "- **Splits:** 8:1:1 by conversation, the unit" in card


def test_corpus_vocabulary_is_in_release_order(tmp_path):
    from recllmsim_hf.sources.staging import stage_source

    staged = stage_source(make_full_release(tmp_path / "rel"), tmp_path / "staged", progress=False)
    assert read_vocabulary(staged)["personality"] == ["Introverted", "Optimistic", "Curious", "Others"]


def test_context_is_the_nearest_assistant_turn(tmp_path):
    """A person may write twice in a row: the context is the answer before, not their own turn."""
    import json

    root = make_full_release(tmp_path / "rel")
    path = root / "real_human_user/User_1/礼物准备/5.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["history"].insert(3, {"role": "user", "content": "补充一句", "intent": ["其它"]})
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = Path(build_dataset(root, tmp_path / "out", progress=False)["out"])
    got = {
        r["turn_index"]: r["context"]
        for r in rows(out, "human_intent_utterances")
        if r["conversation_id"] == "real_human_user-User_1-preparing_gifts-5"
    }
    assert got == {0: "", 2: "助手的回答0", 3: "助手的回答0", 5: "助手的回答1"}


def test_builder_reads_a_release_source_directly(tmp_path):
    """The builder's features of profile_identification come from the release before anything is staged."""
    from recllmsim_hf.loading_script.recllmsim import RecLLMSim

    root = make_full_release(tmp_path / "rel", more_v2_users=10)
    builder = RecLLMSim(config_name="profile_identification", source=str(root), cache_dir=str(tmp_path / "c"))
    assert builder.info.features["occupation"].feature.names == ["Student", "Engineer", "Others"]
    builder.download_and_prepare()
    ds = builder.as_dataset()
    assert sum(ds[s].num_rows for s in SPLIT3) == 15 + 17
    assert set(ds["test"]["source"]) == {1}  # 2 synthetic people: all in train (8:1:1 of 2)


def test_the_five_configs_are_the_same_with_or_without_the_human_studies(tmp_path):
    from release_fixture import make_release

    from recllmsim_hf.features import TABLES

    full = Path(build_dataset(make_full_release(tmp_path / "full"), tmp_path / "a", progress=False)["out"])
    only = Path(build_dataset(make_release(tmp_path / "only"), tmp_path / "b", progress=False)["out"])
    for table in TABLES:
        for path in sorted((only / table).glob("*.parquet")):
            assert pq.read_table(path).equals(pq.read_table(full / table / path.name)), path
    assert sorted(p.name for p in only.iterdir() if p.is_dir()) == sorted(TABLES)


def test_card_limitations_do_not_call_the_human_profiles_synthetic(tmp_path):
    from release_fixture import make_release

    full = Path(build_dataset(make_full_release(tmp_path / "full"), tmp_path / "a", progress=False)["out"])
    only = Path(build_dataset(make_release(tmp_path / "only"), tmp_path / "b", progress=False)["out"])
    with_people = (full / "README.md").read_text(encoding="utf-8").split("## Limitations")[1]
    assert "- The users of the synthetic configs are simulated by an LLM;" in with_people
    assert (
        "(`human_profiles`, the `profile` of\n  `human_conversations`) describe real participants"
        in with_people
    )
    assert "- Profiles are synthetic and contain no personal data" not in with_people
    without = (only / "README.md").read_text(encoding="utf-8").split("## Limitations")[1]
    assert "- Profiles are synthetic and contain no personal data" in without
    assert "real participants" not in without and "\n\n## Citation" in without
