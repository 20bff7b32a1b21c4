"""LoRA training with transformers + peft: a plain loop, loss on the answer tokens only.

fp32 (bf16 is ~35x slower on CPUs without bf16 instructions), on a GPU when present. The loop
reports progress (loss, tokens/s, ETA) through a callback, stops at the next step when a cancel
event is set, saves a resumable checkpoint (LoRA weights, optimizer, step, loss curve) every N
steps, and is seeded: the batch order of every epoch is fixed by the seed, so a resumed run sees
the same batches it would have seen.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from triptych import runstore

log = logging.getLogger(__name__)

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CHECKPOINT_DIR = "checkpoint"
IGNORE = -100


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one LoRA run."""

    epochs: int = 3
    rank: int = 16
    alpha: float = 32.0
    lr: float = 1e-3
    batch_size: int = 8
    max_steps: int = 0  # 0: epochs decide
    seed: int = 0
    checkpoint_every: int = 20
    max_example_tokens: int = 512
    max_grad_norm: float = 0.0  # clip the gradient's norm to this before each step; 0: no clipping
    micro_batch_tokens: int = 1024  # a step's examples run in micro-batches of at most this many padded tokens
    target_modules: tuple[str, ...] = TARGET_MODULES

    @classmethod
    def from_settings(cls, settings: Any, mode: str = "closed-book", **overrides: Any) -> TrainConfig:
        """The TRIPTYCH_FINETUNE_* defaults, with `overrides` (None values ignored) on top.

        A with-passages run's epochs and learning rate default to TRIPTYCH_FINETUNE_PASSAGES_EPOCHS and
        _LR: its examples are several times longer, and bench_hybrid measured 3 epochs at 1e-3.
        """
        passages = mode == "with-passages"
        values = {
            "epochs": settings.finetune_passages_epochs if passages else settings.finetune_epochs,
            "rank": settings.finetune_rank,
            "alpha": settings.finetune_alpha,
            "lr": settings.finetune_passages_lr if passages else settings.finetune_lr,
            "batch_size": settings.finetune_batch_size,
            "max_steps": settings.finetune_max_steps,
            "seed": settings.finetune_seed,
            "checkpoint_every": settings.finetune_checkpoint_every,
            "max_example_tokens": settings.finetune_max_example_tokens,
            "max_grad_norm": settings.finetune_max_grad_norm,
            "micro_batch_tokens": settings.finetune_micro_batch_tokens,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class Progress:
    """Where a run is: reported after every step."""

    step: int
    total_steps: int
    epoch: float
    loss: float
    elapsed_s: float
    eta_s: float
    tokens_per_s: float


@dataclass
class TrainResult:
    """What a run did."""

    steps: int
    total_steps: int
    loss_curve: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    tokens: int = 0
    cancelled: bool = False
    resumed_from: int = 0
    device: str = "cpu"

    @property
    def s_per_step(self) -> float | None:
        """Seconds per step of this process (resumed steps excluded)."""
        done = self.steps - self.resumed_from
        return self.wall_s / done if done else None

    @property
    def tokens_per_s(self) -> float | None:
        """Training tokens (prompt + answer, no padding) per second."""
        return self.tokens / self.wall_s if self.wall_s else None


def encode_example(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one conversation; labels are IGNORE except on the answer and its end token."""
    prompt = tokenizer.apply_chat_template(list(messages[:-1]), tokenize=False, add_generation_prompt=True)
    answer = messages[-1]["content"] + (tokenizer.eos_token or "")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    return p_ids + a_ids, [IGNORE] * len(p_ids) + a_ids


def count_tokens(tokenizer: Any) -> Callable[[list[dict[str, str]]], int]:
    """A token counter for `validate_training_file`."""
    return lambda messages: len(encode_example(tokenizer, messages)[0])


def batch_schedule(n_examples: int, batch_size: int, epochs: int, seed: int) -> list[list[int]]:
    """Every step's example indices: each epoch shuffled by random.Random(seed + epoch)."""
    steps = []
    for epoch in range(epochs):
        order = list(range(n_examples))
        random.Random(seed + epoch).shuffle(order)
        steps += [order[i : i + batch_size] for i in range(0, n_examples, batch_size)]
    return steps


def _collate(encoded: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, (x, y) in enumerate(encoded):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def make_peft_model(model: Any, config: TrainConfig) -> Any:
    """Wrap a causal LM with fresh LoRA layers on the configured projections (no dropout: reproducible)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(config.seed)  # LoRA's A matrices start random
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def train_lora(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[dict[str, str]]],
    config: TrainConfig,
    work_dir: Path,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train the LoRA layers of a peft `model` in place; checkpoints go to work_dir/checkpoint.

    With `resume`, a checkpoint in work_dir continues from its step (same batches, same optimizer
    state). Returns early with `cancelled=True` when `cancel` is set (a checkpoint is saved first).
    """
    import torch

    torch.manual_seed(config.seed)
    device = next(model.parameters()).device
    encoded = [encode_example(tokenizer, c) for c in conversations]
    for i, (ids, _) in enumerate(encoded):
        if len(ids) > config.max_example_tokens:
            raise ValueError(f"example {i + 1} is {len(ids)} tokens, over {config.max_example_tokens}")
    schedule = batch_schedule(len(encoded), config.batch_size, config.epochs, config.seed)
    total = min(len(schedule), config.max_steps) if config.max_steps else len(schedule)
    steps_per_epoch = math.ceil(len(encoded) / config.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / total))
    result = TrainResult(steps=0, total_steps=total, device=str(device))
    ckpt = work_dir / CHECKPOINT_DIR
    if resume and (ckpt / "state.json").is_file():
        _resume(model, optimizer, scheduler, ckpt, config, result)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.train()
    started = time.perf_counter()
    while result.steps < total:
        if cancel is not None and cancel.is_set():
            result.cancelled = True
            break
        step = [encoded[i] for i in schedule[result.steps]]
        loss = _accumulate(model, step, pad_id, device, config.micro_batch_tokens)
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        result.steps += 1
        result.tokens += sum(len(ids) for ids, _ in step)
        result.loss_curve.append(round(loss, 5))
        result.wall_s = time.perf_counter() - started
        if result.steps % config.checkpoint_every == 0 or result.steps == total:
            save_checkpoint(model, optimizer, scheduler, ckpt, result.steps, result.loss_curve, config)
        if on_progress is not None:
            on_progress(_progress(result, steps_per_epoch))
    if result.cancelled and result.steps > result.resumed_from:
        save_checkpoint(model, optimizer, scheduler, ckpt, result.steps, result.loss_curve, config)
    result.wall_s = time.perf_counter() - started
    model.eval()
    return result


def micro_batches(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Consecutive groups of example indices whose padded size (count x longest) stays within `max_tokens`.

    An example longer than `max_tokens` is a group of its own. The step's batch order is kept.
    """
    groups: list[list[int]] = []
    for i, n in enumerate(lengths):
        if groups and (len(groups[-1]) + 1) * max(n, *(lengths[j] for j in groups[-1])) <= max_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _accumulate(model: Any, step: list[tuple[list[int], list[int]]], pad_id: int, device: Any,
                max_tokens: int) -> float:  # fmt: skip
    """Forward and backward a step's examples in micro-batches; the gradients add up to the whole batch's.

    Each micro-batch's mean token loss is weighted by its share of the step's trained tokens, so the
    summed gradient is that of the step's mean loss, as one batch would give (the memory held is one
    micro-batch's activations). Returns the step's loss.
    """
    trained = [sum(1 for y in labels[1:] if y != IGNORE) for _, labels in step]  # the model shifts labels by one
    total = max(1, sum(trained))
    loss_sum = 0.0
    for group in micro_batches([len(ids) for ids, _ in step], max_tokens):
        weight = sum(trained[i] for i in group) / total
        if weight == 0:
            continue
        batch = {k: v.to(device) for k, v in _collate([step[i] for i in group], pad_id).items()}
        loss = model(**batch).loss * weight
        loss.backward()
        loss_sum += float(loss.detach())
    return loss_sum


def _resume(model: Any, optimizer: Any, scheduler: Any, ckpt: Path, config: TrainConfig, result: TrainResult) -> None:
    """Continue from the checkpoint in `ckpt` (ValueError if it was made with another configuration)."""
    state = runstore.read_json(ckpt / "state.json")
    # checkpoints from before clipping and micro-batches existed: none, and whole batches
    saved = {"max_grad_norm": 0.0, "micro_batch_tokens": 1024, **state["config"]}
    if {k: v for k, v in saved.items() if k != "target_modules"} != {
        k: v for k, v in asdict(config).items() if k != "target_modules"
    }:
        raise ValueError(f"the checkpoint in {ckpt} was made with another configuration: {saved}")
    result.steps = result.resumed_from = load_checkpoint(model, optimizer, scheduler, ckpt)
    result.loss_curve = state["loss_curve"]
    log.info("resuming from step %d", result.steps)


def _progress(result: TrainResult, steps_per_epoch: int) -> Progress:
    """What a progress callback is told after a step."""
    done = result.steps - result.resumed_from
    return Progress(
        step=result.steps,
        total_steps=result.total_steps,
        epoch=result.steps / steps_per_epoch,
        loss=result.loss_curve[-1],
        elapsed_s=result.wall_s,
        eta_s=result.wall_s / done * (result.total_steps - result.steps),
        tokens_per_s=result.tokens / result.wall_s if result.wall_s else 0.0,
    )


def save_checkpoint(
    model: Any, optimizer: Any, scheduler: Any, ckpt: Path, step: int, loss_curve: list[float], config: TrainConfig
) -> None:
    """LoRA weights, optimizer and scheduler state, and the step reached (replaced atomically-enough)."""
    import torch

    ckpt.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(ckpt / "adapter")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, ckpt / "optimizer.pt")
    runstore.write_json(ckpt / "state.json", {"step": step, "loss_curve": loss_curve, "config": asdict(config)})


def load_checkpoint(model: Any, optimizer: Any, scheduler: Any, ckpt: Path) -> int:
    """Restore a checkpoint into a freshly wrapped peft model; the step it reached."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(ckpt / "adapter" / "adapter_model.safetensors"))
    set_peft_model_state_dict(model, weights)
    states = torch.load(ckpt / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    return int(runstore.read_json(ckpt / "state.json")["step"])
