"""Endpoints: where each role's requests go (base URL, key, model), from flags and environment.

Roles are :data:`ROLES`. Resolution order for each role: the per-role environment
overrides ``RECLLMSIM_<ROLE>_BASE_URL`` / ``RECLLMSIM_<ROLE>_API_KEY``, then the flags
``--base-url`` / ``--api-key``, then ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``; for the key,
``--api-key-env [ROLE:]NAME`` (the variable NAME) comes first of all. A key taken from
``OPENAI_API_KEY`` for a host that is not OpenAI's is sent, but said so once on stderr (never
the key itself), since it was probably meant for OpenAI only. Models:
``--<role>-model``, else ``--model``. The key is kept out of ``repr``, ``str`` and
``model_dump`` so that it cannot leak into manifests, logs or caches by accident.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from recllmsim_hf.errors import InputError

ROLES: tuple[str, ...] = ("profile", "simulator", "assistant", "annotator")
OPENAI_HOSTS = ("api.openai.com",)


class Endpoint(BaseModel):
    """Where one role's requests go. ``base_url=None`` means the OpenAI API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = None
    api_key: str | None = Field(default=None, exclude=True, repr=False)
    model: str = Field(min_length=1)


def check_base_url(url: str, flag: str) -> None:
    """Refuse a base URL no request could be sent to: not http(s), no host, a port that is no
    number in 0-65535, an unclosed ``[`` (the one-line error names ``flag`` and the URL)."""
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{flag}: must start with http:// or https://, but got {url!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it checks it: ValueError when out of range or not a number)
    except ValueError as e:
        raise InputError(f"{flag}: not a valid URL ({e}), but got {url!r}") from None
    if not parts.hostname:
        raise InputError(f"{flag}: the URL names no host, but got {url!r}")


def endpoints_from_options(
    base_url: str | None,
    api_key: str | None,
    model: str | None,
    simulator_model: str | None = None,
    assistant_model: str | None = None,
    profile_model: str | None = None,
    annotator_model: str | None = None,
    *,
    environ: dict[str, str] | None = None,
    api_key_env: dict[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
    role_base_url: dict[str, str] | None = None,
    role_api_key: dict[str, str] | None = None,
    roles: tuple[str, ...] | None = None,
) -> dict[str, Endpoint]:
    """Endpoints of all roles from CLI flags, then the environment.

    ``--model`` is every role's default; ``--simulator-model`` etc. override it. A local
    endpoint (``--base-url``) without a key gets the placeholder key ``"not-needed"``.
    ``api_key_env`` maps roles to the variable their key is read from (``--api-key-env``).
    ``role_base_url`` / ``role_api_key`` (``--simulator-base-url`` ...) come before everything
    but ``--api-key-env``; ``roles`` builds only those roles (the others need no key).

    Example:
        >>> eps = endpoints_from_options(None, "sk-x", "gpt-4o", assistant_model="gpt-4o-mini", environ={})
        >>> eps["simulator"].model, eps["assistant"].model, eps["assistant"].base_url
        ('gpt-4o', 'gpt-4o-mini', None)
    """
    env = os.environ if environ is None else environ
    warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
    base_url = base_url or env.get("OPENAI_BASE_URL") or None
    from_openai_env = not api_key and bool(env.get("OPENAI_API_KEY"))
    api_key = api_key or env.get("OPENAI_API_KEY") or None
    warned: set[str] = set()
    models = {"profile": profile_model, "simulator": simulator_model, "assistant": assistant_model}
    models["annotator"] = annotator_model
    endpoints = {}
    flag_urls, flag_keys = role_base_url or {}, role_api_key or {}
    for role in ROLES if roles is None else [r for r in ROLES if r in roles]:
        role_model = models[role] or model
        if not role_model:
            raise InputError(f"no model for the {role} role: pass --model (or --{role}-model)")
        role_url = flag_urls.get(role) or env.get(f"RECLLMSIM_{role.upper()}_BASE_URL") or base_url
        own_key = flag_keys.get(role) or env.get(f"RECLLMSIM_{role.upper()}_API_KEY")
        role_key = own_key or api_key
        if role_url is not None:
            check_base_url(role_url, f"--{role}-base-url" if flag_urls.get(role) else "--base-url")
        name = (api_key_env or {}).get(role)
        if name:
            role_key = env.get(name) or None
            if role_key is None:
                raise InputError(
                    f"--api-key-env {name}: the variable {name} is not set or empty ({role} role); "
                    "export it or pass another NAME"
                )
        elif from_openai_env and not own_key and role_url is not None:
            host = urlsplit(role_url).hostname or role_url
            if host not in OPENAI_HOSTS and host not in warned:
                warned.add(host)
                warn(
                    f"warning: sending the key from OPENAI_API_KEY to {host}, which is not an OpenAI host; "
                    "pass --api-key-env NAME (or --api-key) to choose the key for that server"
                )
        if role_key is None:
            if role_url is None:
                raise InputError(
                    "no API key for the OpenAI API: pass --api-key or set OPENAI_API_KEY "
                    "(or point --base-url at a local OpenAI-compatible server)"
                )
            role_key = "not-needed"
        endpoints[role] = Endpoint(base_url=role_url, api_key=role_key, model=role_model)
    return endpoints
