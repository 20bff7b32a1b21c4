"""Accuracy of a model before and after fine-tuning: normalised "contains" and token F1, closed book.

The scores are those of `triptych eval` (triptych.evaluate.metrics): "contains" matches whole words.

Answers are generated greedily in batches by the in-process transformers model (the same prompt the
fine-tuned pipeline sends), so before/after figures need no server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from triptych.evaluate.metrics import contains, token_f1, without_citations


def score(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float | int]:
    """Mean contains and token F1 (in %), and the number of questions."""
    n = len(predictions)
    if n == 0:
        return {"n": 0, "contains": 0.0, "f1": 0.0}
    said = [without_citations(p) for p in predictions]  # "4 [6]" does not say 6
    return {
        "n": n,
        "contains": round(100 * sum(float(contains(p, g)) for p, g in zip(said, golds, strict=True)) / n, 1),
        "f1": round(100 * sum(token_f1(p, g) for p, g in zip(said, golds, strict=True)) / n, 1),
    }


def generate_answers(
    model: Any, tokenizer: Any, system: str, questions: Sequence[str], *, max_new_tokens: int = 32, batch_size: int = 16
) -> list[str]:
    """Greedy answers to each question, with the fine-tuned pipeline's system prompt."""
    import torch

    device = next(model.parameters()).device
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    answers: list[str] = []
    try:
        for i in range(0, len(questions), batch_size):
            prompts = [
                tokenizer.apply_chat_template(
                    [{"role": "system", "content": system}, {"role": "user", "content": q}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                for q in questions[i : i + batch_size]
            ]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            new = out[:, enc["input_ids"].shape[1] :]
            answers += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = old_side
    return answers


def evaluate_sets(
    model: Any, tokenizer: Any, system: str, sets: dict[str, list[tuple[str, list[str]]]], **kwargs: Any
) -> dict[str, dict[str, float | int]]:
    """Scores per named set of (question, gold answers)."""
    results = {}
    for name, items in sets.items():
        predictions = generate_answers(model, tokenizer, system, [q for q, _ in items], **kwargs) if items else []
        results[name] = score(predictions, [g for _, g in items])
    return results
