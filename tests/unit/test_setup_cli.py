"""`triptych setup ...`, `ask --setup` and evaluation runs under setups (scripted models)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from graphs.compare import Comparison
from graphs.context import PipelineContext
from tests.fakes import FakeRetriever
from tests.unit.test_eval_runner import CHUNKS, QA, chats
from triptych.cli import app
from triptych.evaluate.runner import Evaluation
from triptych.qa import load_qa
from triptych.settings import Settings
from triptych.setups import Setup, default_setup

runner = CliRunner()


def test_export_edit_import_list_show_and_diff(clean_env: Path) -> None:
    exported = runner.invoke(app, ["setup", "export", "default", "--output", "mine.json"])
    assert exported.exit_code == 0, exported.output
    data = json.loads((clean_env / "mine.json").read_text())
    data["retrieval"]["top_k"] = 4
    data["rag"]["system"] = "Answer in three words from the passages."
    (clean_env / "mine.json").write_text(json.dumps(data))

    imported = runner.invoke(app, ["setup", "import", "mine.json", "--name", "rag-top4"])
    assert imported.exit_code == 0, imported.output
    assert (clean_env / "data" / "setups" / "rag-top4.json").is_file()
    listed = runner.invoke(app, ["setup", "list"])
    assert listed.exit_code == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == ["default", "rag-top4"]
    shown = runner.invoke(app, ["setup", "show", "rag-top4"])
    assert json.loads(shown.stdout)["retrieval"]["top_k"] == 4
    diff = runner.invoke(app, ["setup", "diff", "default", "rag-top4"])
    assert diff.exit_code == 0
    assert "retrieval.top_k: 8 -> 4" in diff.output and "+Answer in three words from the passages." in diff.output
    same = runner.invoke(app, ["setup", "diff", "rag-top4", "rag-top4"])
    assert "same content" in same.output


def test_import_refuses_bad_prompts_and_unknown_fields_with_the_reason(clean_env: Path) -> None:
    data = default_setup(Settings(_env_file=None)).renamed("bad").model_dump(mode="json")  # type: ignore[call-arg]
    data["rag"]["system"] = "Answer."
    data["rag"]["user"] = "Question: {question}"
    (clean_env / "no_context.json").write_text(json.dumps(data))
    result = runner.invoke(app, ["setup", "import", "no_context.json"])
    assert result.exit_code == 2
    assert "neither the system prompt nor the user template has {context}" in result.output

    data = default_setup(Settings(_env_file=None)).renamed("bad").model_dump(mode="json")  # type: ignore[call-arg]
    data["prompt"]["system"] = "You are {persona}."
    data["retrieval"]["topk"] = 3
    (clean_env / "two_faults.json").write_text(json.dumps(data))
    result = runner.invoke(app, ["setup", "import", "two_faults.json"])
    assert result.exit_code == 2
    assert "unknown field 'retrieval.topk'" in result.output
    assert "unknown placeholder {persona}" in result.output
    assert not (clean_env / "data" / "setups").exists()  # nothing saved


def test_ask_and_eval_refuse_an_unknown_setup_naming_the_known_ones(clean_env: Path) -> None:
    result = runner.invoke(app, ["ask", "What?", "--setup", "nope"])
    assert result.exit_code == 2 and "no setup 'nope'; known: default" in result.output
    result = runner.invoke(app, ["eval", "--domain", "hr", "--setup", "nope"])
    assert result.exit_code == 2 and "no setup 'nope'" in result.output


def evaluation(setup: Setup | None) -> Evaluation:
    """Scripted pipelines under `setup`; data under ./data, where the CLI looks."""
    settings = Settings(_env_file=None, data_dir=Path("data"))  # type: ignore[call-arg]
    retriever = FakeRetriever(CHUNKS)
    replies = chats()

    def prepare(spec, domain, gate: asyncio.Semaphore) -> PipelineContext:  # type: ignore[no-untyped-def]
        return PipelineContext(chat=replies[spec.id], model=f"m-{spec.id}", retriever=retriever)

    return Evaluation(Comparison(settings, prepare=prepare, retriever_for=lambda d: retriever, setup=setup))


def test_runs_under_two_setups_record_them_and_compare_them(clean_env: Path) -> None:
    qa_file = clean_env / "qa.jsonl"
    qa_file.write_text("".join(json.dumps(q) + "\n" for q in QA))
    records = load_qa(qa_file, "test")
    base = default_setup(Settings(_env_file=None))  # type: ignore[call-arg]
    top4 = base.edited({"retrieval.top_k": 4, "rag.system": "Answer from the passages, cite [n]."}).renamed("top4")

    a = evaluation(None).run("hr", records, ["prompt", "rag"])
    b = evaluation(top4).run("hr", records, ["prompt", "rag"])
    assert b.run.run_id != a.run.run_id  # another setup is another experiment, never a continuation
    assert a.summary["setup"] == {"name": "default", "hash": base.hash}
    assert b.summary["setup"] == {"name": "top4", "hash": top4.hash}
    manifest = b.run.manifest()
    assert manifest["setup"]["setup"]["rag"]["system"] == "Answer from the passages, cite [n]."
    assert manifest["settings"]["top_k"] == 4
    # what makes two runs the same experiment is the setup's content, not its name
    renamed = evaluation(top4.renamed("top4-copy")).manifest("hr", records, ["prompt", "rag"], None, None)
    assert renamed["fingerprint"] == manifest["fingerprint"] != a.run.manifest()["fingerprint"]

    result = runner.invoke(app, ["eval", "compare", a.run.run_id, b.run.run_id, "--every-question"])
    assert result.exit_code == 0, result.output
    assert f"setups: A default ({base.hash}), B top4 ({top4.hash})" in result.output
    assert "retrieval.top_k: 8 -> 4" in result.output
    assert "every question" in result.output
    as_json = json.loads(runner.invoke(app, ["eval", "compare", a.run.run_id, b.run.run_id, "--json",
                                             "--every-question"]).output)  # fmt: skip
    assert len(as_json["every_question"]) == 6 and as_json["setups"]["b"] == f"top4 ({top4.hash})"
    report = runner.invoke(app, ["eval", "report", b.run.run_id, "--html", "r.html"])
    assert report.exit_code == 0 and f"setup: top4 ({top4.hash})" in (clean_env / "r.html").read_text()
