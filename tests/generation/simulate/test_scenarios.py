"""The scenario catalog: the built-in 22 scenarios, user catalogs, and one test per invalid case."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from recllmsim_hf.generation.simulate.scenarios import (
    BUILTIN_CATALOG,
    load_scenarios,
    parse_catalog,
    scenario_id,
)

from recllmsim_hf.errors import InputError

GOOD = """\
tasks:
  - task: choosing restaurant
    template: "You want to eat {when} near {place}. {mode_text}"
    variables:
      when: [tonight, tomorrow]
      place: {campus: the campus, station: the station}
      mode: {dine-in: dine in, delivery: order delivery}
    derived:
      mode_text: {from: mode, values: {dine-in: "You will {mode}.", delivery: "You will {mode} {{fast}}."}}
"""


def write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_catalog_gives_the_22_scenarios_of_the_release():
    scenarios = load_scenarios()
    per_task = defaultdict(int)
    for s in scenarios:
        per_task[(s.task, s.round)] += 1
    assert len(scenarios) == 22
    assert dict(per_task) == {
        ("travel planning", 1): 4,
        ("travel planning", 2): 4,
        ("skills learning planning", 1): 5,
        ("recipe planning", 1): 4,
        ("preparing gifts", 1): 5,
    }
    assert len({s.scenario_id for s in scenarios}) == 22
    assert all("{" not in s.text and "}" not in s.text for s in scenarios)


def test_combination_indices_are_the_release_task_context_ids(release_dir):
    # Our variable order follows the original templates, so the position of a scenario in
    # the enumeration is the release's task_context_id: read it from the real files.
    folders = {("travel planning", 1): "travel planning", ("travel planning", 2): "new travel planning"}
    ours = defaultdict(set)
    for s in load_scenarios():
        ours[folders.get((s.task, s.round), s.task)].add(s.extra["combination_index"])
    theirs = defaultdict(set)
    for path in (release_dir / "LLM_agent_user").glob("*/*.json"):
        theirs[path.parent.name].add(json.loads(path.read_text(encoding="utf-8"))["task_context_id"])
    assert dict(ours) == dict(theirs)


def test_gift_scenario_text_fills_nested_and_derived_variables():
    (gift,) = [
        s
        for s in load_scenarios(tasks=["preparing gifts"])
        if s.variables == {"recipient": "nephew", "reason": "birthday"}
    ]
    assert gift.text.startswith("Your nephew's birthday is coming up. You want to give your nephew a gift")
    (festival,) = [
        s for s in load_scenarios() if s.variables.get("reason") == "festival" and "teacher" in s.text
    ]
    assert festival.text.startswith("Teacher's Day is near")


def test_user_catalog_without_selection_gives_every_combination(tmp_path):
    scenarios = load_scenarios([write(tmp_path, GOOD)], builtin=False)
    assert len(scenarios) == 8
    texts = {s.text for s in scenarios}
    assert "You want to eat tonight near the campus. You will order delivery {fast}." in texts
    assert [s.extra["combination_index"] for s in scenarios] == list(range(8))
    assert {s.extra["catalog"] for s in scenarios} == {"mine.yaml"}


def test_user_catalog_adds_to_the_builtin_one_and_tasks_select(tmp_path):
    both = load_scenarios([write(tmp_path, GOOD)])
    assert len(both) == 30
    only = load_scenarios([write(tmp_path, GOOD)], tasks=["choosing restaurant", "recipe planning"])
    assert sorted({s.task for s in only}) == ["choosing restaurant", "recipe planning"]
    assert len(only) == 12


def test_ids_survive_rewording_and_reordering(tmp_path):
    def ids(text: str, name: str) -> dict[str, str]:
        found = load_scenarios([write(tmp_path, text, name)], builtin=False)
        return {json.dumps(s.variables, sort_keys=True): s.scenario_id for s in found}

    changed = GOOD.replace("You want to eat", "You would like to have dinner").replace(
        "      when: [tonight, tomorrow]\n      place: {campus: the campus, station: the station}\n",
        "      place: {station: the station, campus: the campus}\n      when: [tomorrow, tonight]\n",
    )
    assert changed != GOOD
    assert ids(changed, "b.yaml") == ids(GOOD, "a.yaml")
    key = {"when": "tonight", "place": "campus", "mode": "delivery"}
    assert ids(GOOD, "a.yaml")[json.dumps(key, sort_keys=True)] == scenario_id("choosing restaurant", 1, key)
    assert scenario_id("choosing restaurant", 2, key) != scenario_id("choosing restaurant", 1, key)


# -- invalid catalogs: one test each; the message names the file and the line --------------------------


def error_of(text: str, tmp_path: Path) -> str:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_scenarios([path], builtin=False)
    message = str(info.value)
    assert "\n" not in message
    return message.replace(str(tmp_path) + "/", "")


def test_unknown_variable_in_template_names_file_and_line(tmp_path):
    text = GOOD.replace(
        '"You want to eat {when} near {place}. {mode_text}"', '"Eat {when} at {plac}. {mode_text}"'
    )
    assert error_of(text, tmp_path) == (
        "mine.yaml:3: tasks.0.template: unknown variable (declared: ['mode', 'mode_text', 'place', 'when']), "
        "but got '{plac}'; fix the catalog file"
    )


def test_unknown_variable_inside_a_value(tmp_path):
    text = GOOD.replace('dine-in: "You will {mode}."', 'dine-in: "You will {moode}."')
    assert error_of(text, tmp_path).startswith(
        "mine.yaml:9: tasks.0.derived.mode_text.values.dine-in: unknown variable"
    )


def test_unknown_variable_in_a_selection(tmp_path):
    text = GOOD + "    scenarios:\n      - {when: tonight, place: campus, mode: delivery, size: big}\n"
    assert error_of(text, tmp_path).startswith("mine.yaml:11: tasks.0.scenarios.0.size: unknown variable")


def test_unknown_key_in_a_selection(tmp_path):
    text = GOOD + "    scenarios:\n      - {when: tonight, place: airport, mode: delivery}\n"
    assert error_of(text, tmp_path).startswith(
        "mine.yaml:11: tasks.0.scenarios.0.place: unknown key of 'place' (['campus', 'station']), "
        "but got 'airport'"
    )


def test_selection_missing_a_variable(tmp_path):
    text = GOOD + "    scenarios:\n      - {when: tonight, mode: delivery}\n"
    assert "tasks.0.scenarios.0: must choose a key for every variable, missing ['place']" in error_of(
        text, tmp_path
    )


def test_unused_variable(tmp_path):
    text = GOOD.replace(
        "      when: [tonight, tomorrow]\n", "      when: [tonight, tomorrow]\n      size: [big]\n"
    )
    assert error_of(text, tmp_path).startswith("mine.yaml:6: tasks.0.variables.size: variable is never used")


def test_derived_from_unknown_variable(tmp_path):
    text = GOOD.replace("{from: mode,", "{from: mood,")
    assert error_of(text, tmp_path).startswith(
        "mine.yaml:9: tasks.0.derived.mode_text.from: unknown variable"
    )


def test_derived_missing_a_key(tmp_path):
    text = GOOD.replace('dine-in: "You will {mode}.", ', "")
    assert (
        "derived.mode_text.values: has no text for these keys of variable 'mode', but got ['dine-in']"
        in error_of(text, tmp_path)
    )


def test_unknown_field(tmp_path):
    text = GOOD.replace("    variables:\n", "    colour: red\n    variables:\n", 1)
    assert error_of(text, tmp_path).startswith("mine.yaml:4: tasks.0.colour: extra inputs are not permitted")


def test_missing_template(tmp_path):
    text = "tasks:\n  - task: t\n    variables: {a: [x]}\n"
    assert error_of(text, tmp_path).startswith("mine.yaml:2: tasks.0.template: field required")


def test_bad_round(tmp_path):
    text = GOOD.replace("  - task: choosing restaurant\n", "  - task: choosing restaurant\n    round: 0\n")
    assert error_of(text, tmp_path).startswith(
        "mine.yaml:3: tasks.0.round: input should be greater than or equal to 1"
    )


def test_empty_variable(tmp_path):
    text = GOOD.replace("[tonight, tomorrow]", "[]")
    assert error_of(text, tmp_path).startswith(
        "mine.yaml:5: tasks.0.variables.when: a variable needs at least one value"
    )


def test_values_referring_to_each_other_in_a_cycle(tmp_path):
    text = "tasks:\n  - task: t\n    template: '{a}'\n    variables:\n      a: ['{b}']\n      b: ['{a}']\n"
    assert "values refer to each other in a cycle" in error_of(text, tmp_path)


def test_yaml_syntax_error_names_the_line(tmp_path):
    text = GOOD.replace("      when: [tonight, tomorrow]", "      when: [tonight, tomorrow")
    message = error_of(text, tmp_path)
    assert message.startswith("mine.yaml:6: not valid YAML") and message.endswith("fix the catalog file")


def test_not_a_mapping(tmp_path):
    assert error_of("- just\n- a list\n", tmp_path).startswith("mine.yaml:1: a catalog file is a mapping")


def test_duplicate_scenarios_across_files(tmp_path):
    first, second = (
        write(tmp_path, GOOD, "a.yaml"),
        write(tmp_path, GOOD.replace("You want", "You wish"), "b.yaml"),
    )
    with pytest.raises(
        InputError,
        match=r"b\.yaml: task 'choosing restaurant' round 1: scenario .* is already defined in .*a\.yaml",
    ):
        load_scenarios([first, second], builtin=False)


def test_unknown_task_in_tasks():
    with pytest.raises(InputError, match=r"--tasks: unknown task 'cooking'; choose from \['preparing gifts'"):
        load_scenarios(tasks=["cooking"])


def test_missing_catalog_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read the catalog file"):
        load_scenarios([tmp_path / "nope.yaml"])


def test_builtin_catalog_parses_on_its_own():
    specs = parse_catalog(BUILTIN_CATALOG.read_text(encoding="utf-8"), "builtin")
    assert [(s.task, s.round) for s in specs][:2] == [("travel planning", 1), ("travel planning", 2)]
