"""The LLM flags shared by every command that calls a model (``generate ...``, ``annotate ...``).

Each constant is a typer option to use as a parameter default, and
:func:`runner_from_options` turns the parsed values into an :class:`LLMRunner` whose
cache sits in the corpus folder. Only typer is imported here (CLI start-up stays lean);
the openai client is imported when the runner is built.

Example (a command in ``generation/cli.py``)::

    from recllmsim_hf.generation.llm import options as o

    @generate_app.command()
    def conversations(out: Path = ..., base_url: str | None = o.BASE_URL, api_key: str | None = o.API_KEY,
                      model: str = o.MODEL, simulator_model: str | None = o.SIMULATOR_MODEL,
                      assistant_model: str | None = o.ASSISTANT_MODEL, concurrency: int = o.CONCURRENCY,
                      timeout: float = o.TIMEOUT, max_retries: int = o.MAX_RETRIES,
                      budget_usd: float | None = o.BUDGET_USD, prices: Path | None = o.PRICES,
                      no_cache: bool = o.NO_CACHE) -> None:
        runner = o.runner_from_options(out, base_url=base_url, api_key=api_key, model=model, ...)
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

# Repeatable (commands annotate them as list[str] | None): several servers share a role (pool.py).
BASE_URL = typer.Option(
    None,
    "--base-url",
    help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1; repeat it to share "
    "the load among several servers [env OPENAI_BASE_URL]",
)
API_KEY = typer.Option(
    None,
    "--api-key",
    help="API key [env OPENAI_API_KEY; prefer the variable]; once for all --base-url or "
    "once per --base-url; never written anywhere",
)
BASE_URLS, API_KEYS = BASE_URL, API_KEY  # the names the batch commands used first


def role_base_url(role: str):
    """``--<role>-base-url`` (repeatable, like ``--base-url``): that role's own endpoint(s)."""
    return typer.Option(
        None,
        f"--{role}-base-url",
        help=f"Endpoint of the {role} only [default: --base-url]; repeat it to share the {role}'s "
        f"load among several servers [env RECLLMSIM_{role.upper()}_BASE_URL]",
    )


def role_api_key(role: str):
    """``--<role>-api-key`` (repeatable): once for all ``--<role>-base-url`` or once per URL."""
    return typer.Option(
        None,
        f"--{role}-api-key",
        help=f"API key of the {role} only [default: --api-key; env RECLLMSIM_{role.upper()}_API_KEY]; "
        f"once for all --{role}-base-url or once per --{role}-base-url",
    )


SIMULATOR_BASE_URL, SIMULATOR_API_KEY = role_base_url("simulator"), role_api_key("simulator")
ASSISTANT_BASE_URL, ASSISTANT_API_KEY = role_base_url("assistant"), role_api_key("assistant")
PROFILE_BASE_URL, PROFILE_API_KEY = role_base_url("profile"), role_api_key("profile")
ANNOTATOR_BASE_URL, ANNOTATOR_API_KEY = role_base_url("annotator"), role_api_key("annotator")
ENDPOINTS = typer.Option(
    None,
    "--endpoints",
    help="YAML/JSON file of endpoints (base_url, concurrency, api_key_env, roles); "
    "see generation/llm/pool.py",
)
ENDPOINT_CONCURRENCY = typer.Option(
    None,
    "--endpoint-concurrency",
    min=1,
    help="Requests in flight at most per endpoint [default: --concurrency].",
)
EXECUTOR = typer.Option(
    "online",
    "--executor",
    help="How requests are sent: online, openai-batch (the OpenAI Batch API: half "
    "price, within 24 h) or command (a local batch program such as vllm run-batch).",
)
BATCH_COMMAND = typer.Option(
    None,
    "--batch-command",
    help="(--executor command) e.g. 'vllm run-batch -i {input} -o {output} --model M'.",
)
BATCH_POLL = typer.Option(
    5.0,
    "--batch-poll",
    min=0.001,
    help="(--executor openai-batch) Seconds before the first poll of a batch "
    "(then 1.5x longer each time, up to 120).",
)
SHARD = typer.Option(
    None,
    "--shard",
    help="Only the K-th of N deterministic slices of the plan (K from 0), e.g. 0/4.",
)
MODEL = typer.Option("gpt-4o-mini", "--model", help="Model of every role unless overridden.")
SIMULATOR_MODEL = typer.Option(
    None, "--simulator-model", help="Model of the user simulator [default: --model]"
)
ASSISTANT_MODEL = typer.Option(None, "--assistant-model", help="Model of the assistant [default: --model]")
PROFILE_MODEL = typer.Option(
    None, "--profile-model", help="Model of the profile generator [default: --model]"
)
ANNOTATOR_MODEL = typer.Option(None, "--annotator-model", help="Model of the annotators [default: --model]")
CONCURRENCY = typer.Option(32, "--concurrency", min=1, help="Requests in flight at most.")
TIMEOUT = typer.Option(
    60.0, "--timeout", min=0.001, help="Seconds before one request is given up and retried."
)
MAX_RETRIES = typer.Option(
    8, "--max-retries", min=0, help="Retries of one request before its error is recorded."
)
BUDGET_USD = typer.Option(
    None, "--budget-usd", min=0.0, help="Stop before spending more than this (USD, from the price table)."
)
PRICES = typer.Option(
    None, "--prices", help="YAML/JSON price table (USD per 1M tokens) overriding generation/llm/prices.yaml."
)
NO_CACHE = typer.Option(
    False, "--no-cache", help="Neither replay from nor write to CORPUS/.cache/llm.sqlite."
)
API_KEY_ENV = typer.Option(
    None, "--api-key-env",
    help="Read the API key from this environment variable; ROLE:NAME for one role (repeatable).",
)  # fmt: skip
PARAM = typer.Option(
    None, "--param",
    help="Extra request field KEY=VALUE, VALUE as JSON (top_k=40); ROLE:KEY=VALUE for one role (repeatable).",
)  # fmt: skip
MODEL_RULES = typer.Option(
    None, "--model-rules", help="YAML/JSON per-model request rules laid over generation/llm/model_rules.yaml."
)
STRUCTURED_OUTPUT = typer.Option(
    "auto", "--structured-output",
    help="auto (json_schema, falling back to json_object, then prompt), json_schema, json_object or prompt.",
)  # fmt: skip

