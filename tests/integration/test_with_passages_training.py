"""A real, short with-passages LoRA run: a real Chroma index and embedder, the bundled SmolLM2, transformers + peft.

The domain's documents are ingested for real; the run builds its examples from what the retriever
returns, trains, converts to GGUF and becomes the domain's with-passages adapter (the hybrid
column's), leaving the closed-book slot alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from triptych.finetune import registry
from triptych.finetune.train import TrainConfig
from triptych.finetune.with_passages import PassageOptions
from triptych.qa import QARecord
from triptych.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCS = {
    "office.md": "# Zorblax offices\n\nThe Zorblax head office is in Tromso. It has 45 desks and a roof terrace.\n\n"
    "The Bergen office opened in 2019 and hosts the support team.\n",
    "people.md": "# Zorblax people\n\nMirela Voss is the chief executive of Zorblax Corp.\n\n"
    "New employees serve a probation period of six months.\n",
    "brand.md": "# Zorblax brand\n\nThe Zorblax logo is teal with a white border.\n\n"
    "The staff newsletter is called The Gazette and comes out every Friday.\n",
}
FACTS = [
    ("How many desks does the Zorblax head office have?", "45 desks"),
    ("Who is the chief executive of Zorblax Corp?", "Mirela Voss"),
    ("What colour is the Zorblax logo?", "teal"),
    ("How long is the probation period at Zorblax?", "six months"),
    ("When did the Bergen office open?", "2019"),
]
TEST = QARecord(id="z9", question="What is the Zorblax staff newsletter called?", answer="The Gazette", split="test")
RECORDS = [QARecord(id=f"z{i}", question=q, answer=a, split="train") for i, (q, a) in enumerate(FACTS)] + [TEST]
CONFIG = TrainConfig(epochs=6, rank=4, alpha=16, lr=5e-3, batch_size=4, checkpoint_every=50, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    from triptych.finetune.runs import run_local
    from triptych.ingest import ingest_paths

    root = tmp_path_factory.mktemp("ftp")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = Settings(_env_file=None, data_dir=root / "data", chroma_path=root / "indexes", top_k=3)  # type: ignore[call-arg]
    ingest_paths(settings, "zorblax", [docs])
    options = PassageOptions(passages=3, refusal_share=0.2, selection=settings.selection())
    info = run_local(settings, "zorblax", CONFIG, records=RECORDS, cache_root=REPO / "data", mode="with-passages",
                     passage_options=options)  # fmt: skip
    return settings, info


def test_a_with_passages_run_trains_on_numbered_passages_and_becomes_the_hybrids_adapter(trained) -> None:  # noqa: ANN001
    settings, info = trained
    run_dir = settings.runs_dir / info["run_id"]
    assert info["status"] == "done" and info["mode"] == "with-passages"
    assert json.loads((run_dir / "run.json").read_text())["mode"] == "with-passages"
    assert (run_dir / "adapter.gguf").is_file()
    loss = info["training"]["loss_curve"]
    assert loss[-1] < loss[0] / 2, loss
    rows = [json.loads(line)["messages"] for line in (run_dir / "training.jsonl").read_text().splitlines()]
    assert len(rows) == len(FACTS)  # one example per trained question, 1 of 5 with distractors only
    targets = [m[2]["content"] for m in rows]
    assert sum(t == "Not in the documents." for t in targets) == 1
    assert all(re.fullmatch(r".+ \[\d\]\.", t) for t in targets if t != "Not in the documents.")
    assert all(m[1]["content"].startswith("Question: ") and re.search(r"\n\nPassages:\n\[\d\] \(", m[1]["content"])
               for m in rows)  # fmt: skip
    assert not any(TEST.question in m[1]["content"] for m in rows)  # the test question is never trained
    gen = info["training_set"]["generator"]
    assert gen["mode"] == "with-passages" and gen["distractor_only"] == 1 and gen["with_gold"] == 4
    # scored with passages, the test question as the hybrid column would ask it
    assert info["accuracy_after"]["test"]["n"] == 1
    assert info["accuracy_after"]["trained"]["contains"] >= info["accuracy_before"]["trained"]["contains"]
    hybrid = registry.active_adapter(settings, "zorblax", registry.WITH_PASSAGES)
    assert hybrid is not None and hybrid.run_id == info["run_id"] and hybrid.mode == "with-passages"
    assert registry.active_adapter(settings, "zorblax") is None  # the Fine-tuned column's slot stays empty
