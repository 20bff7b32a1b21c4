"""Every page through AppTest, with a scripted Comparison for Compare (no model, no embedding)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow
import pytest
from streamlit.testing.v1 import AppTest

from graphs.compare import Comparison
from graphs.context import PipelineContext
from tests.fakes import FakeRetriever, ScriptedChat
from triptych.retrieval import RetrievedChunk
from triptych.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PAGES = REPO / "triptych" / "ui"
SCRIPTED_TRAINER = ["--trainer", "tests.unit.scripted_trainer:scripted_trainer"]  # stands in for LoRA
QUESTION = "How many days of annual leave do employees get?"
CHUNK = RetrievedChunk("c1", "leave.md", "leave.md", "Leave policy",
                  "Welcome to the policy. Employees get 25 days of annual leave per year. Ask HR for more.",
                  0, 88, 0.82, page=2)  # fmt: skip


@pytest.fixture
def app_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Throw-away data, index and corpora folders (one domain with a preset question); caches cleared."""
    from triptych.ui import resources

    corpora = clean_env / "corpora" / "hr_demo"
    (corpora / "docs").mkdir(parents=True)
    (corpora / "docs" / "leave.md").write_text("# Leave\n\nEmployees get 25 days of annual leave.\n")
    qa = {"id": "q1", "question": QUESTION, "answer": "25 days", "split": "test", "domain": "hr_demo"}
    (corpora / "qa.jsonl").write_text(json.dumps(qa) + "\n")
    monkeypatch.setenv("TRIPTYCH_CORPORA_DIR", str(clean_env / "corpora"))
    monkeypatch.setenv("TRIPTYCH_CHROMA_PATH", str(clean_env / "indexes"))
    monkeypatch.setenv("TRIPTYCH_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setattr(resources, "demo_indexes_ready", lambda settings: None)  # no embedding in unit tests
    resources.app_settings.clear()
    try:
        yield clean_env
    finally:
        resources.app_settings.clear()


def scripted_comparison(monkeypatch: pytest.MonkeyPatch, replies: dict[str, str | Exception | ScriptedChat]) -> None:
    """Install, in place of the app's Comparison, one whose pipelines are scripted chat models."""
    from triptych.ui import resources

    def prepare(spec, domain, gate):  # type: ignore[no-untyped-def]
        reply = replies[spec.id]
        if isinstance(reply, Exception):
            raise reply
        retriever = FakeRetriever([CHUNK]) if spec.uses_retrieval else None
        chat = reply if isinstance(reply, ScriptedChat) else ScriptedChat(reply=reply)
        return PipelineContext(chat=chat, model=f"fake-{spec.id}", retriever=retriever)

    runner = Comparison(Settings(_env_file=None), prepare=prepare)  # type: ignore[call-arg]
    monkeypatch.setattr(resources, "comparison", lambda: runner)


def ask(at: AppTest) -> AppTest:
    at.selectbox(key="domain").select("hr_demo").run()
    at.selectbox(key="preset").select(QUESTION).run()
    assert at.text_input(key="question").value == QUESTION
    return at.button[0].click().run()


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


@pytest.mark.parametrize(
    "page", ["compare_page", "documents_page", "history_page", "scores_page", "finetune_page", "settings_page"]
)
def test_every_page_loads(app_env: Path, page: str) -> None:
    at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.title


def test_compare_shows_answers_badges_sources_scores_and_saves_history(app_env: Path, monkeypatch) -> None:
    scripted_comparison(monkeypatch, {"prompt": "Around 20 days.", "rag": "Employees get 25 days of annual leave [1].",
                                      "finetuned": "25 days"})  # fmt: skip
    at = ask(AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run())
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader] == ["Prompt", "RAG", "Fine-tuned"]
    text = markdown_text(at)
    assert text.count("first token") == 3 and text.count("total ") >= 3
    # the model's answer is shown as the characters it wrote (escaped: no markup of its own renders), citation [1]
    assert "Employees get 25 days of annual leave \\[1\\]\\." in text
    # RAG's source: numbered, page, score, and the sentence that supports the answer highlighted
    assert "**\\[1\\] Leave policy**, page 2 · score 0.82" in text
    assert ":orange-background[Employees get 25 days of annual leave per year\\.]" in text
    # score badges against the gold answer
    assert text.count("gold answer contained") == 2 and "F1 0.40 vs gold" in text
    assert any("Gold answer:" in i.value for i in at.info)
    # saved to the history, and shown again (from the session) after a rerun with the prompts
    saved = list((app_env / "data" / "history").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["question"] == QUESTION
    at.toggle(key="show_prompt").set_value(True).run()
    assert not at.exception
    assert [e.label for e in at.expander].count("Prompt sent") == 3
    assert any(QUESTION in t.value for t in at.text)


def test_a_failing_pipeline_shows_its_error_in_its_own_column(app_env: Path, monkeypatch) -> None:
    scripted_comparison(monkeypatch, {"prompt": "Around 20 days.", "rag": LookupError("no index for hr_demo"),
                                      "finetuned": "25 days"})  # fmt: skip
    at = ask(AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run())
    assert not at.exception
    assert [e.value for e in at.error] == ["RAG failed: no index for hr\\_demo"]
    assert markdown_text(at).count("first token") == 2


def test_an_answer_cut_short_says_so_in_its_column_and_in_the_history(app_env: Path, monkeypatch) -> None:
    scripted_comparison(monkeypatch, {"prompt": "Around 20 days.",
                                      "rag": ScriptedChat(reply="Employees get 25", finish_reason="length"),
                                      "finetuned": ScriptedChat(reply="", finish_reason=None)})  # fmt: skip
    at = ask(AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run())
    assert not at.exception, at.exception
    warnings = [w.value.replace("\\", "") for w in at.warning]  # as shown, without markdown escapes
    assert "Incomplete answer: cut short at the token limit (TRIPTYCH_MAX_TOKENS)" in warnings
    assert any(w.startswith("No answer: cut short: the stream ended without saying it was finished") for w in warnings)
    saved = json.loads(next((app_env / "data" / "history").glob("*.json")).read_text())
    cut = {pid: r["cut_short"] for pid, r in saved["results"].items()}
    assert cut["prompt"] is None and cut["rag"].startswith("cut short at the token limit") and cut["finetuned"]


def test_questions_wait_while_the_domain_is_ingested(app_env: Path, monkeypatch) -> None:
    from triptych.ui import resources

    scripted_comparison(monkeypatch, {"prompt": "a", "rag": "b", "finetuned": "c"})
    at = AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run()
    with resources.ingest_tracker().ingesting("hr_demo"):
        at.selectbox(key="domain").select("hr_demo").run()
        assert any("being added to" in w.value for w in at.warning)
        assert at.button[0].disabled
    at.run()
    assert not at.warning and not at.button[0].disabled


def test_history_reopens_and_exports(app_env: Path, monkeypatch) -> None:
    scripted_comparison(monkeypatch, {"prompt": "<b>bold</b> answer", "rag": "ok", "finetuned": "ok"})
    ask(AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run())
    at = AppTest.from_file(str(PAGES / "history_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader][-3:] == ["Prompt", "RAG", "Fine-tuned"]
    assert [b.label for b in at.get("download_button")] == ["Export JSON", "Export CSV", "Export HTML report"]


def test_upload_of_a_bad_file_shows_its_reason(app_env: Path) -> None:
    at = AppTest.from_file(str(PAGES / "documents_page.py"), default_timeout=120).run()
    assert not at.exception
    # AppTest cannot drive st.file_uploader: run the page's ingestion path as the button would
    from triptych.ingest import ingest_uploads
    from triptych.ui.resources import app_settings

    report = ingest_uploads(app_settings(), "hr_demo", [("notes.exe", b"MZ\x90\x00binary")])
    at.session_state["docs_report"] = report
    at.run()
    assert not at.exception
    assert any("notes\\.exe" in e.value and "unsupported file type" in e.value for e in at.error), [
        e.value for e in at.error
    ]


def test_scores_page_shows_a_run_per_pipeline(app_env: Path, monkeypatch) -> None:
    from triptych.evaluate import store

    metrics = {
        p: {"correct": c, "contains": c, "f1": c / 2, "total_s": {"median": t}, "ttft_s": {"median": t / 3},
            "cost_usd_total": 0.0, "errors": 0}
        for p, c, t in (("prompt", 0.2, 3.0), ("rag", 0.7, 5.0), ("finetuned", 0.4, 2.0))
    }  # fmt: skip
    run = store.RunSummary("r1", "hr_demo", "done", "2026-01-01T00:00:00Z", None, 12, list(metrics), metrics,
                           app_env)  # fmt: skip
    monkeypatch.setattr(store, "list_runs", lambda settings: [run])
    at = AppTest.from_file(str(PAGES / "scores_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["pipeline"]) == ["prompt", "rag", "finetuned"] and list(table["correct"]) == [0.2, 0.7, 0.4]
    assert len(at.get("vega_lite_chart")) == 3


def test_scores_page_headlines_unseen_questions_with_pairs_and_miss_causes(app_env: Path) -> None:
    from tests.unit.test_eval_cli import strip_new_keys
    from tests.unit.test_eval_training_overlap import run

    old = run(app_env)  # as stored before these figures were kept
    strip_new_keys(old.run.path)
    new = run(app_env)
    at = AppTest.from_file(str(PAGES / "scores_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="scores_run").value == new.run.run_id
    table = at.dataframe[0].value.set_index("pipeline")
    assert table.loc["finetuned", "questions"] == "unseen in training" and table.loc["finetuned", "n"] == 2
    assert (
        table.loc["finetuned", "correct"] == 0.5 and table.loc["finetuned", "seen in training"] == "seen 50.0 % (n=2)"
    )
    assert table.loc["rag", "n"] == 4 and table.loc["rag", "correct 95 % CI"] == "30.1–95.4 %"
    pairs = at.dataframe[1].value
    assert list(pairs["reading"]) == ["no clear difference at n = 2"] and list(pairs["n"]) == [2]
    assert len(at.get("vega_lite_chart")) == 4  # accuracy, latency, cost, miss causes
    (dataset,) = at.get("vega_lite_chart")[3].proto.datasets
    bars = pyarrow.ipc.open_stream(dataset.data.data).read_all().to_pylist()
    values = {(d["bar"], d["cause"]): d["answers"] for d in bars}
    assert values == {("hr · finetuned", "unseen fact"): 1, ("hr · finetuned", "seen but wrong"): 1,
                      ("hr · rag", "refused"): 1}  # fmt: skip

    at.selectbox(key="scores_run").select(old.run.run_id).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("pipeline")
    assert table.loc["finetuned", "seen in training"] == "seen: not recorded"
    assert table.loc["finetuned", "correct 95 % CI"] == "not recorded"
    captions = " ".join(c.value for c in at.caption)
    assert "Paired differences: not recorded" in captions and "Miss causes: not recorded" in captions


def test_an_evaluation_started_on_the_scores_page_runs_in_the_background(app_env: Path, monkeypatch) -> None:
    from triptych.ui.eval_jobs import app_eval_jobs

    app_eval_jobs.clear()
    scripted_comparison(monkeypatch, {"prompt": "Employees get 25 days.", "rag": "25 days [1]."})
    at = AppTest.from_file(str(PAGES / "scores_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    at.selectbox(key="ev_domain").select("hr_demo").run()
    at.multiselect(key="ev_pipelines").set_value(["prompt", "rag"]).run()
    at.button(key="ev_start").click().run()
    assert not at.exception, at.exception
    assert "has no index yet" in at.error[0].value  # RAG needs the domain's documents indexed first

    at.multiselect(key="ev_pipelines").set_value(["prompt"]).run()
    at.button(key="ev_start").click().run()
    assert not at.exception, at.exception
    job = app_eval_jobs().get("hr_demo")
    assert job is not None
    job.thread.join(20)  # type: ignore[union-attr]
    assert (job.status, job.done, job.total) == ("complete", 1, 1)
    at.run()
    assert not at.exception, at.exception
    assert f"Run {job.run_id} is complete" in at.success[0].value
    assert at.selectbox(key="scores_run").value == job.run_id  # the new run is listed, newest first
    table = at.dataframe[0].value.set_index("pipeline")
    assert table.loc["prompt", "correct"] == 1.0 and table.loc["prompt", "n"] == 1


def test_finetune_page_lists_runs_and_the_active_adapter(app_env: Path) -> None:
    runs = app_env / "data" / "runs"
    (runs / "hr_demo-001").mkdir(parents=True)
    (runs / "hr_demo-001" / "adapter.gguf").write_bytes(b"GGUF")
    (runs / "hr_demo-001" / "run.json").write_text(json.dumps({
        "domain": "hr_demo", "status": "done", "training": {"steps": 30},
        "training_set": {"examples": 12, "generator": {"kind": "llm", "model": "writer-70b"}},
        "accuracy_after": {"test": {"n": 4, "contains": 25.0, "f1": 31.2}},
    }))  # fmt: skip
    (runs / "active.json").write_text(json.dumps({"hr_demo": "hr_demo-001"}))
    (app_env / "corpora" / "no_qa" / "docs").mkdir(parents=True)
    (app_env / "corpora" / "no_qa" / "docs" / "a.md").write_text("# A\n\nThe office opens at 9 am on weekdays.\n")
    at = AppTest.from_file(str(PAGES / "finetune_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value["local adapter (run)"].tolist() == ["hr_demo-001", "– not fine-tuned yet"]
    runs_table = at.dataframe[1].value
    assert runs_table["status"].tolist() == ["done"] and runs_table["steps"].tolist() == [30]
    assert runs_table["training set"].tolist() == ["12 · written by writer-70b"]
    assert runs_table["test contains after (%)"].tolist() == [25.0]
    assert at.button(key="ft_start").label == "Start training"
    assert not any("has no gold QA" in c.value for c in at.caption)
    at.selectbox(key="ft_domain").select("no_qa").run()
    assert any("no_qa has no gold QA" in c.value and "TRIPTYCH_FINETUNE_QA_MODEL" in c.value for c in at.caption)


def test_the_fine_tuned_column_and_the_finetune_page_show_a_training_in_progress(app_env: Path) -> None:
    from triptych.finetune.worker import JobStatus, cancel_path, write_status

    settings = Settings(_env_file=None, data_dir=app_env / "data", corpora_dir=app_env / "corpora")  # type: ignore[call-arg]
    write_status(settings, JobStatus("hr_demo", status="training", pid=os.getpid(), step=40, total_steps=120,
                                     loss=0.5, eta_s=130))  # fmt: skip
    at = AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run()
    at.selectbox(key="domain").select("hr_demo").run()
    assert not at.exception, at.exception
    shown = [i.value.replace("\\", "") for i in at.info]  # markdown escapes removed: what the user reads
    assert "Fine-tuned column: training its adapter: step 40/120, about 2 min left." in shown

    at = AppTest.from_file(str(PAGES / "finetune_page.py"), default_timeout=60).run()
    at.selectbox(key="ft_domain").select("hr_demo").run()
    assert not at.exception, at.exception
    assert at.button(key="ft_start").disabled
    assert any("status: training" in c.value for c in at.caption)
    at.button(key="ft_cancel").click().run()
    assert cancel_path(settings, "hr_demo").is_file()  # the worker stops at its next step


def test_a_stale_adapter_is_offered_a_retrain(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from triptych.finetune import registry
    from triptych.finetune.worker import read_status
    from triptych.ui import resources
    from triptych.ui.training_jobs import TrainingQueue

    settings = Settings(_env_file=None, data_dir=app_env / "data", corpora_dir=app_env / "corpora")  # type: ignore[call-arg]
    run_dir = settings.runs_dir / "20261130-120000-hr_demo"
    run_dir.mkdir(parents=True)
    (run_dir / "adapter.gguf").write_bytes(b"GGUF")
    registry.write_run(settings, run_dir.name, {"domain": "hr_demo", "status": "done"})
    registry.record_corpus(settings, run_dir.name, registry.corpus_sha256(settings, "hr_demo"))
    registry.activate(settings, "hr_demo", run_dir.name)
    (app_env / "corpora" / "hr_demo" / "docs" / "leave.md").write_text("# Leave\n\nEmployees get 27 days.\n")
    queue = TrainingQueue(settings, worker_args=SCRIPTED_TRAINER)
    monkeypatch.setattr(resources, "training_queue", lambda: queue)

    at = AppTest.from_file(str(PAGES / "finetune_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    stale = f"{run_dir.name} (stale: its documents changed since)"
    assert at.dataframe[0].value["local adapter (run)"].tolist() == [stale]
    at = AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run()
    at.selectbox(key="domain").select("hr_demo").run()
    assert any("learned from documents that have changed" in w.value for w in at.warning)
    at.button(key="ft_retrain").click().run()
    assert not at.exception, at.exception
    assert queue.wait(60)
    assert read_status(settings, "hr_demo").status == "done"  # type: ignore[union-attr]
    assert not registry.is_stale(settings, "hr_demo")


@pytest.mark.parametrize("autotrain", [True, False])
def test_the_first_start_trains_the_missing_demo_adapter_once(app_env: Path, monkeypatch, autotrain: bool) -> None:
    from triptych.finetune import registry
    from triptych.ui import resources
    from triptych.ui.training_jobs import TrainingQueue

    monkeypatch.setenv("TRIPTYCH_AUTOTRAIN", str(autotrain).lower())
    settings = Settings(_env_file=None, data_dir=app_env / "data", corpora_dir=app_env / "corpora")  # type: ignore[call-arg]
    queue = TrainingQueue(settings, worker_args=SCRIPTED_TRAINER)
    monkeypatch.setattr(resources, "training_queue", lambda: queue)
    app = str(REPO / "app.py")
    at = AppTest.from_file(app, default_timeout=60).run()
    assert not at.exception, at.exception
    at.run()  # a rerun, and a second session, start nothing more
    AppTest.from_file(app, default_timeout=60).run()
    assert queue.wait(60)
    runs = [r for r in registry.list_runs(settings) if r.domain == "hr_demo"]
    if autotrain:
        assert [r.status for r in runs] == ["done"] and registry.active_adapter(settings, "hr_demo") is not None
    else:
        assert runs == [] and queue.status("hr_demo") is None
