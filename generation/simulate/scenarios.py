"""The scenario catalog: task templates with variables, expanded into :class:`Scenario` records.

The built-in catalog (``scenarios.yaml`` beside this module) holds the paper's four
tasks and selects the 22 scenarios of the RecLLMSim release; users add tasks with
their own YAML files in the same format (documented at the top of ``scenarios.yaml``).
Every file is validated, and an error names the file, the line, the field and the
bad value.

Scenario ids are derived from (task, round, chosen keys), never from positions:
``<task-slug>-r<round>-<first 8 hex of sha256(canonical JSON)>``, so they stay the
same when a template is reworded or its variables are reordered.

Example:
    >>> scenarios = load_scenarios()
    >>> len(scenarios), sorted({s.task for s in scenarios})[0]
    (22, 'preparing gifts')
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from recllmsim_hf.errors import InputError, Problem
from recllmsim_hf.schema import Scenario

BUILTIN_CATALOG = Path(__file__).with_name("scenarios.yaml")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_DEPTH = 8


def _text(value: Any) -> Any:
    # YAML reads `30` or `2024` as numbers; a template value is always text.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class DerivedSpec(BaseModel):
    """A text chosen by the key of another variable (e.g. the festival of a gift recipient)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from", min_length=1)
    values: dict[str, str] = Field(min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _as_text(cls, v: Any) -> Any:
        return {str(k): _text(x) for k, x in v.items()} if isinstance(v, dict) else v


class TaskSpec(BaseModel):
    """One task template of a catalog file (see the format in ``scenarios.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1)
    round: int = Field(default=1, ge=1)
    template: str = Field(min_length=1)
    variables: dict[str, dict[str, str]] = Field(default_factory=dict)
    derived: dict[str, DerivedSpec] = Field(default_factory=dict)
    scenarios: list[dict[str, str]] | None = None

    @field_validator("variables", mode="before")
    @classmethod
    def _keyed(cls, v: Any) -> Any:
        # A list of values is shorthand for {value: value}.
        if not isinstance(v, dict):
            return v
        out: dict[str, Any] = {}
        for name, values in v.items():
            if isinstance(values, list):
                values = {str(_text(x)): _text(x) for x in values}
            elif isinstance(values, dict):
                values = {str(k): _text(x) for k, x in values.items()}
            out[str(name)] = values
        return out

    @field_validator("scenarios", mode="before")
    @classmethod
    def _keys_as_text(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{str(k): str(_text(x)) for k, x in s.items()} if isinstance(s, dict) else s for s in v]
        return v


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    tasks: list[TaskSpec] = Field(min_length=1)


@dataclass
class _Located:
    """A parsed file plus the line of every path in it, for error messages."""

    name: str
    lines: dict[tuple, int]

    def where(self, *path: Any) -> str:
        path = tuple(str(p) for p in path)
        while path and path not in self.lines:
            path = path[:-1]
        return f"{self.name}:{self.lines.get(path, 1)}"

    def error(self, path: Sequence[Any], value: Any, message: str) -> InputError:
        field = ".".join(str(p) for p in path)
        problem = Problem(self.where(*path), field, value, message)
        return InputError(f"{problem}; fix the catalog file")


def _node_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (str(key.value),)
            lines[sub] = key.start_mark.line + 1
            _node_lines(value, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, path + (str(i),), lines)


# A catalog expanded (every alias replaced by what it names) holds at most this many YAML nodes;
# the paper's catalog has ~300. Nested aliases grow exponentially (a "billion laughs" file).
MAX_EXPANDED_NODES = 100_000


def _check_expansion(root: yaml.Node, name: str) -> None:
    """Refuse a catalog whose aliases expand beyond :data:`MAX_EXPANDED_NODES` (in linear time)."""
    sizes: dict[int, int] = {}
    aliased = 0
    order, stack = [], [root]
    while stack:  # post-order without recursion: children are sized before their parents
        node = stack.pop()
        if id(node) in sizes:
            aliased += 1
            continue
        sizes[id(node)] = 0
        order.append(node)
        children = node.value if isinstance(node, yaml.SequenceNode) else []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        stack.extend(children)
    for node in reversed(order):
        children = node.value if isinstance(node, yaml.SequenceNode) else []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children), MAX_EXPANDED_NODES + 1)
    if sizes[id(root)] > MAX_EXPANDED_NODES:
        raise InputError(
            f"{name}: YAML aliases expand to more than {MAX_EXPANDED_NODES:,} values ({aliased} alias uses); "
            "write the catalog out without nested aliases (*name)"
        )


def parse_catalog(text: str, name: str) -> list[TaskSpec]:
    """Parse and validate one catalog file's text; ``name`` is used in error messages.

    Example:
        >>> specs = parse_catalog("tasks:\\n- task: t\\n  template: 'Go {where}.'\\n"
        ...                       "  variables: {where: [home, out]}\\n", "mine.yaml")
        >>> [s.scenario_id.split('-')[:2] for s in expand(specs[0], "mine.yaml")]
        [['t', 'r1'], ['t', 'r1']]
    """
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        node = yaml.compose(text, Loader=loader)
        if node is not None:
            _check_expansion(node, name)
        data = loader(text).construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        reason = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"{name}{line}: not valid YAML ({reason}); fix the catalog file") from None
    located = _Located(name, {})
    if node is not None:
        _node_lines(node, (), located.lines)
    if not isinstance(data, dict):
        raise located.error((), type(data).__name__, "a catalog file is a mapping with a `tasks:` list")
    try:
        catalog = CatalogFile.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith(("function-", "str")))]
        raise located.error(loc, first.get("input"), first["msg"].lower()) from None
    for i, spec in enumerate(catalog.tasks):
        _check(spec, located, ("tasks", i))
    return catalog.tasks


def _names(text: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1)]


def _check(spec: TaskSpec, loc: _Located, at: tuple) -> None:
    names = set(spec.variables) | set(spec.derived)
    for name, values in spec.variables.items():
        if not values:
            raise loc.error((*at, "variables", name), values, "a variable needs at least one value")
        if name in spec.derived:
            raise loc.error((*at, "derived", name), name, "a derived text may not reuse a variable's name")
    texts: list[tuple[tuple, str]] = [((*at, "template"), spec.template)]
    texts += [((*at, "variables", n, k), t) for n, vs in spec.variables.items() for k, t in vs.items()]
    for name, d in spec.derived.items():
        if d.source not in spec.variables:
            raise loc.error((*at, "derived", name, "from"), d.source, "unknown variable")
        missing = sorted(set(spec.variables[d.source]) - set(d.values))
        extra = sorted(set(d.values) - set(spec.variables[d.source]))
        if missing or extra:
            bad, why = (missing, "has no text for these keys") if missing else (extra, "has unknown keys")
            raise loc.error((*at, "derived", name, "values"), bad, f"{why} of variable '{d.source}'")
        texts += [((*at, "derived", name, "values", k), t) for k, t in d.values.items()]
    used: set[str] = set()
    for path, text in texts:
        for name in _names(text):
            if name not in names:
                raise loc.error(path, "{" + name + "}", f"unknown variable (declared: {sorted(names)})")
            used.add(name)
    for name in spec.variables:
        if name not in used:
            raise loc.error((*at, "variables", name), name, "variable is never used in any text")
    for j, choice in enumerate(spec.scenarios or []):
        where = (*at, "scenarios", j)
        for name, key in choice.items():
            if name not in spec.variables:
                raise loc.error(
                    (*where, name), name, f"unknown variable (declared: {sorted(spec.variables)})"
                )
            if key not in spec.variables[name]:
                raise loc.error(
                    (*where, name), key, f"unknown key of '{name}' ({sorted(spec.variables[name])})"
                )
        missing = sorted(set(spec.variables) - set(choice))
        if missing:
            raise loc.error(where, choice, f"must choose a key for every variable, missing {missing}")
    try:
        for keys in _combinations(spec):
            render(spec, keys)
    except RecursionError:
        raise loc.error((*at, "variables"), spec.task, "values refer to each other in a cycle") from None


def _combinations(spec: TaskSpec) -> list[dict[str, str]]:
    names = list(spec.variables)
    return [dict(zip(names, keys, strict=True)) for keys in itertools.product(*spec.variables.values())]


def render(spec: TaskSpec, keys: dict[str, str]) -> str:
    """The scenario text of ``spec`` for one key per variable (placeholders filled, spaces tidied)."""
    env = {name: spec.variables[name][key] for name, key in keys.items()}
    env.update({name: d.values[keys[d.source]] for name, d in spec.derived.items()})

    def fill(text: str, depth: int) -> str:
        if depth > _MAX_DEPTH:
            raise RecursionError(text)

        def sub(m: re.Match) -> str:
            if m.group(1) is None:
                return m.group(0)[0]
            return fill(env[m.group(1)], depth + 1)

        return _PLACEHOLDER.sub(sub, text)

    text = fill(spec.template, 0)
    return "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.strip().splitlines())


def slug(text: str) -> str:
    """Lower-case ASCII words joined by dashes: ``slug("Travel planning") == "travel-planning"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "task"


def scenario_id(task: str, round: int, keys: dict[str, str]) -> str:
    """The stable id of a scenario (a documented contract; see the module docstring)."""
    canon = json.dumps({"keys": keys, "round": round, "task": task}, sort_keys=True, separators=(",", ":"))
    return f"{slug(task)}-r{round}-{hashlib.sha256(canon.encode()).hexdigest()[:8]}"


def expand(spec: TaskSpec, catalog: str) -> list[Scenario]:
    """The scenarios of one task: its ``scenarios:`` selection, else every combination."""
    combos = _combinations(spec)
    index = {tuple(sorted(c.items())): i for i, c in enumerate(combos)}
    chosen = spec.scenarios if spec.scenarios is not None else combos
    return [
        Scenario(
            scenario_id=scenario_id(spec.task, spec.round, keys),
            task=spec.task,
            round=spec.round,
            text=render(spec, keys),
            variables=dict(keys),
            extra={"catalog": catalog, "combination_index": index[tuple(sorted(keys.items()))]},
        )
        for keys in chosen
    ]


def load_scenarios(
    catalogs: Iterable[str | Path] = (), *, builtin: bool = True, tasks: Sequence[str] | None = None
) -> list[Scenario]:
    """All scenarios of the built-in catalog (unless ``builtin=False``) plus ``catalogs``.

    ``tasks`` keeps only the named tasks (all rounds). Ids must be unique over all files.

    Example:
        >>> [s.scenario_id for s in load_scenarios(tasks=["recipe planning"])][:1]
        ['recipe-planning-r1-...']  # doctest: +SKIP
    """
    files: list[tuple[str, str]] = []
    if builtin:
        files.append(("builtin", BUILTIN_CATALOG.read_text(encoding="utf-8")))
    for path in catalogs:
        try:
            files.append((str(path), Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise InputError(f"{path}: cannot read the catalog file ({reason}); check the path") from None
    if not files:
        raise InputError("no scenario catalog: pass --catalog FILE or keep the built-in catalog")
    out: list[Scenario] = []
    seen: dict[str, str] = {}
    for name, text in files:
        label = "builtin" if name == "builtin" else Path(name).name
        for spec in parse_catalog(text, name):
            for s in expand(spec, label):
                if s.scenario_id in seen:
                    raise InputError(
                        f"{name}: task {s.task!r} round {s.round}: scenario {s.variables} is already defined "
                        f"in {seen[s.scenario_id]}; rename the task, change its round or drop the duplicate"
                    )
                seen[s.scenario_id] = name
                out.append(s)
    if tasks:
        known = sorted({s.task for s in out})
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise InputError(f"--tasks: unknown task {unknown[0]!r}; choose from {known}")
        out = [s for s in out if s.task in set(tasks)]
    return out
