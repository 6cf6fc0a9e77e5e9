"""Structured outputs on every server: json_schema, else json_object, else plain prompting.

Modes (``--structured-output``):

- ``json_schema``: the strict schema as ``response_format`` (OpenAI, vLLM, recent Ollama);
- ``json_object``: ``response_format={"type": "json_object"}`` and the schema in the prompt
  (servers with a JSON mode but no schemas);
- ``prompt``: the schema in the prompt only, the JSON object taken from the reply text;
- ``auto`` (the default): start with ``json_schema``; an endpoint that answers a 400/422 naming
  the response format falls back to the next mode once, for the rest of the run.

Every reply is validated with the same pydantic model whatever the mode. Markdown fences
(```json ... ```) are stripped before parsing in every mode.

Example:
    >>> extract_json('```json\\n{"intent": "Search"}\\n```', "json_schema")
    '{"intent": "Search"}'
    >>> extract_json('Sure! {"intent": "Search"} Hope this helps.', "prompt")
    '{"intent": "Search"}'
    >>> next_mode("json_schema"), next_mode("prompt")
    ('json_object', None)
"""

from __future__ import annotations

import json
import re

MODES = ("json_schema", "json_object", "prompt")
CHOICES = ("auto", *MODES)
INSTRUCTION = (
    "Answer with one JSON object and nothing else (no Markdown, no comments). "
    "It must follow this JSON schema:\n{schema}"
)
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?```\s*$", re.DOTALL)
_NAMES = {"json_schema": ("json_schema", "response_format", "structured output", "guided"),
          "json_object": ("json_object", "response_format", "json mode")}  # fmt: skip


def check_mode(value: str) -> str:
    """Validate ``--structured-output``."""
    from recllmsim_hf.errors import InputError

    if value not in CHOICES:
        raise InputError(f"--structured-output: must be one of {', '.join(CHOICES)}, but got {value!r}")
    return value


def first_mode(setting: str) -> str:
    return "json_schema" if setting == "auto" else setting


def next_mode(mode: str) -> str | None:
    """The mode ``auto`` falls back to after ``mode`` is refused."""
    i = MODES.index(mode)
    return MODES[i + 1] if i + 1 < len(MODES) else None


def refused(mode: str, status: int | None, message: str) -> bool:
    """Whether an error says the server does not take this mode's ``response_format``."""
    if mode not in _NAMES or status not in (400, 422):
        return False
    text = message.lower()
    return any(name in text for name in _NAMES[mode])


def response_format(mode: str, name: str, schema: dict) -> dict | None:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def with_instruction(messages: list[dict], schema: dict) -> list[dict]:
    """``messages`` with the schema instruction appended to the first system message (or a new
    one in front). The instruction names JSON, as OpenAI's JSON mode requires."""
    text = INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False))
    out = [dict(m) for m in messages]
    for m in out:
        if m.get("role") == "system" and isinstance(m.get("content"), str):
            m["content"] = f"{m['content']}\n\n{text}"
            return out
    return [{"role": "system", "content": text}, *out]


def extract_json(text: str, mode: str) -> str:
    """The JSON text of a reply: fences stripped; in ``prompt`` mode, the outermost ``{...}``."""
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
    if mode == "prompt":
        start, end = text.find("{"), text.rfind("}")
        if start != -1 and end > start:
            return text[start : end + 1]
    return text.strip()
