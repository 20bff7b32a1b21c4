"""Measure a local LoRA run: wall time, s/step, tokens/s, peak RSS, accuracy before vs after.

    .venv/bin/python benchmarks/bench_finetune.py --domain hr_handbook
    .venv/bin/python benchmarks/bench_finetune.py --domain general_squad --epochs 10   # a shared eval set
    .venv/bin/python benchmarks/bench_finetune.py --from-run data/runs/<run_id>       # summarise a finished run

A demo domain trains on its qa.jsonl train split; a shared eval domain (qa_dev.jsonl only) is split
70/30 by question with random.Random(0) (triptych.finetune.dataset.split_by_question). Accuracy is
closed-book, greedy: normalised "contains" and token F1 (%) on the trained questions, their held-out
paraphrases (demo corpora only) and the test split. Prints one JSON object; the run is not activated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._shared_eval import DOMAINS, shared_eval_dir  # noqa: E402
from triptych.finetune.dataset import split_by_question  # noqa: E402
from triptych.finetune.runs import run_local  # noqa: E402
from triptych.finetune.train import TrainConfig  # noqa: E402
from triptych.qa import load_qa  # noqa: E402
from triptych.settings import load_settings  # noqa: E402

CONFIG_KEYS = ("epochs", "rank", "alpha", "lr", "batch_size", "seed", "max_grad_norm")


def summarise(info: dict) -> dict:
    training = info.get("training", {})
    return {
        "run_id": info["run_id"],
        "domain": info["domain"],
        "device": info.get("device"),
        "examples": info["training_set"]["examples"],
        "by_kind": info["training_set"].get("by_kind"),
        "config": {k: info["config"].get(k) for k in CONFIG_KEYS},
        "steps": training.get("steps"),
        "train_wall_s": training.get("wall_s"),
        "s_per_step": training.get("s_per_step"),
        "tokens_per_s": training.get("tokens_per_s"),
        "loss_first_last": [training["loss_curve"][0], training["loss_curve"][-1]]
        if training.get("loss_curve")
        else None,
        "eval_before_s": info.get("eval_before_s"),
        "eval_after_s": info.get("eval_after_s"),
        "total_wall_s": info.get("wall_s"),
        "peak_rss_mib": info.get("peak_rss_mib"),
        "accuracy_before": info.get("accuracy_before"),
        "accuracy_after": info.get("accuracy_after"),
        "base_sha256": info["base_model"]["sha256"][:16],
        "split": info.get("split", "qa.jsonl train/test"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", default="hr_handbook")
    parser.add_argument("--epochs", type=int, help="default: TRIPTYCH_FINETUNE_EPOCHS (8)")
    parser.add_argument("--rank", type=int, help="default: TRIPTYCH_FINETUNE_RANK (16)")
    parser.add_argument("--lr", type=float, help="default: TRIPTYCH_FINETUNE_LR (1e-3)")
    parser.add_argument("--seed", type=int, help="default: TRIPTYCH_FINETUNE_SEED (0)")
    parser.add_argument("--max-grad-norm", type=float, help="default: TRIPTYCH_FINETUNE_MAX_GRAD_NORM")
    parser.add_argument("--from-run", type=Path, help="summarise a finished run's run.json instead of training")
    args = parser.parse_args()
    if args.from_run:
        print(json.dumps(summarise(json.loads((args.from_run / "run.json").read_text()))))
        return
    settings = load_settings()
    records = None
    split = "qa.jsonl train/test"
    if args.domain in DOMAINS:
        records = split_by_question(load_qa(shared_eval_dir() / args.domain / "qa_dev.jsonl"), 0.7, seed=0)
        split = "qa_dev.jsonl split 70/30 by question, random.Random(0)"
    config = TrainConfig.from_settings(
        settings, epochs=args.epochs, rank=args.rank, lr=args.lr, seed=args.seed, max_grad_norm=args.max_grad_norm
    )
    info = run_local(settings, args.domain, config, records=records, activate=False,
                     on_status=lambda m: print(m, file=sys.stderr, flush=True))  # fmt: skip
    info["split"] = split
    print(json.dumps(summarise(info)))


if __name__ == "__main__":
    main()
