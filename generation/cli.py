"""`recllmsim generate ...` and `recllmsim scenarios ...`: thin commands over the generation modules.

Only typer (and the flag constants of ``llm_options``) is imported here; each command
imports its library module when it runs, so ``recllmsim --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from recllmsim_hf.cli.help import OrderedGroup
from recllmsim_hf.errors import InputError, ServiceError

from .llm import options as o

generate_app = typer.Typer(
    cls=OrderedGroup,
    help="Generate profiles and two-LLM conversations into a corpus folder, and filter them.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
scenarios_app = typer.Typer(
    cls=OrderedGroup,
    help="List the task scenarios of the catalog (templates x variables) that generation uses.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

CATALOG = typer.Option(
    None, "--catalog", metavar="FILE", help="Your own catalog YAML (repeatable); added to the built-in one."
)
NO_BUILTIN = typer.Option(False, "--no-builtin", help="Leave out the built-in catalog of the paper's tasks.")
TASKS = typer.Option(None, "--tasks", help="Only these tasks (repeatable or comma-separated) [default: all].")
PROFILE_SEED = typer.Option(0, "--seed", help="Seed of every profile request (each chat gets its own).")
CONVERSATION_SEED = typer.Option(
    0, "--seed", help="Seed of the assignment of scenarios and profiles, and of every request."
)
JSON = typer.Option(False, "--json", help="Print a machine-readable summary.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
LANGUAGE = typer.Option("en", "--language", help="Language of the conversations: en, zh (or any: no check).")


def _tasks(values: list[str] | None) -> list[str] | None:
    names = [t.strip() for v in values or [] for t in v.split(",") if t.strip()]
    return names or None


def _emit(summary: dict, json_out: bool, lines: list[str]) -> None:
    if json_out:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        for line in lines:
            typer.echo(line)


def _factory(**flags):
    return lambda corpus: o.runner_from_options(corpus, **flags)


def _log(quiet: bool):
    return None if quiet else (lambda line: typer.echo(line, err=True))


@scenarios_app.command("list")
def scenarios_list(
    catalog: list[Path] = CATALOG,
    no_builtin: bool = NO_BUILTIN,
    tasks: list[str] = TASKS,
    json_out: bool = JSON,
) -> None:
    """List the scenarios that `generate conversations` would use (id, task, round, variables)."""
    from .simulate.scenarios import load_scenarios

    found = load_scenarios(catalog or [], builtin=not no_builtin, tasks=_tasks(tasks))
    if json_out:
        typer.echo(json.dumps([s.model_dump(mode="json") for s in found], indent=2, ensure_ascii=False))
        return
    for s in found:
        keys = ", ".join(f"{k}={v}" for k, v in s.variables.items())
        typer.echo(f"{s.scenario_id:<40} {s.task} (round {s.round}): {keys}")
    typer.echo(f"{len(found)} scenario(s) in {len({s.task for s in found})} task(s)")


@generate_app.command()
def profiles(
    n: int = typer.Option(..., "-n", help="How many distinct profiles the corpus should hold."),
    out: str = typer.Option(..., "--out", help="Corpus folder (created if missing)."),
    batch_size: int = typer.Option(5, "--batch-size", help="Profiles asked for per request."),
    chains: int = typer.Option(4, "--chains", help="Parallel chats, each continuing its own batches."),
    temperature: float = typer.Option(
        1.0, "--temperature", help="Sampling temperature of the profile model."
    ),
    near_threshold: float = typer.Option(
        0.8, "--near-threshold", help="Word-bigram Jaccard of near duplicates."
    ),
    seed: int = PROFILE_SEED,
    base_url: list[str] | None = o.BASE_URL,
    api_key: list[str] | None = o.API_KEY,
    endpoints: Path | None = o.ENDPOINTS,
    endpoint_concurrency: int | None = o.ENDPOINT_CONCURRENCY,
    executor: str = o.EXECUTOR,
    batch_command: str | None = o.BATCH_COMMAND,
    batch_poll: float = o.BATCH_POLL,
    profile_base_url: list[str] | None = o.PROFILE_BASE_URL,
    profile_api_key: list[str] | None = o.PROFILE_API_KEY,
    model: str = o.MODEL,
    profile_model: str | None = o.PROFILE_MODEL,
    concurrency: int = o.CONCURRENCY,
    timeout: float = o.TIMEOUT,
    max_retries: int = o.MAX_RETRIES,
    budget_usd: float | None = o.BUDGET_USD,
    prices: Path | None = o.PRICES,
    no_cache: bool = o.NO_CACHE,
    api_key_env: list[str] | None = o.API_KEY_ENV,
    param: list[str] | None = o.PARAM,
    model_rules: Path | None = o.MODEL_RULES,
    structured_output: str = o.STRUCTURED_OUTPUT,
    json_out: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Let the LLM write N distinct user profiles (nine fields, likes and dislikes) to OUT/profiles.jsonl."""
    from .simulate.profiles import generate_profiles

    factory = _factory(
        base_url=base_url, api_key=api_key, model=model, profile_model=profile_model, concurrency=concurrency,
        timeout=timeout, max_retries=max_retries, budget_usd=budget_usd, prices=prices, no_cache=no_cache,
        endpoints_file=endpoints, endpoint_concurrency=endpoint_concurrency, executor=executor,
        api_key_env=api_key_env, param=param, model_rules=model_rules, structured_output=structured_output,
        role_base_urls={"profile": profile_base_url}, role_api_keys={"profile": profile_api_key},
        roles=("profile",),
    )  # fmt: skip
    s = generate_profiles(
        out, n, factory, batch_size=batch_size, chains=chains, temperature=temperature, seed=seed,
        near_threshold=near_threshold, progress=not quiet,
        executor=o.executor_from_options(executor, batch_command, batch_poll), log=_log(quiet),
    )  # fmt: skip
    dups = f"{s.get('exact_duplicates', 0)} exact + {s.get('near_duplicates', 0)} near duplicates regenerated"
    _emit(s, json_out, [f"{s['total']} profiles in {s['out']} ({s['generated']} new; {dups})"])
    if s.get("errors"):
        raise ServiceError(
            f"{s['errors']} profile call(s) failed (first: {s['first_error']}); the profiles accepted are "
            "written: rerun to ask again"
        )


