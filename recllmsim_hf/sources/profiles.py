"""The release's profile vocabulary (``user_profiling/desc_translated.json``); profile values on it.

The vocabulary names, for each attribute of :data:`~recllmsim_hf.human_schema.PROFILE_ATTRIBUTES`,
its Chinese values and their English names (ClassLabel names of ``profile_identification``, in
the file's order). Human profiles state Chinese values (:func:`map_profile`); the synthetic
``profile_mapped`` states ``{en, zh}`` pairs (:func:`check_synthetic`). A value outside the
vocabulary is a problem, never dropped or replaced.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from recllmsim_hf.errors import Problem
from recllmsim_hf.human_schema import (
    BACKGROUNDS_ZH,
    GENDERS_ZH,
    PROFILE_ATTRIBUTES,
    SINGLE_VALUE_ATTRIBUTES,
    SYNTHETIC_FIELDS,
)

VOCABULARY_FILE = "user_profiling/desc_translated.json"
Vocabulary = dict[str, dict[str, str]]  # attribute -> {Chinese name: English name}, release order
_PROFILE_MODELLED = {"gender", "age", "background", *PROFILE_ATTRIBUTES}


def reporter(problems: list[Problem], where: str):
    """``bad(field, value, message)`` appends one problem of the file ``where``."""
    return lambda field, value, message: problems.append(Problem(where, field, value, message))


def read_vocabulary(tree: Path, problems: list[Problem]) -> Vocabulary | None:
    """``desc_translated.json`` checked: every attribute of :data:`PROFILE_ATTRIBUTES`, str -> str,
    English names unique within an attribute (they become ClassLabel names)."""
    path = tree / VOCABULARY_FILE
    before, bad = len(problems), reporter(problems, VOCABULARY_FILE)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        bad("", None, "file is missing; the human profiles need it")
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        bad("", str(e)[:60], "not valid UTF-8 JSON")
        return None
    except RecursionError:
        bad("", "deeply nested lists or objects", "nested too deeply to be the profile vocabulary")
        return None
    if not isinstance(data, dict):
        bad("", type(data).__name__, "expected a JSON object")
        return None
    for attribute in PROFILE_ATTRIBUTES:
        names = data.get(attribute)
        if not isinstance(names, dict) or not names:
            bad(attribute, names, "expected an object {Chinese: English}")
            continue
        for zh, en in names.items():
            if not isinstance(en, str) or not en:
                bad(f"{attribute}.{zh}", en, "must be an English name")
        english = [en for en in names.values() if isinstance(en, str)]
        for en, n in Counter(english).items():
            if n > 1:
                bad(attribute, en, "English name given to two values")
    for attribute in sorted(set(data) - set(PROFILE_ATTRIBUTES)):
        bad(attribute, data[attribute], "unknown profile attribute")
    if len(problems) > before:
        return None
    return {attribute: dict(data[attribute]) for attribute in PROFILE_ATTRIBUTES}


def map_profile(raw: Any, vocab: Vocabulary, where: str, problems: list[Problem]) -> tuple[dict, dict]:
    """A human ``profile`` as (HumanProfile fields in Chinese and English, keys it does not model)."""
    bad = reporter(problems, where)
    if not isinstance(raw, dict):
        bad("profile", raw, "expected an object")
        return {}, {}
    out: dict[str, Any] = {}
    gender = raw.get("gender")
    if gender is not None:
        if not isinstance(gender, str) or gender not in GENDERS_ZH:
            bad("profile.gender", gender, f"must be one of {list(GENDERS_ZH)}")
        else:
            out["gender"], out["gender_zh"] = gender, GENDERS_ZH[gender]
    age = raw.get("age")
    if age is not None:
        if isinstance(age, bool) or not isinstance(age, int) or not 0 < age < 130:
            bad("profile.age", age, "must be an age in years (integer)")
        out["age"] = age
    background = raw.get("background")
    if background is not None:
        if not isinstance(background, str) or background not in BACKGROUNDS_ZH:
            bad(
                "profile.background", background, f"unknown background, must be one of {list(BACKGROUNDS_ZH)}"
            )
        else:
            out["background"], out["background_zh"] = BACKGROUNDS_ZH[background], background
    for attribute in PROFILE_ATTRIBUTES:
        value = raw.get(attribute)
        single = attribute in SINGLE_VALUE_ATTRIBUTES
        if value is None:
            continue
        values = [value] if single else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            kind = "a string" if single else "a list of strings"
            bad(f"profile.{attribute}", value, f"must be {kind}")
            continue
        for v in values:
            if v not in vocab[attribute]:
                bad(f"profile.{attribute}", v, f"not a value of {attribute} in {VOCABULARY_FILE}")
        english = [vocab[attribute].get(v) for v in values]
        out[attribute], out[f"{attribute}_zh"] = (english[0], values[0]) if single else (english, values)
    return out, {f"profile.{k}": v for k, v in raw.items() if k not in _PROFILE_MODELLED}


def check_synthetic(profile, vocab: Vocabulary, where: str, problems: list[Problem]) -> None:
    """Check a synthetic :class:`~recllmsim_hf.schema.Profile`'s structured fields (from
    ``profile_mapped``) against the vocabulary: each (zh, en) pair must be one of its entries."""
    bad = reporter(problems, where)
    if profile.fields is None:
        return
    for attribute, key in PROFILE_ATTRIBUTES.items():
        field = SYNTHETIC_FIELDS[attribute]
        en, zh = getattr(profile.fields, field), getattr(profile.fields_zh, field, None)
        en = en if isinstance(en, list) else [en] if en is not None else []
        zh = zh if isinstance(zh, list) else [zh] if zh is not None else []
        for e, z in zip(en, zh, strict=False):
            if vocab[attribute].get(z) != e:
                bad(
                    f"profile_mapped.{key}",
                    {"en": e, "zh": z},
                    f"not a value of {attribute} in {VOCABULARY_FILE}",
                )
