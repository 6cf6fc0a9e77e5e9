"""examples/finetune_intent.py end to end: a tiny random BERT, a locally trained tokenizer, no downloads."""

import importlib.util
import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples/finetune_intent.py"
LABELS = ["Search", "Recommendation", "Search & Recommendation", "Planning", "Others"]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("finetune_intent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_trains_predicts_and_saves(example, built_release, tmp_path):
    out = tmp_path / "run"
    metrics = example.main(
        ["--dataset", str(built_release), "--config", "intent", "--tiny", "--epochs", "3",
         "--learning-rate", "3e-3", "--batch-size", "16", "--max-length", "64",
         "--max-train-samples", "384", "--max-eval-samples", "64",
         "--output-dir", str(out), "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    assert metrics["labels"] == LABELS and metrics["train_rows"] == 384 and metrics["steps"] == 72
    losses = [epoch["train_loss"] for epoch in metrics["validation"]]
    assert len(losses) == 3 and losses[-1] < losses[0]  # it learns something
    assert json.loads((out / "metrics.json").read_text())["test"] == metrics["test"]
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 64 and {r["label"] for r in rows} | {r["predicted"] for r in rows} <= set(LABELS)
    assert sum(r["label"] == r["predicted"] for r in rows) / 64 == pytest.approx(metrics["test"]["accuracy"])

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out / "model")
    assert [model.config.id2label[i] for i in range(5)] == LABELS
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    assert tokenizer("Could you plan my trip?")["input_ids"][0] == tokenizer.cls_token_id

    # --model accepts a path: continue from the saved tiny initialisation, with the context segment
    again = example.main(
        ["--dataset", str(built_release), "--model", str(out / "tiny-init"), "--context", "--epochs", "1",
         "--max-length", "64", "--max-train-samples", "32", "--max-eval-samples", "16",
         "--output-dir", str(tmp_path / "again"), "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    assert again["model"] == str(out / "tiny-init") and again["steps"] == 2
    assert len((tmp_path / "again/predictions.jsonl").read_text().splitlines()) == 16


def test_model_or_tiny_is_required(example, capsys):
    with pytest.raises(SystemExit) as exit_info:
        example.parse_args(["--dataset", "x"])
    assert exit_info.value.code == 2
    assert "pass exactly one of --model NAME_OR_PATH and --tiny" in capsys.readouterr().err