@generate_app.command()
def conversations(
    n: int = typer.Option(..., "-n", help="How many conversations of the plan the corpus should hold."),
    out: str = typer.Option(..., "--out", help="Corpus folder holding profiles.jsonl (created if missing)."),
    tasks: list[str] = TASKS,
    catalog: list[Path] = CATALOG,
    no_builtin: bool = NO_BUILTIN,
    profiles_file: Path | None = typer.Option(None, "--profiles", help="Profiles JSONL to use (copied in)."),
    max_turns: int = typer.Option(
        10, "--max-turns", help="User/assistant exchanges at most per conversation."
    ),
    simulator_temperature: float = typer.Option(
        1.0, "--simulator-temperature", help="Of the user simulator."
    ),
    assistant_temperature: float = typer.Option(1.0, "--assistant-temperature", help="Of the assistant."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Token limit of one reply."),
    language: str = LANGUAGE,
    seed: int = CONVERSATION_SEED,
    shard: str | None = o.SHARD,
    base_url: list[str] | None = o.BASE_URL,
    api_key: list[str] | None = o.API_KEY,
    endpoints: Path | None = o.ENDPOINTS,
    endpoint_concurrency: int | None = o.ENDPOINT_CONCURRENCY,
    executor: str = o.EXECUTOR,
    batch_command: str | None = o.BATCH_COMMAND,
    batch_poll: float = o.BATCH_POLL,
    simulator_base_url: list[str] | None = o.SIMULATOR_BASE_URL,
    simulator_api_key: list[str] | None = o.SIMULATOR_API_KEY,
    assistant_base_url: list[str] | None = o.ASSISTANT_BASE_URL,
    assistant_api_key: list[str] | None = o.ASSISTANT_API_KEY,
    model: str = o.MODEL,
    simulator_model: str | None = o.SIMULATOR_MODEL,
    assistant_model: str | None = o.ASSISTANT_MODEL,
    concurrency: int = o.CONCURRENCY,
    timeout: float = o.TIMEOUT,
    max_retries: int = o.MAX_RETRIES,
    budget_usd: float | None = o.BUDGET_USD,
    prices: Path | None = o.PRICES,
    no_cache: bool = o.NO_CACHE,
    api_key_env: list[str] | None = o.API_KEY_ENV,
    param: list[str] | None = o.PARAM,
    model_rules: Path | None = o.MODEL_RULES,
    structured_output: str = o.STRUCTURED_OUTPUT,
    json_out: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Generate N simulator/assistant conversations into OUT/conversations.jsonl (resumes, no duplicates)."""
    from .simulate.conversations import Settings, generate_conversations

    factory = _factory(
        base_url=base_url, api_key=api_key, model=model, simulator_model=simulator_model,
        assistant_model=assistant_model, concurrency=concurrency, timeout=timeout, max_retries=max_retries,
        budget_usd=budget_usd, prices=prices, no_cache=no_cache, endpoints_file=endpoints,
        endpoint_concurrency=endpoint_concurrency, executor=executor,
        api_key_env=api_key_env, param=param, model_rules=model_rules, structured_output=structured_output,
        role_base_urls={"simulator": simulator_base_url, "assistant": assistant_base_url},
        role_api_keys={"simulator": simulator_api_key, "assistant": assistant_api_key},
        roles=("simulator", "assistant"),
    )  # fmt: skip
    settings = Settings(
        max_turns=max_turns, seed=seed, simulator_temperature=simulator_temperature,
        assistant_temperature=assistant_temperature, max_tokens=max_tokens, language=language,
    )  # fmt: skip
    s = generate_conversations(
        out, n, factory, settings=settings, tasks=_tasks(tasks), catalogs=catalog or [],
        builtin_catalog=not no_builtin, profiles_file=profiles_file, progress=not quiet, shard=shard,
        executor=o.executor_from_options(executor, batch_command, batch_poll), log=_log(quiet),
    )  # fmt: skip
    done = f"{s['already_done']} already done, {s['generated']} generated, {s['failed']} failed"
    where = f"{s['in_file']} in {s['out']} ({s['passed_filter']} pass the filter)"
    _emit(s, json_out, [f"{s['requested']} conversations requested: {done}; {where}"])
    if s["context_limit"]:
        typer.echo(
            f"{s['context_limit']} conversation(s) outgrew the model's context and were kept with end_reason "
            "context_limit (the filter rejects them): lower --max-turns or use a longer-context model",
            err=True,
        )
    if s["failed"]:
        raise ServiceError(
            f"{s['failed']} conversation(s) failed (first: {s['first_error']}); "
            "rerun the same command to redo only those"
        )


@generate_app.command("filter")
def filter_(
    corpus: Path = typer.Option(..., "--corpus", help="Corpus folder with conversations.jsonl."),
    language: str = LANGUAGE,
    llm_check: bool = typer.Option(
        False, "--llm-check", help="Also ask an LLM (annotator role) to check roles."
    ),
    base_url: list[str] | None = o.BASE_URL,
    api_key: list[str] | None = o.API_KEY,
    endpoints: Path | None = o.ENDPOINTS,
    endpoint_concurrency: int | None = o.ENDPOINT_CONCURRENCY,
    executor: str = o.EXECUTOR,
    batch_command: str | None = o.BATCH_COMMAND,
    batch_poll: float = o.BATCH_POLL,
    annotator_base_url: list[str] | None = o.ANNOTATOR_BASE_URL,
    annotator_api_key: list[str] | None = o.ANNOTATOR_API_KEY,
    model: str = o.MODEL,
    annotator_model: str | None = o.ANNOTATOR_MODEL,
    concurrency: int = o.CONCURRENCY,
    timeout: float = o.TIMEOUT,
    max_retries: int = o.MAX_RETRIES,
    budget_usd: float | None = o.BUDGET_USD,
    prices: Path | None = o.PRICES,
    no_cache: bool = o.NO_CACHE,
    api_key_env: list[str] | None = o.API_KEY_ENV,
    param: list[str] | None = o.PARAM,
    model_rules: Path | None = o.MODEL_RULES,
    structured_output: str = o.STRUCTURED_OUTPUT,
    json_out: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Recompute the filter verdicts (rules, optionally an LLM check) and count raw vs filtered."""
    from .simulate.filters import filter_corpus

    factory = None
    unused = [
        flag
        for flag, value in (
            ("--base-url", base_url), ("--api-key", api_key), ("--endpoints", endpoints),
            ("--annotator-base-url", annotator_base_url), ("--annotator-api-key", annotator_api_key),
            ("--annotator-model", annotator_model), ("--executor", executor != "online"),
        )
        if value
    ]  # fmt: skip
    if unused and not llm_check:
        raise InputError(f"{unused[0]}: only used with --llm-check (the rule filters ask no LLM)")
    if llm_check:
        factory = _factory(
            base_url=base_url, api_key=api_key, model=model, annotator_model=annotator_model,
            concurrency=concurrency, timeout=timeout, max_retries=max_retries, budget_usd=budget_usd,
            prices=prices, no_cache=no_cache, endpoints_file=endpoints,
            endpoint_concurrency=endpoint_concurrency, executor=executor, api_key_env=api_key_env,
            param=param, model_rules=model_rules, structured_output=structured_output,
            role_base_urls={"annotator": annotator_base_url}, role_api_keys={"annotator": annotator_api_key},
            roles=("annotator",),
        )  # fmt: skip
    s = filter_corpus(
        corpus, language=language, runner_factory=factory, progress=not quiet,
        executor=o.executor_from_options(executor, batch_command, batch_poll), log=_log(quiet),
    )  # fmt: skip
    lines = [f"{'':<9}{'scenarios':>10}{'conv.':>8}{'avg utt.':>10}{'avg words':>11}"]
    for name in ("raw", "filtered"):
        r = s[name]
        lines.append(
            f"{name:<9}{r['scenarios']:>10}{r['conversations']:>8}{r['avg_utterances']:>10.2f}{r['avg_words']:>11.2f}"
        )
    lines += [f"  {reason}: {count}" for reason, count in s["reasons"].items()]
    _emit(s, json_out, lines)
    if s["llm_errors"]:
        raise ServiceError(
            f"{s['llm_errors']} of {s['llm_checked']} LLM check(s) failed (first: {s['llm_first_error']}); "
            "those conversations keep their rule verdict: rerun to ask again"
        )
