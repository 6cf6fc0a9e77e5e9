"""`recllmsim stats` and `recllmsim baseline intent`: analyses of a built dataset folder.

Registered in ``recllmsim_hf.cli._register_subcommands``. Only typer and the shared LLM
flags load at start-up; pyarrow, matplotlib, scikit-learn and openai load when a command runs.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from recllmsim_hf.cli.help import OrderedGroup
from recllmsim_hf.errors import InputError, ServiceError
from recllmsim_hf.generation.llm import options as o

DEFAULT_MODELS = "svm,decision_tree,random_forest,adaboost,bernoulli_nb,context"


class FigureWidth(StrEnum):
    column = "column"
    page = "page"


baseline_app = typer.Typer(
    cls=OrderedGroup,
    help="Train and score baselines on a build: intent detection (the paper's Table 4, ours, LLMs) "
    "and profile identification (synthetic vs human training).",
    no_args_is_help=True,
)


def stats(
    folder: Path = typer.Argument(..., help="A folder written by `recllmsim build`."),
    json_out: bool = typer.Option(False, "--json", help="Print every number as JSON."),
    plots: str = typer.Option(
        None, "--plots", metavar="DIR", help="Also write the figures into DIR as PNG (300 dpi), PDF and SVG."
    ),
    width: FigureWidth = typer.Option(
        FigureWidth.page, "--width", help="Figure width: column (3.3 in) or page (6.9 in); fonts >= 7 pt."
    ),
    top: int = typer.Option(15, "--top", min=1, help="Preference phrases per task in the figure and JSON."),
) -> None:
    """Print the paper's Tables 1-3, hallucinations and synthetic vs human users; --plots draws
    Figures 5 and 6 and the comparison."""
    from recllmsim_hf.analysis.human_stats import render_all_text, run_all_stats

    result = run_all_stats(folder, plots=plots, top_phrases=top, width=width.value)
    if json_out:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        typer.echo(render_all_text(result), nl=False)
        for path in result.get("figures") or []:
            typer.echo(f"wrote {path}")


def parse_seeds(text: str | None) -> list[int]:
    """``"0-4"`` or ``"0,1,2"`` -> a list of ints; ``None`` -> ``[]``; a range running backwards
    (``4-0``), an empty list and a repeated seed are errors, never silently nothing."""
    if text is None:
        return []
    seeds: list[int] = []
    bad = InputError(f"--split-seeds: expected numbers like 0-4 or 0,1,2, but got {text!r}")
    try:
        for part in text.split(","):
            low, sep, high = part.strip().partition("-")
            if sep and int(high) < int(low):
                raise bad
            seeds.extend(range(int(low), int(high) + 1) if sep else [int(low)])
    except ValueError:
        raise bad from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise bad
    return seeds


@baseline_app.command("intent")
def intent(
    folder: Path = typer.Argument(..., help="A folder written by `recllmsim build`."),
    models: str = typer.Option(
        DEFAULT_MODELS, "--models", help="Comma-separated: the defaults, llm-zero-shot, llm-few-shot."
    ),
    seed: int = typer.Option(42, "--seed", help="Seed of the models (and of the few-shot examples)."),
    split_seeds: str = typer.Option(
        None, "--split-seeds", help="Also re-split with these build seeds (e.g. 0-4) and report mean ± std."
    ),
    split_by: str = typer.Option("utterance", "--split-by", help="Unit of --split-seeds re-splits."),
    llm_model: str = typer.Option(
        "gpt-4o-mini", "--model", "--llm-model", help="Model of the llm-* rows (--llm-model: the old name)."
    ),
    shots: int = typer.Option(2, "--shots", min=1, help="Few-shot examples per label."),
    limit: int = typer.Option(None, "--limit", min=1, help="llm-* rows: score the first N test utterances."),
    cache: Path = typer.Option(
        None, "--cache", help="llm-* rows: SQLite response cache file to replay from."
    ),
    base_url: list[str] | None = o.BASE_URL,
    api_key: list[str] | None = o.API_KEY,
    endpoints: Path | None = o.ENDPOINTS,
    endpoint_concurrency: int | None = o.ENDPOINT_CONCURRENCY,
    concurrency: int = o.CONCURRENCY,
    timeout: float = o.TIMEOUT,
    max_retries: int = o.MAX_RETRIES,
    budget_usd: float = o.BUDGET_USD,
    prices: Path = o.PRICES,
    api_key_env: list[str] | None = o.API_KEY_ENV,
    param: list[str] | None = o.PARAM,
    model_rules: Path | None = o.MODEL_RULES,
    structured_output: str = o.STRUCTURED_OUTPUT,
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Train and score intent classifiers (paper Table 4 rows, our context model, LLMs) on the test split."""
    from recllmsim_hf.analysis.baselines import render_baselines, run_intent_baselines
    from recllmsim_hf.generation.annotate.llm_intent import LLMSettings, evaluator

    names = [m.strip() for m in models.split(",") if m.strip()]
    llm = LLMSettings(
        model=llm_model, base_url=tuple(base_url or ()), api_key=tuple(api_key or ()),
        endpoints=endpoints, endpoint_concurrency=endpoint_concurrency, concurrency=concurrency,
        timeout=timeout,
        max_retries=max_retries, budget_usd=budget_usd, cache=cache, shots=shots, limit=limit, prices=prices,
        api_key_env=tuple(api_key_env or ()), param=tuple(param or ()), model_rules=model_rules,
        structured_output=structured_output,
    )  # fmt: skip
    report = run_intent_baselines(
        folder, names, seed=seed, split_seeds=parse_seeds(split_seeds), split_by=split_by,
        llm=evaluator(llm), llm_label=llm.model,
        progress=not quiet,
    )  # fmt: skip
    if json_out:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(render_baselines(report), nl=False)
    failed = [r for r in report.get("results", []) if r.get("failed")]
    if failed:
        raise ServiceError(
            f"{sum(r['failed'] for r in failed)} LLM request(s) failed "
            f"(first: {failed[0]['first_error']}); they count as wrong answers above: rerun to ask again"
        )


@baseline_app.command("profile")
def profile(
    folder: Path = typer.Argument(
        ..., help="A folder written by `recllmsim build` (with the human studies)."
    ),
    settings: str = typer.Option(
        "synthetic->synthetic,synthetic->human,human->human,synthetic+human->human",
        "--settings",
        help="Comma-separated training->test settings.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the logistic regressions."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Profile identification per attribute (TF-IDF + one-vs-rest logistic regression), four settings."""
    from recllmsim_hf.analysis.profile_baselines import render_profile_baselines, run_profile_baselines

    names = [s.strip() for s in settings.split(",") if s.strip()]
    report = run_profile_baselines(folder, names, seed=seed)
    if json_out:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(render_profile_baselines(report), nl=False)
