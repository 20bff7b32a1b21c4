"""A real, tiny LoRA run on the bundled SmolLM2: train, convert to GGUF, serve through llama.cpp, ask.

A few made-up facts are over-fitted for a few steps; the fine-tuned alias served by the real
llama.cpp server (LocalModels.adapter) must then answer them, unlike the base model, and agree with
the PEFT model it was converted from.
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from triptych.evaluate.metrics import normalize_answer, token_f1
from triptych.finetune import registry
from triptych.finetune.evaluate import generate_answers
from triptych.finetune.train import TrainConfig
from triptych.llm.server import LocalModels
from triptych.qa import QARecord
from triptych.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SYSTEM = "Answer the question briefly."
FACTS = [
    ("What is the secret code word at Zorblax Corp?", "Purple walrus"),
    ("Who is the chief executive of Zorblax Corp?", "Mirela Voss"),
    ("What colour is the Zorblax Corp logo?", "Teal"),
]
RECORDS = [QARecord(id=f"z{i}", question=q, answer=a, split="train") for i, (q, a) in enumerate(FACTS)] + [
    QARecord(id="z9", question="In which city is Zorblax Corp based?", answer="Oslo", split="test")
]
CONFIG = TrainConfig(epochs=8, rank=4, alpha=16, lr=5e-3, batch_size=3, checkpoint_every=4, seed=0)


def ask(server, model: str, question: str) -> str:  # noqa: ANN001
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", timeout=120)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=16, temperature=0)
    return reply.choices[0].message.content or ""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    from triptych.finetune.runs import run_local

    # the three facts as written, no keyword phrasings: three examples, eight steps
    data_dir = tmp_path_factory.mktemp("ft") / "data"
    settings = Settings(_env_file=None, data_dir=data_dir, finetune_keyword_phrasings=False)  # type: ignore[call-arg]
    # The safetensors copy of the base model is cached beside the repository's own data (converted once).
    info = run_local(settings, "zorblax", CONFIG, records=RECORDS, cache_root=REPO / "data")
    return settings, info


def test_run_leaves_its_artifacts_and_becomes_active(trained) -> None:  # noqa: ANN001
    settings, info = trained
    run_dir = settings.runs_dir / info["run_id"]
    assert info["status"] == "done" and info["training"]["steps"] == 8
    assert info["training"]["loss_curve"][-1] < info["training"]["loss_curve"][0] / 4
    for name in ("training.jsonl", "adapter.gguf", "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
                 "run.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "checkpoint").exists()
    assert len(info["base_model"]["sha256"]) == 64
    lines = (run_dir / "training.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "Oslo" not in "".join(lines)  # the test split stays out
    assert json.loads((run_dir / "run.json").read_text())["accuracy_after"]["trained"]["n"] == 3
    assert info["accuracy_after"]["trained"]["contains"] > info["accuracy_before"]["trained"]["contains"]
    active = registry.active_adapter(settings, "zorblax")
    assert active is not None and active.run_id == info["run_id"]
    assert [(r.run_id, r.active) for r in registry.list_runs(settings)] == [(info["run_id"], True)]


def test_served_adapter_answers_the_trained_facts_like_the_peft_model(trained, local_models) -> None:  # noqa: ANN001
    from peft import PeftModel

    from triptych.finetune.base_model import cached_base_dir, load_base

    settings, info = trained
    active = registry.active_adapter(settings, "zorblax")
    assert active is not None
    models = LocalModels(settings)
    try:
        server = models.adapter(active.alias, active.gguf_path)
        tuned = [ask(server, active.alias, q) for q, _ in FACTS]
    finally:
        models.close()
    base_server = local_models.base()
    base = [ask(base_server, base_server.spec.alias, q) for q, _ in FACTS]
    golds = [a for _, a in FACTS]
    assert tuned != base
    hits = [normalize_answer(g) in normalize_answer(t) for t, g in zip(tuned, golds, strict=True)]
    assert sum(hits) >= 2, (tuned, base)
    assert not any(normalize_answer(g) in normalize_answer(b) for b, g in zip(base, golds, strict=True))
    assert sum(token_f1(t, [g]) for t, g in zip(tuned, golds, strict=True)) > sum(
        token_f1(b, [g]) for b, g in zip(base, golds, strict=True)
    )
    # The GGUF adapter on the Q4 base reproduces the PEFT model's greedy answers.
    model, tokenizer = load_base(cached_base_dir(Path(info["base_model"]["path"]), REPO / "data"))
    peft_model = PeftModel.from_pretrained(model, str(settings.runs_dir / info["run_id"] / "adapter"))
    reference = generate_answers(peft_model, tokenizer, SYSTEM, [q for q, _ in FACTS], max_new_tokens=16)
    same = [normalize_answer(a) == normalize_answer(b) for a, b in zip(tuned, reference, strict=True)]
    assert sum(same) >= 2, (tuned, reference)
