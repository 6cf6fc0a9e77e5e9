"""The build's own feature declarations give exactly what ``datasets`` derives from them."""

import json

import datasets
import pytest

from recllmsim_hf.feature_types import ClassLabel, Features, List, Value
from recllmsim_hf.features import ALL_CONFIG_NAMES, spec
from recllmsim_hf.human_schema import PROFILE_ATTRIBUTES

VOCABULARY = {name: ["Student", "Engineer", "Others"] for name in PROFILE_ATTRIBUTES}


@pytest.mark.parametrize("name", ALL_CONFIG_NAMES)
def test_every_config_matches_datasets(name):
    ours = spec(name, ["museum visits"], VOCABULARY)
    theirs = datasets.Features.from_dict(ours.to_dict())
    assert theirs.to_dict() == ours.to_dict()
    # the schema with its metadata is what a build writes into every parquet file
    assert ours.arrow_schema == theirs.arrow_schema
    assert ours.arrow_schema.metadata == theirs.arrow_schema.metadata
    assert ours.yaml_list() == theirs._to_yaml_list()
    assert ours.to_datasets() == theirs


def test_nested_kinds_match_datasets():
    ours = Features(
        {
            "tags": List(ClassLabel(names=["a", "b"])),
            "pairs": List(List(Value("int8"))),
            "turns": List({"role": Value("string"), "ok": Value("bool")}),
            "struct": {"inner": {"n": Value("int32")}},
        }
    )
    theirs = datasets.Features(
        {
            "tags": datasets.List(datasets.ClassLabel(names=["a", "b"])),
            "pairs": datasets.List(datasets.List(datasets.Value("int8"))),
            "turns": datasets.List({"role": datasets.Value("string"), "ok": datasets.Value("bool")}),
            "struct": {"inner": {"n": datasets.Value("int32")}},
        }
    )
    assert ours.to_dict() == theirs.to_dict()
    assert ours.yaml_list() == theirs._to_yaml_list()
    assert ours.arrow_schema == theirs.arrow_schema
    assert json.loads(ours.arrow_schema.metadata[b"huggingface"]) == {"info": {"features": theirs.to_dict()}}


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="unsupported dtype 'float16'"):
        Value("float16")


def test_a_build_does_not_import_datasets(tmp_path):
    """The whole point of the declarations: `recllmsim build` runs without `datasets` (a second of
    start-up), and what it writes still loads with `datasets`."""
    import subprocess
    import sys

    from human_fixture import make_full_release

    source = make_full_release(tmp_path / "release")
    code = (
        "import sys; from recllmsim_hf.dataset.build import build_dataset; "
        f"build_dataset({str(source)!r}, {str(tmp_path / 'out')!r}, progress=False); "
        "print(sorted(m for m in sys.modules if m == 'datasets' or m.startswith('datasets.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    loaded = datasets.load_dataset(str(tmp_path / "out"), "human_intent_utterances")
    assert loaded["train"].features["labels"].feature.names == [
        "Recommendation",
        "Planning",
        "Evaluation",
        "Others",
    ]
    assert loaded["train"].features == spec("human_intent_utterances").to_datasets()
