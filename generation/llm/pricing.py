"""Model prices: USD per 1M input / output tokens, for cost accounting and ``--budget-usd``.

The default table is ``generation/llm/prices.yaml`` (figures and their date are in that
file). Users override or add models with ``--prices FILE``, a YAML or JSON file of the
same shape (``models: {name: {input: USD, output: USD}}``; a bare ``{name: {...}}``
mapping works too). A model without a price has an unknown cost.

Example:
    >>> table = PriceTable.load()
    >>> round(table.cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000), 2)
    0.75
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
    batch_input: float | None = Field(default=None, ge=0)  # the Batch API's price (OpenAI: half)
    batch_output: float | None = Field(default=None, ge=0)


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
        """The table of the batch executors: each model's batch price, else its online price.

        Example:
            >>> round(PriceTable.load().for_batch().cost("gpt-4o-mini", 1_000_000, 1_000_000), 3)
            0.375
        """
        batch = {}
        for name, p in self.prices.items():
            online = {"input": p.input, "output": p.output}
            update = {k: getattr(p, f"batch_{k}") if getattr(p, f"batch_{k}") is not None else v
                      for k, v in online.items()}  # fmt: skip
            batch[name] = p.model_copy(update=update)
        return PriceTable(batch, self.as_of)

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for one call, or None when the model has no price."""
        price = self.lookup(model)
        if price is None:
            return None
        return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def _read(path: Path) -> tuple[dict[str, Price], str | None]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read the price table ({e.strerror}); check --prices") from None
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
