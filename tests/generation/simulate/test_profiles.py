"""Profile generation against the local fake OpenAI server: batches, restated requirements,
duplicate detection and regeneration, resume, and bad input."""

from __future__ import annotations

import json
import random

import pytest
from fake_openai import FakeOpenAI
from recllmsim_hf.generation.llm.options import runner_from_options
from recllmsim_hf.generation.simulate.profiles import (
    Deduplicator,
    ProfileDraft,
    generate_profiles,
    problem_of,
    profile_text,
    to_fields,
)

from recllmsim_hf.corpus import read_jsonl
from recllmsim_hf.errors import InputError, ServiceError, ValidationFailed
from recllmsim_hf.schema import Profile, ProfileFields

HOBBIES = "chess hiking knitting surfing pottery birding cycling baking painting rowing fishing".split()
HOBBIES += ["dancing", "karaoke"]
PLACES = "mountains beaches deserts islands capitals villages lakes forests museums vineyards castles".split()
FOODS = "noodles sushi curry tacos dumplings salads barbecue pasta stews pastries".split()
JOBS = "nurse welder teacher pilot chef lawyer farmer editor plumber dentist architect".split()


def draft(j: int) -> dict:
    """A distinct profile for every j (different words in every field)."""
    return {
        "gender": ["Female", "Male"][j % 2],
        "age": str(20 + j % 55),
        "personality": [
            f"{['calm', 'lively', 'shy', 'bold', 'curious'][j % 5]} at work",
            "dislikes rudeness",
        ],
        "occupation": f"{JOBS[j % 11]} in {PLACES[(j * 3) % 11]} town",
        "daily_interests_and_hobbies": [HOBBIES[j % 13], HOBBIES[(j * 5 + 2) % 13] + " on weekends"],
        "travel_habits": [f"visits {PLACES[j % 11]}", f"dislikes {PLACES[(j + 4) % 11]}"],
        "dining_preferences": [f"loves {FOODS[j % 10]}", f"avoids {FOODS[(j * 7 + 1) % 10]}"],
        "spending_habits": [f"saves for {HOBBIES[(j + 6) % 13]} gear"],
        "other_aspects": [f"owns {j % 4 + 1} {['cats', 'dogs', 'bikes', 'plants'][j % 4]}"],
    }


def replier(schema, messages, body):
    """Five profiles per request: three new, one exact duplicate, one near duplicate."""
    base = random.Random(body["seed"]).randrange(0, 10_000) * 3
    exact = {**draft(base), "gender": draft(base)["gender"].upper() + "."}
    near = {**draft(base + 1), "other_aspects": draft(base + 1)["other_aspects"] + ["likes tea"]}
    return {"profiles": [draft(base), draft(base + 1), draft(base + 2), exact, near]}


def factory(srv, **kw):
    return lambda corpus: runner_from_options(
        corpus,
        base_url=srv.base_url,
        api_key="sk-prof",
        model="gen-1",
        backoff_base=0.001,
        backoff_max=0.01,
        **kw,
    )


def test_profile_text_and_fields():
    fields = to_fields(ProfileDraft(**draft(3)))
    text = profile_text(fields)
    lines = text.splitlines()
    assert len(lines) == 9
    assert lines[0] == "1. Gender: Male" and lines[1] == "2. Age: 23"
    assert lines[6] == "7. Dining Preferences: loves tacos; avoids curry"
    assert problem_of(fields) is None


def test_problem_of_flags_empty_fields_and_missing_dislikes():
    data = draft(1)
    assert problem_of(to_fields(ProfileDraft(**{**data, "travel_habits": [" "]}))) == "empty Travel Habits"
    happy = {
        k: ([x for x in v if "dislike" not in x and "avoid" not in x] or ["nice"]) for k, v in data.items()
    }
    happy.update(gender="Male", age="30", occupation="chef")
    assert problem_of(to_fields(ProfileDraft(**happy))) == "no dislikes"


def test_deduplicator_exact_near_and_distinct():
    d = Deduplicator(0.8)
    first = to_fields(ProfileDraft(**draft(0)))
    assert d.check(first) is None
    assert d.check(ProfileFields(**{**first.model_dump(), "gender": "FEMALE!"})) == "exact"
    near = {**first.model_dump(), "other_aspects": first.other_aspects + ["likes tea"]}
    assert d.check(ProfileFields(**near)) == "near"
    assert all(d.check(to_fields(ProfileDraft(**draft(j)))) is None for j in range(1, 30))