# The flags every LLM-calling command takes, with the same names and defaults (a test checks it).
SHARED = (
    "--base-url", "--api-key", "--api-key-env", "--endpoints", "--endpoint-concurrency", "--model",
    "--concurrency", "--timeout", "--max-retries", "--budget-usd", "--prices", "--param", "--model-rules",
    "--structured-output",
)  # fmt: skip
# ... and those of the commands that can send in batch rounds (all but `baseline intent`).
BATCH_SHARED = ("--executor", "--batch-command", "--batch-poll")


def runner_from_options(
    corpus: str | os.PathLike,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = "gpt-4o-mini",
    simulator_model: str | None = None,
    assistant_model: str | None = None,
    profile_model: str | None = None,
    annotator_model: str | None = None,
    concurrency: int = 32,
    timeout: float = 60.0,
    max_retries: int = 8,
    budget_usd: float | None = None,
    prices: str | os.PathLike | None = None,
    no_cache: bool = False,
    api_key_env: list[str] | None = None,
    param: list[str] | None = None,
    model_rules: str | os.PathLike | None = None,
    structured_output: str = "auto",
    roles: tuple[str, ...] | None = None,
    cache_file: str | os.PathLike | None = None,
    endpoints_file: str | os.PathLike | None = None,
    endpoint_concurrency: int | None = None,
    executor: str = "online",
    role_base_urls: dict[str, list[str] | str | None] | None = None,
    role_api_keys: dict[str, list[str] | str | None] | None = None,
    **runner_kwargs,
):
    """An :class:`~recllmsim_hf.generation.llm.LLMRunner` from the parsed flags.

    The cache is ``CORPUS/.cache/llm.sqlite`` unless ``no_cache`` (or ``cache_file``, a file of
    one's own; ``corpus=None`` with no ``cache_file``: no cache). ``roles`` keeps only those
    roles' endpoints. Extra keyword arguments (``backoff_base``, ``backoff_max``, ``transport``
    ...) go to the runner. ``base_url`` / ``api_key`` may be lists (repeated flags): several base
    URLs or an ``endpoints_file`` make a pool (``pool.py``). ``role_base_urls`` /
    ``role_api_keys`` (``--simulator-base-url`` ...: role -> URLs / keys) point one role elsewhere;
    several URLs make that role's own pool (in place of an endpoints file's pool for it).
    ``executor="command"`` needs no key (no server is called).
    """
    from . import LLMRunner, PriceTable, ResponseCache, endpoints_from_options
    from .endpoints import ROLES
    from .params import parse_key_envs, parse_params
    from .rules import ModelRules
    from .structured import check_mode

    check_mode(structured_output)
    key_envs = parse_key_envs(api_key_env, ROLES)
    urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
    keys = [api_key] if isinstance(api_key, str) else list(api_key or [])
    if executor == "command" and not (keys or urls or key_envs or os.environ.get("OPENAI_API_KEY")):
        keys = ["not-needed"]  # the local program is the model: no server, no key
    role_urls, role_keys = _per_role(role_base_urls, "base-url"), _per_role(role_api_keys, "api-key")
    pools = None
    per_endpoint = endpoint_concurrency or concurrency
    if len(urls) > 1 or len(keys) > 1 or endpoints_file is not None:
        from .pool import parse_pools

        pools = parse_pools(urls, keys, per_endpoint=per_endpoint, endpoints_file=endpoints_file)
        first = (pools.get("*") or next(iter(pools.values())))[0]
        urls, keys = [first.base_url], [first.api_key] if first.api_key else keys[:1]
    role_pools = _role_pools(role_urls, role_keys, per_endpoint)
    if role_pools or (pools and set(pools) & set(role_urls)):
        # a role's own flags replace what the endpoints file says for that role
        pools = {**{r: v for r, v in (pools or {}).items() if r not in role_urls}, **role_pools} or None
    endpoints = endpoints_from_options(
        urls[0] if urls else None, keys[0] if keys else None, model, simulator_model, assistant_model,
        profile_model, annotator_model, api_key_env=key_envs, roles=roles,
        role_base_url={r: u[0] for r, u in role_urls.items()},
        role_api_key={r: k[0] for r, k in role_keys.items()},
    )  # fmt: skip
    if pools is not None:
        runner_kwargs["transport"] = _pool_transport(endpoints, pools, concurrency, timeout)
    table = PriceTable.load(prices)
    rules = ModelRules.load(model_rules)
    params = parse_params(param, ROLES)
    if no_cache or (corpus is None and cache_file is None):
        cache = None
    else:
        from recllmsim_hf.safety import claim_cache_file

        if cache_file:
            cache = ResponseCache(claim_cache_file(cache_file))
        else:
            cache = ResponseCache.for_corpus(Path(corpus))
    return LLMRunner(
        endpoints,
        concurrency=concurrency,
        timeout=timeout,
        max_retries=max_retries,
        budget_usd=budget_usd,
        prices=table,
        cache=cache,
        rules=rules,
        params=params,
        structured_output=structured_output,
        **runner_kwargs,
    )


