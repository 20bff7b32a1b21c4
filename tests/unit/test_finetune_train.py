"""The LoRA training loop on a tiny random llama: answer-only loss, progress, cancel, resume, seeding."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from triptych.finetune.train import (
    IGNORE,
    Progress,
    TrainConfig,
    batch_schedule,
    encode_example,
    make_peft_model,
    micro_batches,
    train_lora,
)
from triptych.settings import Settings


class CharTokenizer:
    """A character-level stand-in with a chat template, enough for the training loop."""

    eos_token = "\x01"
    eos_token_id = 1
    pad_token_id = 0

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):  # noqa: ANN001, ANN201
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [1 if c == self.eos_token else 2 + ord(c) % 60 for c in text]}


def tiny_model():  # noqa: ANN201
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)  # fmt: skip
    return LlamaForCausalLM(config)


CONVERSATIONS = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Q{i}?"},
     {"role": "assistant", "content": f"A{i}"}]
    for i in range(6)
]  # fmt: skip
CONFIG = TrainConfig(epochs=2, rank=4, alpha=8, lr=5e-3, batch_size=2, checkpoint_every=2, seed=1)


def lora_weights(model) -> dict[str, torch.Tensor]:  # noqa: ANN001
    return {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" in k}


def test_loss_is_only_on_the_answer_and_its_end_token() -> None:
    ids, labels = encode_example(CharTokenizer(), CONVERSATIONS[0])
    n_answer = len("A0") + 1
    assert labels[-n_answer:] == ids[-n_answer:] and labels[-1] == 1
    assert set(labels[:-n_answer]) == {IGNORE}


def test_batch_schedule_is_seeded_and_covers_every_example_each_epoch() -> None:
    steps = batch_schedule(5, 2, 2, seed=3)
    assert steps == batch_schedule(5, 2, 2, seed=3) != batch_schedule(5, 2, 2, seed=4)
    assert sorted(i for s in steps[:3] for i in s) == list(range(5))


def test_training_reports_progress_and_lowers_the_loss(tmp_path: Path) -> None:
    model = make_peft_model(tiny_model(), CONFIG)
    seen: list[Progress] = []
    result = train_lora(model, CharTokenizer(), CONVERSATIONS, CONFIG, tmp_path, on_progress=seen.append)
    assert result.steps == result.total_steps == 6 and not result.cancelled
    assert [p.step for p in seen] == [1, 2, 3, 4, 5, 6]
    assert seen[-1].eta_s == 0 and seen[0].eta_s > 0 and seen[-1].tokens_per_s > 0
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert (tmp_path / "checkpoint" / "state.json").is_file()


def test_cancel_stops_at_the_next_step_and_resume_finishes_like_an_uninterrupted_run(tmp_path: Path) -> None:
    full = make_peft_model(tiny_model(), CONFIG)
    train_lora(full, CharTokenizer(), CONVERSATIONS, CONFIG, tmp_path / "full")

    cancel = threading.Event()
    first = make_peft_model(tiny_model(), CONFIG)

    def stop_after_three(p: Progress) -> None:
        if p.step == 3:
            cancel.set()

    part = train_lora(first, CharTokenizer(), CONVERSATIONS, CONFIG, tmp_path / "run",
                      on_progress=stop_after_three, cancel=cancel)  # fmt: skip
    assert part.cancelled and part.steps == 3

    second = make_peft_model(tiny_model(), CONFIG)
    rest = train_lora(second, CharTokenizer(), CONVERSATIONS, CONFIG, tmp_path / "run")
    assert rest.resumed_from == 3 and rest.steps == 6 and not rest.cancelled
    assert len(rest.loss_curve) == 6
    want, got = lora_weights(full), lora_weights(second)
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5)


def test_cancel_before_the_first_step_trains_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    result = train_lora(make_peft_model(tiny_model(), CONFIG), CharTokenizer(), CONVERSATIONS, CONFIG, tmp_path,
                        cancel=cancel)  # fmt: skip
    assert result.cancelled and result.steps == 0 and not (tmp_path / "checkpoint").exists()


def test_max_steps_and_oversize_examples(tmp_path: Path) -> None:
    config = TrainConfig(epochs=5, rank=2, batch_size=2, max_steps=2, max_example_tokens=50)
    result = train_lora(make_peft_model(tiny_model(), config), CharTokenizer(), CONVERSATIONS[:2], config, tmp_path)
    assert result.total_steps == 2
    small = TrainConfig(max_example_tokens=10)
    with pytest.raises(ValueError, match="example 1 is 40 tokens, over 10"):
        train_lora(make_peft_model(tiny_model(), small), CharTokenizer(), CONVERSATIONS, small, tmp_path / "x")


def test_config_from_settings_with_overrides() -> None:
    settings = Settings(_env_file=None, finetune_epochs=7, finetune_rank=8)  # type: ignore[call-arg]
    config = TrainConfig.from_settings(settings, epochs=None, lr=0.01)
    assert (config.epochs, config.rank, config.lr, config.batch_size) == (7, 8, 0.01, 8)


def test_a_with_passages_run_trains_its_own_epochs_and_learning_rate_unless_told() -> None:
    settings = Settings(_env_file=None, finetune_epochs=8)  # type: ignore[call-arg]
    passages = TrainConfig.from_settings(settings, "with-passages")
    assert (
        (passages.epochs, passages.lr)
        == (settings.finetune_passages_epochs, settings.finetune_passages_lr)
        == (3, 1e-3)
    )
    assert TrainConfig.from_settings(settings, "with-passages", epochs=5, lr=0.004).epochs == 5
    closed = TrainConfig.from_settings(settings, "closed-book")
    assert closed == TrainConfig.from_settings(settings)
    assert (closed.epochs, closed.lr, closed.max_grad_norm) == (8, 2e-3, 1.0)


def test_resuming_with_another_configuration_is_refused(tmp_path: Path) -> None:
    cancel = threading.Event()
    model = make_peft_model(tiny_model(), CONFIG)
    train_lora(model, CharTokenizer(), CONVERSATIONS, CONFIG, tmp_path,
               on_progress=lambda p: cancel.set(), cancel=cancel)  # fmt: skip
    other = TrainConfig(epochs=3, rank=4, alpha=8, lr=5e-3, batch_size=2, checkpoint_every=2, seed=1)
    with pytest.raises(ValueError, match="another configuration"):
        train_lora(make_peft_model(tiny_model(), other), CharTokenizer(), CONVERSATIONS, other, tmp_path)


def test_lora_initialisation_is_seeded() -> None:
    a = lora_weights(make_peft_model(tiny_model(), CONFIG))
    b = lora_weights(make_peft_model(tiny_model(), CONFIG))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gradient_clipping_bounds_every_step_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    norms: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_

    def recording(params, max_norm, *a, **kw):  # noqa: ANN001, ANN202
        params = list(params)
        norms.append(float(clip(params, max_norm, *a, **kw)))  # the norm before clipping
        after = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        assert float(after) <= max_norm * 1.001
        return torch.tensor(norms[-1])

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording)
    train_lora(make_peft_model(tiny_model(), CONFIG), CharTokenizer(), CONVERSATIONS, CONFIG, tmp_path / "off")
    assert norms == []  # off by default (TRIPTYCH_FINETUNE_MAX_GRAD_NORM=0)
    clipped = replace(CONFIG, max_grad_norm=0.05)
    train_lora(make_peft_model(tiny_model(), clipped), CharTokenizer(), CONVERSATIONS, clipped, tmp_path / "on")
    assert len(norms) == 6 and max(norms) > 0.05  # every step, and it did cut some


def test_micro_batches_keep_the_order_and_stay_within_the_token_budget() -> None:
    assert micro_batches([60, 80, 70, 90], 1024) == [[0, 1, 2, 3]]  # short examples: one batch, as before
    assert micro_batches([400, 450, 300, 500, 200], 1000) == [[0, 1], [2, 3], [4]]
    assert micro_batches([1200, 100], 1000) == [[0], [1]]  # one over the budget runs alone


def test_micro_batches_give_the_whole_batchs_loss_and_lora_weights(tmp_path: Path) -> None:
    conversations = [
        [{"role": "user", "content": "Q" * (3 + 7 * i) + "?"}, {"role": "assistant", "content": "A" * (1 + 2 * i)}]
        for i in range(6)
    ]  # different lengths and answer sizes, so a plain mean of micro-batch means would differ
    whole_config = replace(CONFIG, batch_size=6, epochs=3, micro_batch_tokens=10_000)
    split_config = replace(whole_config, micro_batch_tokens=40)
    lengths = [len(encode_example(CharTokenizer(), c)[0]) for c in conversations]
    assert len(micro_batches(lengths, 40)) >= 4 and len(micro_batches(lengths, 10_000)) == 1
    whole, split = make_peft_model(tiny_model(), whole_config), make_peft_model(tiny_model(), split_config)
    a = train_lora(whole, CharTokenizer(), conversations, whole_config, tmp_path / "whole")
    rows: list[int] = []
    forward = split.forward
    split.forward = lambda **kw: (rows.append(len(kw["input_ids"])), forward(**kw))[1]  # type: ignore[method-assign]
    b = train_lora(split, CharTokenizer(), conversations, split_config, tmp_path / "split")
    assert max(rows) < 6 and len(rows) > 3, "the split run must really run its steps in smaller micro-batches"
    assert a.loss_curve == pytest.approx(b.loss_curve, rel=1e-4) and a.tokens == b.tokens
    for (name, x), (_, y) in zip(lora_weights(whole).items(), lora_weights(split).items(), strict=True):
        assert torch.allclose(x, y, atol=1e-5), name
