"""Fine-tune a transformers sequence classifier on RecLLMSim's intent config.

Real use (any encoder on the Hub or on disk; label names come from the dataset's ClassLabel):

    python examples/finetune_intent.py --dataset recllmsim --model bert-base-uncased \
        --epochs 3 --output-dir runs/bert-intent

``--dataset`` is whatever ``datasets.load_dataset`` accepts: a Hub repo id or the folder
written by ``recllmsim build``. ``--context`` feeds the preceding assistant turn as the
second segment. For CI and quick checks, ``--tiny`` needs no download: it trains a WordPiece
tokenizer on the train texts and starts from a randomly initialised 2-layer BERT (hidden
size 32), saved under ``OUTPUT_DIR/tiny-init`` so it can be passed to ``--model`` again.

Writes into ``--output-dir``: ``model/`` (weights, config with ``id2label``, tokenizer),
``metrics.json`` (validation per epoch and test accuracy / macro-F1) and
``predictions.jsonl`` (one test utterance per line, gold and predicted label names).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from datasets import load_dataset
from sklearn.metrics import accuracy_score, f1_score
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    PreTrainedTokenizerFast,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="Hub id or folder of a RecLLMSim build.")
    p.add_argument("--config", default="intent", help="Dataset config [intent].")
    p.add_argument("--model", help="Model name or path, e.g. bert-base-uncased.")
    p.add_argument(
        "--tiny", action="store_true", help="Use a tiny random BERT with a locally trained tokenizer."
    )
    p.add_argument("--context", action="store_true", help="Add the preceding turn as the second segment.")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--max-train-samples", type=int, help="Use only the first N train rows.")
    p.add_argument("--max-eval-samples", type=int, help="Use only the first N validation and test rows.")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output-dir", type=Path, default=Path("finetune-intent"))
    p.add_argument("--cache-dir", help="datasets cache folder.")
    args = p.parse_args(argv)
    if bool(args.model) == args.tiny:
        p.error("pass exactly one of --model NAME_OR_PATH and --tiny")
    return args


def tiny_model(texts: list[str], labels: list[str], out: Path, max_length: int):
    """A WordPiece tokenizer trained on ``texts`` and a random 2-layer BERT, both saved to ``out``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.normalizer = normalizers.BertNormalizer(lowercase=True)
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    raw.decoder = decoders.WordPiece()
    raw.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=4000, special_tokens=specials))
    cls, sep = raw.token_to_id("[CLS]"), raw.token_to_id("[SEP]")
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_length,
    )  # fmt: skip
    config = BertConfig(
        vocab_size=raw.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max(512, max_length), num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
    )  # fmt: skip
    model = BertForSequenceClassification(config)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return tokenizer, model


def encode(tokenizer, rows, context: bool, max_length: int) -> dict:
    second = list(rows["context"]) if context else None
    return tokenizer(
        list(rows["text"]),
        second,
        truncation="only_first" if not context else "longest_first",
        max_length=max_length,
    )


def batches(encoded, labels, order, batch_size, tokenizer):
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        features = [{k: encoded[k][i] for k in encoded} for i in idx]
        batch = tokenizer.pad(features, return_tensors="pt")
        yield batch, torch.tensor([labels[i] for i in idx])


@torch.no_grad()
def predict(model, tokenizer, encoded, n, batch_size) -> np.ndarray:
    model.eval()
    out = []
    for batch, _ in batches(encoded, [0] * n, list(range(n)), batch_size, tokenizer):
        out.append(model(**batch).logits.argmax(-1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def score(gold, pred) -> dict:
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, average="macro")),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    ds = load_dataset(args.dataset, args.config, cache_dir=args.cache_dir)
    names = ds["train"].features["label"].names
    splits = {
        "train": args.max_train_samples,
        "validation": args.max_eval_samples,
        "test": args.max_eval_samples,
    }
    for split, n in splits.items():
        if n is not None:
            ds[split] = ds[split].select(range(min(n, len(ds[split]))))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if args.tiny:
        tokenizer, model = tiny_model(
            list(ds["train"]["text"]), names, args.output_dir / "tiny-init", args.max_length
        )
    else:
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        model = AutoModelForSequenceClassification.from_pretrained(
            args.model, num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={name: i for i, name in enumerate(names)},
        )  # fmt: skip
    encoded = {split: encode(tokenizer, ds[split], args.context, args.max_length) for split in ds}
    labels = {split: list(ds[split]["label"]) for split in ds}
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    rng = np.random.default_rng(args.seed)
    n_train = len(labels["train"])
    steps = max(1, int(args.epochs * -(-n_train // args.batch_size)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
    history, step, started = [], 0, time.perf_counter()
    while step < steps:
        model.train()
        order = rng.permutation(n_train).tolist()
        losses = []
        for batch, y in batches(encoded["train"], labels["train"], order, args.batch_size, tokenizer):
            loss = model(**batch, labels=y).loss
            losses.append(loss.item())
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step >= steps:
                break
        val = predict(model, tokenizer, encoded["validation"], len(labels["validation"]), args.batch_size)
        history.append(
            {"step": step, "train_loss": float(np.mean(losses)), **score(labels["validation"], val)}
        )
        print(json.dumps({"validation": history[-1]}), flush=True)
    test_pred = predict(model, tokenizer, encoded["test"], len(labels["test"]), args.batch_size)
    metrics = {
        "model": args.model or "tiny (random init)",
        "dataset": args.dataset,
        "config": args.config,
        "labels": names,
        "train_rows": n_train,
        "steps": step,
        "train_seconds": round(time.perf_counter() - started, 2),
        "validation": history,
        "test": score(labels["test"], test_pred),
    }
    model.save_pretrained(args.output_dir / "model")
    tokenizer.save_pretrained(args.output_dir / "model")
    with open(args.output_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for row, pred in zip(ds["test"], test_pred, strict=True):
            line = {
                "utterance_id": row["utterance_id"],
                "label": names[row["label"]],
                "predicted": names[pred],
            }
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    (args.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"test": metrics["test"]}), flush=True)
    return metrics


if __name__ == "__main__":
    main()
