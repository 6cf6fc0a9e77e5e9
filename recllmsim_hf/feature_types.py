"""The column types of the configs, without importing ``datasets``.

``recllmsim build`` writes parquet with pyarrow alone: importing ``datasets`` (and pandas with
it) costs about a second, a third of a whole build. The configs are declared here with the
three kinds of ``datasets`` feature they use, ``Value``, ``ClassLabel`` and ``List`` (a plain
dict is a struct), and each declaration gives the three things a build needs:

- :attr:`Features.arrow_schema`: the Arrow schema, with the ``huggingface`` metadata that
  ``datasets`` writes into its parquet files (``{"info": {"features": ...}}``);
- :meth:`Features.to_dict`: the JSON form ``datasets`` reads back (``Features.from_dict``);
- :meth:`Features.yaml_list`: the form of a card's ``dataset_info.features``.

:meth:`Features.to_datasets` gives the ``datasets.Features`` itself (for the builder and for
users). ``tests/test_feature_types.py`` checks all three forms against ``datasets``' own for
every config, so the two cannot drift apart.

Example:
    >>> f = Features({"label": ClassLabel(names=["no", "yes"]), "tags": List(Value("string"))})
    >>> f.yaml_list()[0]
    {'name': 'label', 'dtype': {'class_label': {'names': {'0': 'no', '1': 'yes'}}}}
    >>> str(f.arrow_schema.field("tags").type)
    'list<item: string>'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

_ARROW = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int32": pa.int32(),
    "int64": pa.int64(),
}


@dataclass(frozen=True)
class Value:
    """A scalar column: ``dtype`` one of string, bool, int8, int32, int64."""

    dtype: str

    def __post_init__(self):
        if self.dtype not in _ARROW:
            raise ValueError(f"unsupported dtype {self.dtype!r}: must be one of {list(_ARROW)}")


@dataclass(frozen=True)
class ClassLabel:
    """A label stored as its id (int64) into ``names``."""

    names: tuple[str, ...] = field(default=())

    def __init__(self, names):
        object.__setattr__(self, "names", tuple(names))

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def str2int(self, name: str) -> int:
        return self.names.index(name)


@dataclass(frozen=True)
class List:
    """A list of ``feature`` (a Value, ClassLabel, List or a struct dict)."""

    feature: Any


FeatureType = Value | ClassLabel | List | dict


def arrow_type(feature: FeatureType) -> pa.DataType:
    if isinstance(feature, Value):
        return _ARROW[feature.dtype]
    if isinstance(feature, ClassLabel):
        return pa.int64()
    if isinstance(feature, List):
        return pa.list_(arrow_type(feature.feature))
    if isinstance(feature, dict):
        return pa.struct([pa.field(name, arrow_type(f)) for name, f in feature.items()])
    raise TypeError(f"not a feature type: {feature!r}")


def to_dict(feature: FeatureType) -> dict:
    """``datasets``' JSON form of one feature (what ``Features.to_dict`` gives for it)."""
    if isinstance(feature, Value):
        return {"dtype": feature.dtype, "_type": "Value"}
    if isinstance(feature, ClassLabel):
        return {"names": list(feature.names), "_type": "ClassLabel"}
    if isinstance(feature, List):
        return {"feature": to_dict(feature.feature), "_type": "List"}
    if isinstance(feature, dict):
        return {name: to_dict(f) for name, f in feature.items()}
    raise TypeError(f"not a feature type: {feature!r}")


def _yaml(feature: FeatureType) -> dict:
    """The YAML form of one feature, without its name (a card's ``dataset_info.features`` item)."""
    if isinstance(feature, Value):
        return {"dtype": feature.dtype}
    if isinstance(feature, ClassLabel):
        return {"dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(feature.names)}}}}
    if isinstance(feature, List):
        inner = _yaml(feature.feature)
        # `list: string` rather than `list: {dtype: string}`; a list of structs lists the fields
        return {"list": inner["dtype"] if list(inner) == ["dtype"] else inner.get("struct", inner)}
    if isinstance(feature, dict):
        return {"struct": [{"name": name, **_yaml(f)} for name, f in feature.items()]}
    raise TypeError(f"not a feature type: {feature!r}")


class Features(dict):
    """The columns of one config: name -> feature type, in column order."""

    @property
    def arrow_schema(self) -> pa.Schema:
        schema = pa.schema([pa.field(name, arrow_type(f)) for name, f in self.items()])
        return schema.with_metadata({"huggingface": json.dumps({"info": {"features": self.to_dict()}})})

    def to_dict(self) -> dict:
        return {name: to_dict(f) for name, f in self.items()}

    def yaml_list(self) -> list[dict]:
        return _yaml(dict(self))["struct"]

    def to_datasets(self):
        """The same columns as ``datasets.Features`` (imports ``datasets``)."""
        import datasets

        return datasets.Features.from_dict(self.to_dict())