def test_generate_profiles_dedups_restates_and_resumes(tmp_path):
    with FakeOpenAI(json_replier=replier) as srv:
        summary = generate_profiles(
            tmp_path, 12, factory(srv), batch_size=5, chains=2, seed=7, progress=False
        )
        bodies = [r["body"] for r in srv.requests]
        first_count = srv.count
        profiles = list(read_jsonl(tmp_path / "profiles.jsonl", Profile))
        assert [p.profile_id for p in profiles] == [str(i) for i in range(12)]
        assert len({p.text for p in profiles}) == 12
        assert summary["total"] == 12 and summary["generated"] == 12
        assert summary["exact_duplicates"] >= 2 and summary["near_duplicates"] >= 2
        assert summary["drafts"] == 5 * summary["llm"]["calls"]
        accepted = (
            summary["drafts"] - summary["exact_duplicates"] - summary["near_duplicates"] - summary["invalid"]
        )
        assert accepted >= 12  # the surplus of the last round is dropped
        assert all(p.fields is not None and p.text == profile_text(p.fields) for p in profiles)

        # Every request restates the requirements: in the system prompt, and again in each continuation.
        assert all("likes AND dislikes" in b["messages"][0]["content"] for b in bodies)
        continuations = [b for b in bodies if len(b["messages"]) > 2]
        assert continuations, "a second round of each chain continues the chat"
        for b in continuations:
            assert b["messages"][-1]["content"].startswith(
                "Write 5 more profiles. Remember the requirements:"
            )
            assert "These occupations are already taken" in b["messages"][-1]["content"]
            assert len(b["messages"]) <= 2 + 2 * 3  # system + the last 3 batches + the new request
        assert all(b["response_format"]["type"] == "json_schema" for b in bodies)

        # Same command again: nothing to do, not one request, same bytes.
        before = (tmp_path / "profiles.jsonl").read_bytes()
        again = generate_profiles(tmp_path, 12, factory(srv), batch_size=5, chains=2, seed=7, progress=False)
        assert srv.count == first_count and again["generated"] == 0
        assert (tmp_path / "profiles.jsonl").read_bytes() == before

        # A larger -n keeps the existing profiles and adds the missing ones.
        more = generate_profiles(tmp_path, 15, factory(srv), batch_size=5, chains=2, seed=7, progress=False)
        grown = list(read_jsonl(tmp_path / "profiles.jsonl", Profile))
        assert more["existing"] == 12 and more["generated"] == 3
        assert grown[:12] == profiles and len({p.text for p in grown}) == 15
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"]["profiles"] == 15
    assert manifest["generation"]["profiles"]["model"] == "gen-1"
    assert "sk-prof" not in (tmp_path / "manifest.json").read_text()


def test_same_seed_same_profiles(tmp_path):
    with FakeOpenAI(json_replier=replier) as srv:
        generate_profiles(tmp_path / "a", 8, factory(srv), chains=3, seed=1, progress=False)
        generate_profiles(tmp_path / "b", 8, factory(srv, no_cache=True), chains=3, seed=1, progress=False)
    assert (tmp_path / "a/profiles.jsonl").read_bytes() == (tmp_path / "b/profiles.jsonl").read_bytes()


def test_a_model_that_repeats_itself_is_stopped_with_one_line(tmp_path):
    with FakeOpenAI(json_replier=lambda schema, messages, body: {"profiles": [draft(0)]}) as srv:
        with pytest.raises(ServiceError) as info:
            generate_profiles(tmp_path, 3, factory(srv), chains=1, max_rounds=4, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "profiles: only 1 of 3 distinct profiles after 4 rounds (3 exact and 0 near duplicates"
    )
    assert len(list(read_jsonl(tmp_path / "profiles.jsonl", Profile))) == 1  # what was accepted is kept


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match=r"-n: must be at least 1, but got -3"):
        generate_profiles(tmp_path, -3, None, progress=False)
    with pytest.raises(InputError, match=r"--near-threshold: must be in \(0, 1\], but got 1.5"):
        generate_profiles(tmp_path, 3, None, near_threshold=1.5, progress=False)
    broken = b'{"profile_id": "0", "text": "1. Gender: Female"}\n{"profile_id": \n'
    (tmp_path / "profiles.jsonl").write_bytes(broken)
    with pytest.raises(ValidationFailed, match=r"profiles\.jsonl:2: not valid JSON"):
        generate_profiles(tmp_path, 3, None, progress=False)
    assert (tmp_path / "profiles.jsonl").read_bytes() == broken


def test_a_model_whose_drafts_are_all_invalid_is_told_why(tmp_path):
    no_dislikes = {**draft(0), "personality": ["calm"], "travel_habits": ["visits lakes"]}
    no_dislikes["dining_preferences"] = ["loves sushi"]
    with FakeOpenAI(json_replier=lambda schema, messages, body: {"profiles": [no_dislikes]}) as srv:
        with pytest.raises(ServiceError) as info:
            generate_profiles(tmp_path, 2, factory(srv), chains=1, max_rounds=2, progress=False)
    message = str(info.value)
    assert "2 invalid, 0 failed calls; first invalid draft: no dislikes); rerun" in message
    assert "first error" not in message
