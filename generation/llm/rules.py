"""Per-model request rules: what each model's API accepts, applied when a request body is built.

The rules are data: ``generation/llm/model_rules.yaml`` (its comments document every field),
with ``--model-rules FILE`` (YAML or JSON of the same shape, ``rules:`` only) laid over them.
:meth:`ModelRules.rule` finds a model's rule: the first built-in rule whose ``match`` glob fits
the model name (else the ``default``), then the first matching user rule replaces the fields it
sets. :func:`shape` rewrites a body the way the rule says: the cap under the model's field name
(raised to ``min_completion_tokens``), refused fields left out, system messages sent in the
model's role, ``reasoning_effort`` added.

Example:
    >>> rules = ModelRules.load()
    >>> body = {"model": "gpt-5-mini", "messages": [{"role": "system", "content": "Be brief."}],
    ...         "temperature": 0.0, "max_tokens": 40}
    >>> sent = shape(rules.rule("gpt-5-mini"), body)
    >>> sent["messages"][0]["role"], "temperature" in sent, sent["max_completion_tokens"]
    ('developer', False, 4096)
    >>> shape(rules.rule("gpt-4o-mini"), body) == body
    True
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recllmsim_hf.errors import InputError

DEFAULT_RULES = Path(__file__).with_name("model_rules.yaml")
CAP_FIELDS = ("max_tokens", "max_completion_tokens")


class ModelRule(BaseModel):
    """How to ask one family of models (fields documented in ``model_rules.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    min_completion_tokens: int | None = Field(default=None, gt=0)
    reserve_completion_tokens: int = Field(default=4096, gt=0)
    system_role: Literal["system", "developer", "user"] = "system"
    reasoning_effort: str | None = None

    def fits(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.match)

    def cap(self, cap: int | None) -> int | None:
        """The cap actually sent for a requested ``cap`` (None: no cap)."""
        if cap is None or self.min_completion_tokens is None:
            return cap
        return max(cap, self.min_completion_tokens)


class ModelRules:
    """The built-in rules plus the user's; ``rule(model)`` is memoised."""

    def __init__(self, default: ModelRule, rules: list[ModelRule], user: list[ModelRule] = ()):
        self.default, self.rules, self.user = default, list(rules), list(user)
        self._memo: dict[str, ModelRule] = {}

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> ModelRules:
        """The built-in table, with the rules of ``path`` (``--model-rules``) laid over it."""
        data = _read(DEFAULT_RULES)
        default = _rule(DEFAULT_RULES, "default", data.get("default") or {})
        rules = [_rule(DEFAULT_RULES, f"rules[{i}]", r) for i, r in enumerate(data.get("rules") or [])]
        user = []
        if path is not None:
            extra = _read(Path(path))
            unknown = sorted(set(extra) - {"rules"})
            if unknown:
                raise InputError(f"{path}: unknown key {unknown[0]!r}; a rules file holds `rules:` only")
            for i, r in enumerate(extra.get("rules") or []):
                rule = _rule(Path(path), f"rules[{i}]", r)
                if not rule.match:
                    raise InputError(f"{path}: rules[{i}].match: give at least one model pattern, but got []")
                user.append(rule)
        return cls(default, rules, user)

    def rule(self, model: str) -> ModelRule:
        """The rule of ``model`` (see the module docstring)."""
        if model not in self._memo:
            base = next((r for r in self.rules if r.fits(model)), None)
            rule = self.default if base is None else _over(self.default, base)
            mine = next((r for r in self.user if r.fits(model)), None)
            self._memo[model] = rule if mine is None else _over(rule, mine)
        return self._memo[model]


def _over(base: ModelRule, top: ModelRule) -> ModelRule:
    return base.model_copy(update={k: getattr(top, k) for k in top.model_fields_set})


def shape(rule: ModelRule, body: dict) -> dict:
    """``body`` as ``rule``'s model accepts it (a new dict; field order kept)."""
    out: dict = {}
    cap = None
    for key, value in body.items():
        if key in CAP_FIELDS:
            cap = value if cap is None else cap
            out.setdefault("__cap__", None)  # keeps the cap's position
            continue
        if key in rule.drop:
            continue
        if key == "messages" and rule.system_role != "system":
            value = [{**m, "role": rule.system_role} if m.get("role") == "system" else m for m in value]
        out[key] = value
    if "__cap__" in out:
        sent = rule.cap(cap)
        out = {(rule.max_tokens_field if k == "__cap__" else k): (sent if k == "__cap__" else v)
               for k, v in out.items()}  # fmt: skip
    if rule.reasoning_effort is not None and "reasoning_effort" not in out:
        out["reasoning_effort"] = rule.reasoning_effort
    return out


def _read(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read the model rules ({e.strerror}); check --model-rules") from None
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0]
        raise InputError(f"{path}: not valid YAML/JSON ({first}); fix the rules file") from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: a rules file must be a mapping with `rules:`, but got {type(data).__name__}; "
            "see generation/llm/model_rules.yaml"
        )
    return data


def _rule(path: Path, where: str, value: object) -> ModelRule:
    if isinstance(value, dict) and isinstance(value.get("match"), str):
        value = {**value, "match": [value["match"]]}
    try:
        return ModelRule.model_validate(value)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputError(
            f"{path}: {where}.{field}: {err['msg']}, but got {err.get('input')!r}; "
            "see generation/llm/model_rules.yaml for the fields"
        ) from None
