"""Model prices: USD per 1M input / output tokens, for cost accounting and ``--budget-usd``.

The default table is ``generation/llm/prices.yaml`` (figures and their date are in that
file). Users override or add models with ``--prices FILE``, a YAML or JSON file of the
same shape (``models: {name: {input: USD, output: USD, cached_input: USD}}``; a bare
``{name: {...}}`` mapping works too). ``cached_input`` is the rate of prompt tokens the server
reports as cached (``usage.prompt_tokens_details.cached_tokens``); without it they cost
``input``. ``batch_input`` / ``batch_output`` / ``batch_cached_input`` are the Batch API's
rates, used by the batch executors (:meth:`PriceTable.for_batch`). A model without a price has
an unknown cost.

Example:
    >>> table = PriceTable.load()
    >>> round(table.cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000), 2)
    0.75
    >>> round(table.cost("gpt-4o-mini", 1_000_000, 0, cached_tokens=500_000), 4)
    0.1125
    >>> table.cost("my-local-model", 10, 10) is None
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recllmsim_hf.errors import InputError

DEFAULT_PRICES = Path(__file__).with_name("prices.yaml")


class Price(BaseModel):
    """USD per 1M tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    batch_input: float | None = Field(default=None, ge=0)  # the Batch API's price (OpenAI: half)
    batch_output: float | None = Field(default=None, ge=0)
    batch_cached_input: float | None = Field(default=None, ge=0)


class PriceTable:
    """model name -> :class:`Price`; dated snapshots ("gpt-4o-2024-08-06") match their family."""

    def __init__(self, prices: dict[str, Price], as_of: str | None = None):
        self.prices = dict(prices)
        self.as_of = as_of
        self._memo: dict[str, Price | None] = {}

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> PriceTable:
        """The default table, with the entries of ``path`` (if given) replacing or adding models."""
        prices, as_of = _read(DEFAULT_PRICES)
        if path is not None:
            user, user_as_of = _read(Path(path))
            prices.update(user)
            as_of = user_as_of or as_of
        return cls(prices, as_of)

    def lookup(self, model: str) -> Price | None:
        """The price of ``model``: exact name, else the longest family name followed by ``-<digit>``."""
        if model not in self._memo:
            price = self.prices.get(model)
            if price is None:
                best = ""
                for name in self.prices:
                    rest = model[len(name) + 1 :]
                    if model.startswith(name + "-") and rest[:1].isdigit() and len(name) > len(best):
                        best = name
                price = self.prices.get(best)
            self._memo[model] = price
        return self._memo[model]

    def for_batch(self) -> PriceTable:
        """The table of the batch executors: each model's batch price, else its online price
        (cached prompt tokens at ``batch_cached_input``, else the lower of ``cached_input`` and the
        batch input price).

        Example:
            >>> batch = PriceTable.load().for_batch()
            >>> round(batch.cost("gpt-4o-mini", 1_000_000, 1_000_000), 3)
            0.375
            >>> round(batch.cost("gpt-4o-mini", 1_000_000, 0, cached_tokens=500_000), 5)
            0.05625
        """
        batch = {}
        for name, p in self.prices.items():
            rate_in = p.input if p.batch_input is None else p.batch_input
            cached = p.batch_cached_input
            if cached is None and p.cached_input is not None:
                cached = min(p.cached_input, rate_in)
            update = {"input": rate_in, "output": p.output if p.batch_output is None else p.batch_output,
                      "cached_input": cached}  # fmt: skip
            batch[name] = p.model_copy(update=update)
        return PriceTable(batch, self.as_of)

    def cost(
        self, model: str, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
    ) -> float | None:
        """USD for one call (``cached_tokens`` of the prompt at the cached-input rate), or None
        when the model has no price."""
        price = self.lookup(model)
        if price is None:
            return None
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_rate = price.input if price.cached_input is None else price.cached_input
        fresh = (prompt_tokens - cached) * price.input + cached * cached_rate
        return (fresh + completion_tokens * price.output) / 1_000_000


def _read(path: Path) -> tuple[dict[str, Price], str | None]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read the price table ({e.strerror}); check --prices") from None
    except UnicodeDecodeError as e:
        raise InputError(
            f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})"
        ) from None
    except yaml.YAMLError as e:
        raise InputError(
            f"{path}: not valid YAML/JSON ({str(e).splitlines()[0]}); fix the price table"
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: a price table must be a mapping, but got {type(data).__name__}; see prices.yaml"
        )
    models = data["models"] if "models" in data else data
    if not isinstance(models, dict):
        raise InputError(
            f"{path}: models: must be a mapping of model -> {{input, output}}, but got {models!r}"
        )
    prices: dict[str, Price] = {}
    for name, value in models.items():
        if name in ("as_of", "currency", "unit"):
            continue
        try:
            prices[str(name)] = Price.model_validate(value)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise InputError(
                f"{path}: models.{name}.{field}: {err['msg']}, but got {err.get('input')!r}; "
                "give USD per 1M tokens as `{input: 0.15, output: 0.6}`"
            ) from None
    as_of = data.get("as_of")
    return prices, (str(as_of) if as_of is not None else None)
