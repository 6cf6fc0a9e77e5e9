"""Per-role flag values: ``--param [ROLE:]KEY=VALUE`` and ``--api-key-env [ROLE:]NAME``.

``--param`` adds one field to the request body of every call (or, with a ``ROLE:`` prefix, of
one role's calls): ``--param top_k=40``, ``--param assistant:repetition_penalty=1.1``,
``--param 'chat_template_kwargs={"enable_thinking": false}'``. VALUE is read as JSON
(numbers, booleans, null, lists, objects, quoted strings); a VALUE that is not JSON is taken
as a plain string (``--param reasoning_effort=low``). A role's own values win over the
unprefixed ones; the fields are laid over the body last, after the model's rule, so they
can set anything (they are part of the cache key like every body field).

``--api-key-env NAME`` reads the key from the environment variable NAME (for every role, or
one with ``ROLE:NAME``), so that a key meant for one server is never sent to another.

Example:
    >>> parse_params(["top_k=40", "assistant:top_k=20", "stop=[\\"END\\"]"], ("simulator", "assistant"))
    {'simulator': {'top_k': 40, 'stop': ['END']}, 'assistant': {'top_k': 20, 'stop': ['END']}}
    >>> parse_key_envs(["MY_KEY", "assistant:OTHER_KEY"], ("simulator", "assistant"))
    {'simulator': 'MY_KEY', 'assistant': 'OTHER_KEY'}
"""

from __future__ import annotations

import json
import re

from recllmsim_hf.errors import InputError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = ("model", "messages")


def _split_role(text: str, roles: tuple[str, ...], flag: str) -> tuple[str | None, str]:
    head, sep, rest = text.partition(":")
    if sep and head in roles:
        return head, rest
    if sep and _KEY.match(head) and "=" not in head and flag == "--api-key-env":
        raise InputError(f"{flag}: unknown role {head!r} in {text!r}; roles: {', '.join(roles)}")
    return None, text


def parse_params(values: list[str] | None, roles: tuple[str, ...]) -> dict[str, dict]:
    """``--param`` values -> ``{role: {field: value}}`` for every role in ``roles``."""
    common: dict = {}
    own: dict[str, dict] = {role: {} for role in roles}
    for text in values or []:
        role, item = _split_role(text, roles, "--param")
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise InputError(f"--param: expected [ROLE:]KEY=VALUE (e.g. top_k=40), but got {text!r}")
        if key in RESERVED:
            raise InputError(f"--param: {key!r} cannot be set with --param (use --model), in {text!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        (own[role] if role else common)[key] = value
    return {role: {**common, **own[role]} for role in roles}


def parse_key_envs(values: list[str] | None, roles: tuple[str, ...]) -> dict[str, str]:
    """``--api-key-env`` values -> ``{role: variable name}`` (roles without one are left out)."""
    common: str | None = None
    own: dict[str, str] = {}
    for text in values or []:
        role, name = _split_role(text, roles, "--api-key-env")
        if not _ENV.match(name):
            raise InputError(
                f"--api-key-env: expected [ROLE:]NAME of an environment variable (e.g. VLLM_API_KEY), "
                f"but got {text!r}"
            )
        if role:
            own[role] = name
        else:
            common = name
    return {role: own.get(role) or common for role in roles if own.get(role) or common}
