"""An evaluation of a few HR handbook test questions with the real local model and a real Chroma index."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphs.compare import Comparison
from triptych.evaluate import load_run
from triptych.evaluate.report import render_html
from triptych.evaluate.runner import Evaluation
from triptych.ingest import ingest_paths
from triptych.llm.server import LocalModels
from triptych.qa import domain_qa
from triptych.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "hr_handbook"


@pytest.mark.timeout(900)  # about 30 s on an idle machine; a busy neighbour makes llama.cpp 5-15x slower
def test_eval_on_demo_questions(tmp_path: Path, local_models: LocalModels) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        chroma_path=tmp_path / "indexes",
        data_dir=tmp_path / "data",
        corpora_dir=REPO / "corpora",
        max_tokens=32,
        # generous: on a shared 2-core machine a busy neighbour slows llama.cpp 5-15x (FIELD-NOTES)
        pipeline_timeout_s=900,
    )
    report = ingest_paths(settings, DOMAIN, [REPO / "corpora" / DOMAIN / "docs"])
    assert not report.refused, report.refused
    test_split = domain_qa(REPO / "corpora", DOMAIN, "test")
    records = [r for r in test_split if r.answerable][:2] + [r for r in test_split if not r.answerable][:1]

    outcome = Evaluation(Comparison(settings, local_models)).run(
        DOMAIN, records, ["prompt", "rag", "finetuned"], split="test"
    )
    s = outcome.summary
    print(
        "\n", {p: {k: m[k] for k in ("correct", "contains", "f1", "hit@5", "total_s")} for p, m in s["metrics"].items()}
    )
    assert s["status"] == "complete" and s["questions"] == 3 and s["answered"] == 9
    prompt, rag, ft = (s["metrics"][p] for p in ("prompt", "rag", "finetuned"))
    assert prompt["errors"] == rag["errors"] == 0
    assert ft["unavailable"] == 3  # no adapter in this fresh data dir: explained, not scored
    # retrieval finds the gold document for these questions (87 % over the whole test split)
    assert rag["hit@5"] is not None and rag["hit@5"] >= 0.5
    assert rag["source_hit"] >= 0.5
    for m in (prompt, rag):
        assert 0 < m["total_s"]["median"] and m["completion_tokens_mean"] > 0
        assert m["cost_usd_total"] == 0.0
    rows = {(a["question_id"], a["pipeline"]): a for a in outcome.run.answers()}
    assert all(rows[(r.id, "rag")]["answer"].strip() for r in records)
    # no adapter: nothing is known about training; each wrong answer has a cause of its pipeline's kind
    assert {a["seen_in_training"] for a in rows.values()} == {None} and "by_training" in ft
    kinds = {"prompt": {"wrong", "refused", "should have refused"},
             "rag": {"retrieval miss", "read miss", "refused", "should have refused"}}  # fmt: skip
    for (_, pipeline), a in rows.items():
        if pipeline in kinds:
            assert (a["miss_cause"] is None) == bool(a["scores"]["correct"]), a
            assert a["miss_cause"] is None or a["miss_cause"] in kinds[pipeline], a
    (pair,) = [c for c in s["comparisons"] if (c["a"], c["b"]) == ("prompt", "rag")]
    assert pair["n"] == 3 and pair["questions"] == "all" and pair["verdict"]
    assert prompt["correct_ci95"][0] <= prompt["correct"] <= prompt["correct_ci95"][1]
    html = render_html([load_run(settings, outcome.run.run_id)])
    assert "Domain: hr_handbook" in html and "<svg" in html and "Why answers missed" in html
    print(" ", {p: m["miss_causes"] for p, m in s["metrics"].items()}, [c["verdict"] for c in s["comparisons"]])
