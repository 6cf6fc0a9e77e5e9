"""``recllmsim annotate``: LLM annotators for a corpus, or (``--evaluate``) their agreement with humans.

Registered in ``recllmsim_hf.cli._register_subcommands``. Imports only typer and the shared
LLM flags at start-up; the annotation code (pydantic models, sklearn, openai) loads when the
command runs.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import typer

from recllmsim_hf.errors import ServiceError

from .llm import options as o

WHAT_HELP = (
    "Comma-separated annotators: intent, hallucination, quality, summary, translation "
    "[default: all five; with --evaluate: intent,hallucination,quality]"
)


def annotate(
    corpus: Path = typer.Option(None, "--corpus", help="Corpus folder to annotate in place."),
    what: str = typer.Option(None, "--what", help=WHAT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Ask again for labels already present."),
    evaluate: bool = typer.Option(
        False, "--evaluate", help="Instead: annotate a sample of human-labelled data and report agreement."
    ),
    source: str = typer.Option(
        None, "--source", help="(--evaluate) Labelled release or corpus [default: the pinned release]."
    ),
    sample: int = typer.Option(50, "--sample", min=1, help="(--evaluate) Conversations to sample."),
    seed: int = typer.Option(0, "--seed", help="(--evaluate) Seed of the sample."),
    out: str = typer.Option(
        None,
        "--out",
        help="(--evaluate) Folder for the sample, its cache and report.json "
        "[default: recllmsim-eval]; (--shard) the folder the shard is copied to and annotated in.",
    ),
    shard: str = o.SHARD,
    base_url: list[str] = o.BASE_URL,
    api_key: list[str] = o.API_KEY,
    endpoints: Path = o.ENDPOINTS,
    endpoint_concurrency: int = o.ENDPOINT_CONCURRENCY,
    executor: str = o.EXECUTOR,
    batch_command: str = o.BATCH_COMMAND,
    batch_poll: float = o.BATCH_POLL,
    annotator_base_url: list[str] = o.ANNOTATOR_BASE_URL,
    annotator_api_key: list[str] = o.ANNOTATOR_API_KEY,
    model: str = o.MODEL,
    annotator_model: str = o.ANNOTATOR_MODEL,
    concurrency: int = o.CONCURRENCY,
    timeout: float = o.TIMEOUT,
    max_retries: int = o.MAX_RETRIES,
    budget_usd: float = o.BUDGET_USD,
    prices: Path = o.PRICES,
    no_cache: bool = o.NO_CACHE,
    api_key_env: list[str] | None = o.API_KEY_ENV,
    param: list[str] | None = o.PARAM,
    model_rules: Path | None = o.MODEL_RULES,
    structured_output: str = o.STRUCTURED_OUTPUT,
    json_out: bool = typer.Option(False, "--json", help="Print a machine-readable summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Label a corpus with LLM annotators, or (--evaluate) measure their agreement with human labels."""
    make_runner = partial(
        o.runner_from_options, base_url=base_url, api_key=api_key, model=model,
        annotator_model=annotator_model, concurrency=concurrency, timeout=timeout,
        max_retries=max_retries, budget_usd=budget_usd, prices=prices, no_cache=no_cache,
        endpoints_file=endpoints, endpoint_concurrency=endpoint_concurrency, executor=executor,
        api_key_env=api_key_env, param=param, model_rules=model_rules, structured_output=structured_output,
        role_base_urls={"annotator": annotator_base_url}, role_api_keys={"annotator": annotator_api_key},
        roles=("annotator",),
    )  # fmt: skip
    spec = o.executor_from_options(executor, batch_command, batch_poll)
    log = partial(typer.echo, err=True)
    if evaluate:
        from .annotate.agreement import DEFAULT_WHAT, evaluate_annotators, format_report

        if corpus is not None:
            raise typer.BadParameter("--corpus is not used with --evaluate (use --source and --out)")
        if shard is not None:
            raise typer.BadParameter("--shard is not used with --evaluate (the sample is small)")
        result = evaluate_annotators(
            source, out or "recllmsim-eval", make_runner, sample=sample, seed=seed,
            what=DEFAULT_WHAT if what is None else what, progress=not quiet, log=log, executor=spec,
        )  # fmt: skip
        text = format_report(result)
    else:
        from .annotate.annotators import annotate_corpus, format_summary

        if corpus is None:
            raise typer.BadParameter("--corpus is required (or pass --evaluate)")
        if (shard is None) != (out is None):
            raise typer.BadParameter("--shard K/N and --out DIR go together (the shard is annotated in DIR)")
        result = annotate_corpus(
            corpus, "intent,hallucination,quality,summary,translation" if what is None else what, make_runner,
            overwrite=overwrite, progress=not quiet, log=log, executor=spec, shard=shard, out=out,
        )  # fmt: skip
        text = format_summary(result)
    typer.echo(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) if json_out else text)
    counts = result.get("annotators", {}).values()
    errors, calls = sum(c["errors"] for c in counts), sum(c["requests"] for c in counts)
    if errors:
        raise ServiceError(
            f"{errors} of {calls} annotator call(s) failed (first: {result.get('first_error')}); "
            "recorded in extra.annotation: rerun to ask again (answered calls replay from the cache)"
        )