def _per_role(values: dict | None, what: str) -> dict[str, list[str]]:
    """role -> the values of its repeated ``--<role>-<what>`` flag (roles without one left out)."""
    from recllmsim_hf.errors import InputError

    from .endpoints import ROLES

    out = {}
    for role, value in (values or {}).items():
        if role not in ROLES:
            raise InputError(f"--{role}-{what}: unknown role {role!r}; choose from {list(ROLES)}")
        found = [value] if isinstance(value, str) else [v for v in value or [] if v is not None]
        if any(not v.strip() for v in found):  # e.g. "$SIM_KEY" unset: the shared key would go there
            raise InputError(
                f"--{role}-{what}: an empty value (an unset shell variable?), but got ''; "
                f"pass the {what.replace('-', ' ')} or leave the flag out"
            )
        if found:
            out[role] = found
    return out


def _role_pools(role_urls: dict[str, list[str]], role_keys: dict[str, list[str]], per_endpoint: int) -> dict:
    """The pools of the roles given several ``--<role>-base-url`` (keys paired as ``--api-key``'s)."""
    from recllmsim_hf.errors import InputError

    for role, keys in role_keys.items():
        count = len(role_urls.get(role, []))
        if len(keys) > 1 and count == 0:
            raise InputError(
                f"--{role}-api-key: several keys pair with several --{role}-base-url, but got {len(keys)} "
                f"keys and no --{role}-base-url; give the key once, or one --{role}-base-url per key"
            )
        if len(keys) > 1 and len(keys) != count:
            raise InputError(
                f"--{role}-api-key: give one key for all {count} --{role}-base-url or one per "
                f"--{role}-base-url, but got {len(keys)}"
            )
    from .endpoints import check_base_url

    for role, urls in role_urls.items():
        for url in urls:
            check_base_url(url, f"--{role}-base-url")
    pools = {}
    for role, urls in role_urls.items():
        if len(urls) > 1:
            from .pool import Replica

            keys = role_keys.get(role, [])
            pools[role] = [
                Replica(url, (keys[i] if len(keys) > 1 else (keys[0] if keys else None)), per_endpoint)
                for i, url in enumerate(urls)
            ]
    return pools


def _pool_transport(endpoints: dict, pools: dict, concurrency: int, timeout: float):
    """Point each role with its own pool at that pool's first replica, and route through the pool."""
    from .pool import PoolTransport
    from .transport import OpenAITransport

    for role, replicas in pools.items():
        if role in endpoints:
            key = replicas[0].api_key or endpoints[role].api_key
            update = {"base_url": replicas[0].base_url, "api_key": key}
            endpoints[role] = endpoints[role].model_copy(update=update)
    shared = pools.get("*", [None])[0]
    pool_of = {}
    for role, ep in sorted(endpoints.items()):
        if role in pools:
            pool_of[(ep.base_url, ep.api_key, ep.model)] = role
        elif shared is not None and ep.base_url == shared.base_url:
            pool_of.setdefault((ep.base_url, ep.api_key, ep.model), "*")
    inner = OpenAITransport(timeout=timeout, max_connections=concurrency)
    return PoolTransport(inner, pools, pool_of)


def executor_from_options(
    executor: str = "online", batch_command: str | None = None, batch_poll: float = 5.0
):
    """The :class:`~recllmsim_hf.generation.llm.executors.ExecutorSpec` of the parsed flags."""
    from .executors import ExecutorSpec

    return ExecutorSpec.parse(executor, batch_command, poll_interval=batch_poll)
