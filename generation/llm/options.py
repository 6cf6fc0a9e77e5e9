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

BASE_URL = typer.Option(
    None, "--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 [env OPENAI_BASE_URL]"
)
API_KEY = typer.Option(
    None, "--api-key", help="API key [env OPENAI_API_KEY; prefer the variable]; never written anywhere"
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
    "--base-url", "--api-key", "--api-key-env", "--model", "--concurrency", "--timeout", "--max-retries",
    "--budget-usd", "--prices", "--param", "--model-rules", "--structured-output",
)  # fmt: skip


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
    **runner_kwargs,
):
    """An :class:`~recllmsim_hf.generation.llm.LLMRunner` from the parsed flags.

    The cache is ``CORPUS/.cache/llm.sqlite`` unless ``no_cache`` (or ``cache_file``, a file of
    one's own; ``corpus=None`` with no ``cache_file``: no cache). ``roles`` keeps only those
    roles' endpoints. Extra keyword arguments (``backoff_base``, ``backoff_max``, ``transport``
    ...) go to the runner.
    """
    from . import LLMRunner, PriceTable, ResponseCache, endpoints_from_options
    from .endpoints import ROLES
    from .params import parse_key_envs, parse_params
    from .rules import ModelRules
    from .structured import check_mode

    check_mode(structured_output)
    endpoints = endpoints_from_options(
        base_url, api_key, model, simulator_model, assistant_model, profile_model, annotator_model,
        api_key_env=parse_key_envs(api_key_env, ROLES),
    )  # fmt: skip
    if roles is not None:
        endpoints = {role: ep for role, ep in endpoints.items() if role in roles}
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
