"""The cost card's figures come from what was measured: eval answers, the history, index builds, adapter runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from graphs.result import PipelineResult
from tests.stored_runs import Answer, write_adapter_run, write_eval_run
from triptych import runstore
from triptych.cost_sources import builds_path, domain_costs, index_builds, record_index_build
from triptych.cost_view import cost_card_html, cost_chart_svg
from triptych.history import save_comparison
from triptych.ingest import IngestReport, ingest_paths
from triptych.qa import QARecord
from triptych.settings import Settings
from triptych.testing import HashEmbedder, ephemeral_client, unique_domain

QUESTIONS = [
    QARecord("q1", "Which weekday is the anchor day?", "Tuesday", doc_ids=("remote_work",), split="test"),
    QARecord("q2", "How much is the on-call allowance?", "EUR 1,800", doc_ids=("on_call",), split="test"),
]


def local_settings(tmp_path: Path, **kw: object) -> Settings:
    # 3.6 USD an hour: a tenth of a cent per busy second, easy to check by hand
    return Settings(_env_file=None, data_dir=tmp_path / "data", cost_machine_usd_per_hour=3.6, **kw)  # type: ignore[call-arg]


def answers(rag_s: float = 3.0) -> dict[str, dict[str, Answer]]:
    return {
        q.id: {
            "prompt": Answer("Monday.", total_s=2.0, queued_s=1.0),  # 1 s busy, 1 s waiting for the model
            "rag": Answer(f"{q.answer} [1].", total_s=rag_s, prompt_tokens=650),
            "finetuned": Answer("Tuesday.", total_s=1.5, queued_s=0.5),
        }
        for q in QUESTIONS
    }


def record_build(settings: Settings, domain: str, seconds: float, chunks: int) -> None:
    report = IngestReport(domain, settings.embedding_model, seconds=seconds)
    from triptych.ingest import FileOutcome

    report.outcomes.append(FileOutcome("a.md", "a.md", "added", chunks=chunks, bytes=1))
    record_index_build(settings, report)


def test_measured_costs_give_the_lines_and_the_rag_fine_tuning_break_even(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    run_id = write_eval_run(settings, "hr", QUESTIONS, answers())
    booked = PipelineResult("rag", "RAG", answer="In the portal [1].", total_s=5.0, queued_s=0.0)
    save_comparison(settings, "Where do I book leave?", "hr", {"rag": booked})
    save_comparison(settings, "Other domain", "legal", {"rag": PipelineResult("rag", "RAG", answer="x", total_s=99.0)})
    record_build(settings, "hr", seconds=10.0, chunks=100)
    write_adapter_run(settings, "hr", "20261130-100000-hr", {
        "wall_s": 1000.0, "eval_before_s": 100.0, "eval_after_s": 100.0,
        "training": {"steps": 400, "s_per_step": 1.9, "wall_s": 760.0},
    })  # fmt: skip

    dc = domain_costs(settings, "hr")

    prompt, rag, ft = (dc.per_question[p] for p in ("prompt", "rag", "finetuned"))
    assert prompt.usd == pytest.approx(0.001) and prompt.busy_s == pytest.approx(1.0)  # the queue is not billed
    assert (rag.n, rag.from_eval, rag.from_history) == (3, 2, 1)  # the other domain's answer is not counted
    assert rag.busy_s == pytest.approx(11 / 3) and rag.usd == pytest.approx(0.011 / 3)
    assert ft.usd == pytest.approx(0.001) and dc.eval_run == run_id
    (index,) = dc.one_off["rag"]
    assert index.usd == pytest.approx(0.01) and "100 chunks" in index.detail  # 10 s of machine time
    (training,) = dc.one_off["finetuned"]
    assert training.usd == pytest.approx(0.8) and "less 200 s of scoring" in training.detail  # 800 s
    assert dc.one_off["prompt"] == []
    lines = {line.pipeline: line for line in dc.lines}
    assert lines["rag"].one_off_usd == pytest.approx(0.01) and lines["finetuned"].one_off_usd == pytest.approx(0.8)

    # prompt is cheapest throughout (no crossing with RAG; parallel to fine-tuned): one crossing only
    (be,) = dc.crossings
    assert (be.cheaper_first.pipeline, be.cheaper_after.pipeline) == ("rag", "finetuned")
    assert be.questions == pytest.approx(0.79 / (0.011 / 3 - 0.001))  # about 296
    assert dc.sentences() == [
        "RAG's slower answers cost more than Fine-tuned after about 300 questions (about 10 a day over 30 days): "
        "Fine-tuned's one-off $0.80 is paid back at $0.0027 saved per question."
    ]
    assert dc.axis_questions == 500
    svg = cost_chart_svg(dc)
    assert svg.count('class="cost-line"') == 3 and svg.count('class="break-even"') == 1 and "≈300" in svg
    card = cost_card_html(dc)
    assert f"evaluation run {run_id} (n=2)" in card and "the comparison history (n=1)" in card


def test_remote_endpoints_are_priced_by_tokens_from_answers_made_with_that_endpoint(tmp_path: Path) -> None:
    remote = {"rag": {"model": "openai/gpt-4o-mini", "price_in_per_1k": 0.15, "price_out_per_1k": 0.6}}
    settings = local_settings(tmp_path, **remote)
    # made while RAG ran on the local model: its timings say nothing about the remote bill
    write_eval_run(settings, "hr", QUESTIONS, answers(), run_id="20261129-100000-hr",
                   snapshot=runstore.settings_snapshot(local_settings(tmp_path)))  # fmt: skip
    before = domain_costs(settings, "hr")
    assert before.per_question["rag"].n == 0 and before.per_question["rag"].usd is None
    assert "RAG: 2 answers made with another endpoint than openai/gpt-4o-mini are not counted" in before.notes[-1]

    write_eval_run(settings, "hr", QUESTIONS, answers(), run_id="20261130-100000-hr")
    rag = domain_costs(settings, "hr").per_question["rag"]
    assert not rag.local and rag.n == 2 and rag.prompt_tokens == 650 and rag.completion_tokens == 10
    assert rag.usd == pytest.approx((650 * 0.15 + 10 * 0.6) / 1000)
    assert rag.basis == "650 prompt + 10 completion tokens"


def test_what_was_never_measured_is_said_and_left_off_the_chart(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    write_eval_run(settings, "hr", QUESTIONS, answers())
    dc = domain_costs(settings, "hr")
    assert [line.pipeline for line in dc.lines] == ["prompt"]
    assert dc.one_off["rag"][0].usd is None and "not recorded" in dc.one_off["rag"][0].detail
    assert "triptych index delete hr" in dc.one_off["rag"][0].detail
    assert dc.one_off["finetuned"][0].detail == "not recorded: hr has no trained adapter yet"
    assert "RAG is left off the chart: its index build is not recorded." in dc.notes
    assert "Fine-tuned is left off the chart: its fine-tuning is not recorded." in dc.notes
    assert domain_costs(settings, "nothing-here").per_question == {}
    assert "No answers measured for nothing-here" in cost_card_html(domain_costs(settings, "nothing-here"))


def test_zero_prices_say_so_and_mark_no_break_even(tmp_path: Path) -> None:
    settings = local_settings(tmp_path).model_copy(update={"cost_machine_usd_per_hour": 0.0})
    write_eval_run(settings, "hr", QUESTIONS, answers())
    record_build(settings, "hr", seconds=10.0, chunks=100)
    write_adapter_run(settings, "hr", "20261130-100000-hr", {"wall_s": 500.0})
    dc = domain_costs(settings, "hr")
    assert len(dc.lines) == 3 and all(line.at(1e6) == 0 for line in dc.lines)
    assert dc.crossings == [] and any("Every cost is zero" in n for n in dc.notes)
    assert "The lines do not cross" in cost_card_html(dc)


def test_ingestion_records_its_build_time_and_the_card_scales_it_to_the_index(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\n" + "Employees accrue two days of leave per month. " * 40)
    (docs / "travel.md").write_text("# Travel\n\n" + "Book trains for trips under four hours. " * 40)
    client, domain = ephemeral_client(), unique_domain("cost")
    embedder = HashEmbedder(model_name=settings.embedding_model)
    report = ingest_paths(settings, domain, [docs], client=client, embedder=embedder)
    (build,) = index_builds(settings, domain)
    assert build["chunks"] == report.chunks > 0 and build["files"] == 2
    assert build["seconds"] == pytest.approx(report.seconds, abs=1e-3)
    assert 0 < build["cpu_s"]  # the process's CPU time while it built (wall time is stretched by other processes)

    ingest_paths(settings, domain, [docs], client=client, embedder=embedder)  # nothing changed: nothing built
    assert len(index_builds(settings, domain)) == 1
    assert len(builds_path(settings).read_text().splitlines()) == 1

    from triptych.cost_sources import index_one_off

    one_off = index_one_off(settings, domain, client=client)
    assert f"{report.chunks} chunks in the index now" in one_off.detail and "s of CPU time" in one_off.detail
    assert one_off.usd == pytest.approx(build["seconds"] * 3.6 / 3600, rel=1e-3)


def test_a_hosted_fine_tune_costs_its_trained_tokens_at_the_training_price(tmp_path: Path) -> None:
    from triptych.finetune import registry

    hosted = {"model": "openai/gpt-4o-mini", "price_in_per_1k": 0.3, "price_out_per_1k": 1.2}
    settings = local_settings(tmp_path, finetuned=hosted, cost_hosted_training_usd_per_1k=0.003)
    write_eval_run(settings, "hr", QUESTIONS, answers())
    registry.write_run(settings, "20261130-090000-hr", {
        "run_id": "20261130-090000-hr", "domain": "hr", "kind": "openai", "status": "succeeded",
        "hosted_model": "ft:gpt-4o-mini-2024-07-18:acme::abc123", "trained_tokens": 250_000,
    })  # fmt: skip
    registry.activate(settings, "hr", "20261130-090000-hr")
    dc = domain_costs(settings, "hr")
    (training,) = dc.one_off["finetuned"]
    assert training.usd == pytest.approx(0.75)  # 250K tokens at $0.003 per 1K
    assert training.detail == "hosted job of run 20261130-090000-hr: 250,000 trained tokens at $0.003 per 1K"
    ft = dc.per_question["finetuned"]
    assert not ft.local and ft.usd == pytest.approx((100 * 0.3 + 10 * 1.2) / 1000)


def test_local_answers_with_cpu_seconds_are_priced_by_them_and_the_rest_by_busy_seconds(tmp_path: Path) -> None:
    settings = local_settings(tmp_path, cost_machine_vcpus=2)  # a CPU second: half of $0.001, $0.0005
    cpu_answers = {
        q.id: {
            "prompt": Answer("Monday.", total_s=2.0, queued_s=1.0),  # CPU time not recorded: 1 s busy
            "rag": Answer(f"{q.answer} [1].", total_s=3.0, cpu_s=3.0, prompt_tokens=650),
            "finetuned": Answer("Tuesday.", total_s=1.5, queued_s=0.5, cpu_s=cpu),
        }
        for q, cpu in zip(QUESTIONS, (0.84, 1.16), strict=True)
    }
    write_eval_run(settings, "hr", QUESTIONS, cpu_answers)
    older = PipelineResult("rag", "RAG", answer="In the portal [1].", total_s=5.0)  # asked before cpu_s was kept
    save_comparison(settings, "Where do I book leave?", "hr", {"rag": older})
    record_build(settings, "hr", seconds=10.0, chunks=100)
    write_adapter_run(settings, "hr", "20261130-100000-hr", {"wall_s": 800.0})

    dc = domain_costs(settings, "hr")

    prompt, rag, ft = (dc.per_question[p] for p in ("prompt", "rag", "finetuned"))
    assert ft.cpu_s == pytest.approx(1.0) and ft.usd == pytest.approx(0.0005) and ft.basis == "1.00 CPU-s"
    assert rag.usd == pytest.approx(0.0015) and rag.basis == "3.00 CPU-s"
    assert (rag.n, rag.from_history, rag.no_cpu) == (2, 0, 1)  # the older answer is left out, and said so
    assert "RAG: priced by the CPU time of the 2 answers that recorded it; 1 without it" in " ".join(dc.notes)
    assert prompt.cpu_s is None and prompt.usd == pytest.approx(0.001)
    assert prompt.basis == "1.00 s of machine time (CPU time not recorded)"
    card = cost_card_html(dc)
    assert "3.00 CPU-s" in card and "for 2 vCPUs (TRIPTYCH_COST_MACHINE_VCPUS)" in card

    # RAG and fine-tuned are both priced by CPU seconds: the sentence says so; prompt's basis differs from fine-tuned's
    assert dc.sentences() == [
        "RAG's CPU-heavier answers cost more than Fine-tuned after about 790 questions (about 26 a day over 30 "
        "days): Fine-tuned's one-off $0.80 is paid back at $0.001 saved per question.",  # 0.79 / (0.0015 - 0.0005)
        "Prompt's answers cost more than Fine-tuned after about 1,600 questions (about 53 a day over 30 days): "
        "Fine-tuned's one-off $0.80 is paid back at $0.0005 saved per question.",  # 0.80 / (0.001 - 0.0005)
    ]


def test_records_from_before_cpu_seconds_load_and_are_priced_by_busy_seconds(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    run_id = write_eval_run(settings, "hr", QUESTIONS, answers())
    save_comparison(settings, "Where do I book leave?", "hr",
                    {"rag": PipelineResult("rag", "RAG", answer="In the portal [1].", total_s=5.0)})  # fmt: skip
    stored = [settings.data_dir / "evals" / run_id / "answers.jsonl", *(settings.data_dir / "history").glob("*.json")]
    for path in stored:  # as written before the key existed
        text = path.read_text()
        assert '"cpu_s": null' in text
        path.write_text(re.sub(r'"cpu_s": null,\s*', "", text))
        assert '"cpu_s"' not in path.read_text()

    dc = domain_costs(settings, "hr")
    prompt, rag = dc.per_question["prompt"], dc.per_question["rag"]
    assert prompt.usd == pytest.approx(0.001) and prompt.basis == "1.00 s of machine time (CPU time not recorded)"
    assert (rag.n, rag.no_cpu) == (3, 0) and rag.usd == pytest.approx(0.011 / 3)


def test_the_break_even_a_day_spreads_the_one_offs_over_the_configured_days(tmp_path: Path) -> None:
    settings = local_settings(tmp_path, cost_horizon_days=7)
    write_eval_run(settings, "hr", QUESTIONS, answers())
    record_build(settings, "hr", seconds=10.0, chunks=100)
    write_adapter_run(settings, "hr", "20261130-100000-hr", {"wall_s": 800.0})
    dc = domain_costs(settings, "hr")
    (be,) = dc.crossings  # RAG 3 s busy ($0.003) vs fine-tuned 1 s ($0.001): (0.80 - 0.01) / 0.002 = 395
    assert be.questions == pytest.approx(395) and dc.horizon_days == 7
    assert dc.sentences() == [
        "RAG's slower answers cost more than Fine-tuned after about 400 questions (about 56 a day over 7 days): "
        "Fine-tuned's one-off $0.80 is paid back at $0.002 saved per question."  # 395 / 7 = 56.4
    ]
    card = cost_card_html(dc)
    assert "over the 7 days the one-off costs are spread over (TRIPTYCH_COST_HORIZON_DAYS" in card
    assert "at about 400 questions (about 56 a day over 7 days)" in cost_chart_svg(dc)

    yearly = domain_costs(settings.model_copy(update={"cost_horizon_days": 3650}), "hr")
    assert "after about 400 questions (about 1 every 9 days over 3650 days)" in yearly.sentences()[0]  # 9.2 days


def test_the_hybrid_is_charged_for_the_adapter_it_answers_with(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    with_hybrid = {q: {**a, "finetuned_rag": Answer("Tuesday [1].", total_s=2.0)} for q, a in answers().items()}
    write_eval_run(settings, "hr", QUESTIONS, with_hybrid)
    write_adapter_run(settings, "hr", "20261130-100000-hr", {"wall_s": 100.0})
    assert [o.detail for o in domain_costs(settings, "hr").one_off["finetuned_rag"] if o.what == "fine-tuning"] == [
        "run 20261130-100000-hr: 100 s wall time"
    ]  # without a with-passages adapter the hybrid answers with the closed-book one
    write_adapter_run(settings, "hr", "20261130-110000-hr", {"wall_s": 300.0, "mode": "with-passages"})
    dc = domain_costs(settings, "hr")
    (closed,) = dc.one_off["finetuned"]
    hybrid = next(o for o in dc.one_off["finetuned_rag"] if o.what == "fine-tuning")
    assert closed.detail == "run 20261130-100000-hr: 100 s wall time" and closed.usd == pytest.approx(0.1)
    assert hybrid.detail == "run 20261130-110000-hr: 300 s wall time" and hybrid.usd == pytest.approx(0.3)
