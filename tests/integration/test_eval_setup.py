"""An evaluation under a saved setup, twice, with the real local model at temperature 0 and a real Chroma index:
the same answers both times, the setup recorded, and its knobs and prompts in effect."""

from __future__ import annotations

from pathlib import Path

import pytest

from triptych.cli_eval import make_evaluation
from triptych.ingest import ingest_paths
from triptych.llm.server import LocalModels
from triptych.qa import domain_qa
from triptych.settings import Settings
from triptych.setups import default_setup, load_setup, save_setup

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "hr_handbook"
TERSE = "You are {company_role}. Answer with the fact only, in at most eight words."


@pytest.mark.timeout(900)  # a few seconds a question on an idle machine; busy neighbours slow llama.cpp 5-15x
def test_an_eval_under_a_saved_setup_gives_the_same_answers_again(tmp_path: Path, local_models: LocalModels) -> None:
    base = Settings(
        _env_file=None,  # type: ignore[call-arg]
        chroma_path=tmp_path / "indexes",
        data_dir=tmp_path / "data",
        corpora_dir=REPO / "corpora",
        max_tokens=32,
        pipeline_timeout_s=900,
    )
    report = ingest_paths(base, DOMAIN, [REPO / "corpora" / DOMAIN / "docs"])
    assert not report.refused, report.refused
    save_setup(base, default_setup(base).edited({"retrieval.top_k": 3, "prompt.system": TERSE}).renamed("terse3"))
    setup = load_setup(base, "terse3")  # as `triptych eval --setup terse3` loads it
    assert setup.generation.temperature == 0.0
    records = [r for r in domain_qa(REPO / "corpora", DOMAIN, "test") if r.answerable][:2]

    def run_once():  # type: ignore[no-untyped-def]
        evaluation = make_evaluation(setup.apply(base), local_models, ["prompt", "rag"], judge=False, concurrency=1,
                                     setup=setup)  # fmt: skip
        return evaluation.run(DOMAIN, records, ["prompt", "rag"], split="test", fresh=True)

    first, second = run_once(), run_once()
    assert first.run.run_id != second.run.run_id
    for outcome in (first, second):
        assert outcome.summary["status"] == "complete"
        assert outcome.summary["setup"] == {"name": "terse3", "hash": setup.hash}
        assert outcome.run.manifest()["setup"]["setup"]["prompt"]["system"] == TERSE
    answers = [{(a["question_id"], a["pipeline"]): a for a in o.run.answers()} for o in (first, second)]
    print("\n", {k: a["answer"] for k, a in answers[0].items()})
    assert all(a["status"] == "ok" and a["answer"].strip() for a in answers[0].values())
    assert {k: a["answer"] for k, a in answers[0].items()} == {k: a["answer"] for k, a in answers[1].items()}
    # the setup's knobs were in effect: at most 3 chunks retrieved (the default is 8)
    assert all(len(a["sources"]) <= 3 for (_, p), a in answers[0].items() if p == "rag")
    assert first.run.manifest()["settings"]["top_k"] == 3
