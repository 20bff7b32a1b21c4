"""Demo packs: the file format (round trip, tampering and unknown versions refused, no keys), the
recorder on scripted pipelines (every token's time captured) and the pack shipped with hr_handbook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphs.compare import Comparison
from graphs.context import PipelineContext
from graphs.registry import PipelineSpec
from graphs.result import PipelineResult
from tests.fakes import FakeRetriever, ScriptedChat, make_chunk
from triptych import demo_pack
from triptych.demo_pack import DemoPack, PackError, RecordedComparison, TimedEvent, loads, read_pack, write_pack
from triptych.demo_record import (
    QuestionToRecord,
    preset_questions,
    questions_from_file,
    record_comparison,
    record_pack,
)
from triptych.documents.chunking import Chunk
from triptych.llm.queue import ModelQueue
from triptych.qa import QAFormatError
from triptych.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "corpora" / "hr_handbook" / demo_pack.SHIPPED_NAME  # recorded from the embedded model
REPLIES = {"prompt": "About twenty days.", "rag": "Employees get 25 days of annual leave [1].", "finetuned": "25 days"}


def settings(**kw) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def scripted(delays: dict[str, float], replies: dict[str, str] = REPLIES, **kw) -> Comparison:
    """A runner whose pipelines stream the scripted replies word by word, `delays[p]` seconds apart."""
    chunk = make_chunk("c1", "leave.md", "leave.md", "Leave", "Employees get 25 days of annual leave.", 0, 38, 0.8)

    def prepare(spec: PipelineSpec, domain: str | None, gate: ModelQueue) -> PipelineContext:
        chat = ScriptedChat(reply=replies[spec.id], delay=delays[spec.id])
        return PipelineContext(chat=chat, model=f"fake-{spec.id}", retriever=FakeRetriever([chunk]))

    return Comparison(settings(**kw), prepare=prepare)


def a_pack() -> DemoPack:
    """A pack written by hand: one comparison with two pipelines and their token times."""
    results = {
        "prompt": PipelineResult("prompt", "Prompt", answer="Twenty days.", model="smollm2", ttft_s=0.31, total_s=0.9),
        "rag": PipelineResult(
            "rag", "RAG", answer="25 days [1].", model="smollm2", ttft_s=0.52, total_s=1.25,
            sources=[Chunk("leave.md#0", "leave.md", "leave.md", "Leave", "Employees get 25 days.", 0, 23, 0.8, n=1)],
        ),
    }  # fmt: skip
    events = [TimedEvent(0.01, "prompt", "started"), TimedEvent(0.31, "prompt", "token", "Twenty"),
              TimedEvent(0.6, "prompt", "token", " days."), TimedEvent(0.9, "prompt", "done"),
              TimedEvent(0.52, "rag", "token", "25"), TimedEvent(1.1, "rag", "token", " days [1]."),
              TimedEvent(1.25, "rag", "done")]  # fmt: skip
    comp = RecordedComparison("How many days of leave?", "hr_handbook", ["prompt", "rag"], results, events,
                              gold_answers=["25 days"], recorded_at="2026-11-30T19:00:00+00:00")  # fmt: skip
    return DemoPack.made_with(settings(), [comp], "hr_handbook")


def test_a_pack_round_trips_with_its_answers_sources_and_token_times(tmp_path: Path) -> None:
    pack = a_pack()
    path = write_pack(pack, tmp_path / "demo.json")
    back = read_pack(path)
    assert back == pack
    comp = back.comparisons[0]
    assert [(e.t, e.text) for e in comp.tokens("rag")] == [(0.52, "25"), (1.1, " days [1].")]
    assert comp.results["rag"].sources[0].text == "Employees get 25 days."
    assert comp.results["rag"].ttft_s == 0.52 and comp.duration_s == 1.25
    assert back.models == {"prompt": ["smollm2"], "rag": ["smollm2"]}
    assert back.settings["max_tokens"] == 256  # the settings it was made with
    assert back.machine == demo_pack.this_machine() and "CPU cores" in back.machine  # what the timings mean


def test_a_pack_reformatted_but_not_changed_still_plays(tmp_path: Path) -> None:
    """Re-indenting the file (an editor, a mail client) changes no content: it is accepted."""
    path = write_pack(a_pack(), tmp_path / "demo.json")
    path.write_text(json.dumps(json.loads(path.read_text()), indent=None))
    assert read_pack(path).comparisons[0].question == "How many days of leave?"


@pytest.mark.parametrize(
    "edit",
    [
        lambda body: body["comparisons"][0]["results"]["prompt"].update(answer="25 days."),  # a better answer
        lambda body: body["comparisons"][0]["events"][1].__setitem__(0, 0.05),  # a faster first token
        lambda body: body["models"].update(prompt=["gpt-4o"]),  # another model's name
        lambda body: body["comparisons"][0]["events"][1].__setitem__(0, float("nan")),  # not even a number
    ],
    ids=["answer", "timing", "model", "nan"],
)
@pytest.mark.parametrize("shipped", [False, True], ids=["recorded", "shipped"])
def test_a_pack_edited_by_hand_is_refused(tmp_path: Path, edit, shipped: bool) -> None:  # type: ignore[no-untyped-def]
    """A pack recorded here, or a copy of the shipped one: either edited no longer reads."""
    path = tmp_path / "demo.json"
    if shipped:
        path.write_bytes(SHIPPED.read_bytes())
    else:
        write_pack(a_pack(), path)
    doc = json.loads(path.read_text())
    edit(doc["pack"])
    path.write_text(json.dumps(doc, indent=2))
    with pytest.raises(PackError, match="demo.json was changed after recording"):
        read_pack(path)


def test_a_pack_of_an_unknown_format_version_is_refused(tmp_path: Path) -> None:
    doc = demo_pack.to_file_dict(a_pack())
    doc["version"] = 2
    with pytest.raises(PackError, match=r"format version 2, which this Triptych .* cannot play: it reads version 1"):
        loads(json.dumps(doc), "future.json")


@pytest.mark.parametrize("data", [b"\x89PNG not json", b"[1, 2]", b'{"format": "something-else", "version": 1}'])
def test_what_is_not_a_pack_is_refused_with_how_to_make_one(data: bytes) -> None:
    with pytest.raises(PackError, match="x.json is not a Triptych demo pack"):
        loads(data, "x.json")


def test_keys_are_never_written_into_a_pack(tmp_path: Path, clean_env: Path, monkeypatch) -> None:
    """Key *variable names* are kept (as on the Settings page); key values, passwords, URL credentials never."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-0123456789abcdef")
    monkeypatch.setenv("VLLM_API_KEY", "vllm-secret-4242")
    (clean_env / ".env").write_text("JUDGE_KEY=judge-secret-777\n")
    cfg = settings(
        prompt={"model": "openai/gpt-4o-mini"},
        rag={"model": "vllm/qwen", "base_url": "https://bob:hunter2pw@gpu-box:8000/v1", "api_key_env": "VLLM_API_KEY"},
        judge_model="openai/gpt-4o-mini", judge_api_key_env="JUDGE_KEY", access_password="room-pass-99",
    )  # fmt: skip
    pack = a_pack()
    pack.settings = demo_pack.runstore.settings_snapshot(cfg)
    # an error message that happens to quote a key and a URL with credentials
    leak = "the endpoint https://bob:hunter2pw@gpu-box:8000/v1 refused vllm-secret-4242 (judge-secret-777)"
    pack.comparisons[0].results["rag"].error = leak
    text = write_pack(pack, tmp_path / "p.json", secrets=demo_pack.key_values(cfg)).read_text()
    for secret in ("sk-live-0123456789abcdef", "vllm-secret-4242", "judge-secret-777", "hunter2pw", "room-pass-99"):
        assert secret not in text
    assert '"api_key_env": "VLLM_API_KEY"' in text and "https://***@gpu-box:8000/v1" in text
    assert read_pack(tmp_path / "p.json").comparisons[0].results["rag"].error.startswith("the endpoint https://***@")


def test_the_shipped_hr_handbook_pack_is_found_and_verifies() -> None:
    """A fresh clone has a pack to replay: the tool's own recording of hr_handbook's preset questions."""
    cfg = settings(corpora_dir=REPO / "corpora")
    assert demo_pack.shipped_packs(cfg) == [SHIPPED]
    assert demo_pack.available_packs(cfg) == [demo_pack.PackFile(SHIPPED, shipped=True)]  # no packs of the user's
    assert demo_pack.is_shipped(cfg, SHIPPED) and not demo_pack.is_shipped(cfg, REPO / "data" / "packs" / "x.json")
    doc = json.loads(SHIPPED.read_bytes())
    assert doc["format"] == demo_pack.FORMAT and doc["version"] == demo_pack.VERSION  # a version this Triptych reads
    assert doc["checksum"] == demo_pack.checksum(doc["pack"])  # unchanged since it was recorded
    pack = read_pack(SHIPPED)
    presets = [q.question for q in preset_questions(cfg, "hr_handbook")]
    asked = [c.question for c in pack.comparisons]
    assert pack.domain == "hr_handbook" and 3 <= len(asked) <= 4 and asked == presets[: len(asked)], (
        "the pack no longer matches the presets: record it again (README, Record and replay)"
    )
    for comp in pack.comparisons:  # the real model answered, streamed and timed, with its sources
        rag = comp.results["rag"]
        assert rag.answer and not rag.error and rag.sources and comp.tokens("rag") and comp.gold_answers
        assert "".join(t.text for t in comp.tokens("rag")).strip() == rag.answer
    assert pack.models["rag"] == [pack.settings["local_model_alias"]] and pack.settings["rag"]["model"] == "local"
    mark = demo_pack.shipped_mark(pack)
    assert mark.startswith(f"shipped with Triptych, recorded {pack.created_at[:10]} on {pack.machine} (")
    assert pack.machine and pack.describe_models() in mark


def test_the_recorder_captures_the_time_of_every_token() -> None:
    runner = scripted({"prompt": 0.15, "rag": 0.01, "finetuned": 0.0})
    comp = record_comparison(runner, QuestionToRecord("How many days?", ["25 days"]), "hr_handbook",
                             ["prompt", "rag", "finetuned"])  # fmt: skip
    for pid, delay in {"prompt": 0.15, "rag": 0.01}.items():
        tokens = comp.tokens(pid)
        result = comp.results[pid]
        assert "".join(t.text for t in tokens) == result.answer == REPLIES[pid]
        assert len(tokens) == len(REPLIES[pid].split(" "))
        gaps = [b.t - a.t for a, b in zip(tokens, tokens[1:], strict=False)]
        assert min(gaps) >= delay * 0.8  # the words came `delay` apart, and so were they recorded
        # the recorded first token is the one the result timed (after the pipeline's setup), not a poll later
        first_due = (result.setup_s or 0.0) + result.ttft_s
        assert first_due - 0.01 <= tokens[0].t <= first_due + 0.25
        done = next(e for e in comp.events if e.pipeline == pid and e.kind == "done")
        assert done.t >= tokens[-1].t and done.t >= result.total_s - 0.01
    # the slow pipeline's tokens are spread over its reply, the interleaving of the three is kept
    assert comp.tokens("prompt")[-1].t > comp.tokens("rag")[-1].t
    assert [e.t for e in comp.events] == sorted(e.t for e in comp.events)
    assert comp.gold_answers == ["25 days"] and comp.results["rag"].sources[0].source == "leave.md"


def test_a_recorded_pack_names_the_models_and_keeps_timings_through_the_file(tmp_path: Path) -> None:
    runner = scripted({"prompt": 0.01, "rag": 0.01, "finetuned": 0.01})
    seen = []
    questions = [QuestionToRecord("How many days?"), QuestionToRecord("Who approves leave?")]
    pack = record_pack(settings(), runner, questions, "hr_handbook", ["prompt", "rag"], on_recorded=seen.append)
    assert [c.question for c in seen] == ["How many days?", "Who approves leave?"]
    assert pack.models == {"prompt": ["fake-prompt"], "rag": ["fake-rag"]}
    back = read_pack(write_pack(pack, tmp_path / "two.json"))
    assert back == pack and back.comparisons[1].tokens("rag") == pack.comparisons[1].tokens("rag")


def test_questions_come_from_a_text_file_or_a_qa_file(tmp_path: Path) -> None:
    text = tmp_path / "questions.txt"
    text.write_text("# for the board\nHow many days of leave?\n\nWho approves it?\n")
    assert [q.question for q in questions_from_file(text)] == ["How many days of leave?", "Who approves it?"]
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q1", "question": "How many days?", "answer": "25 days", "alt_answers": ["25"]}))
    assert questions_from_file(qa) == [QuestionToRecord("How many days?", ["25 days", "25"])]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    with pytest.raises(QAFormatError, match="no questions in it; write one question a line"):
        questions_from_file(empty)


def test_demo_record_writes_a_pack_with_progress_and_demo_show_refuses_an_edited_one(
    clean_env: Path, monkeypatch
) -> None:
    """The CLI end to end on scripted pipelines: `demo record --questions` then `demo show`."""
    import graphs.compare
    from triptych.cli import app

    monkeypatch.setattr(graphs.compare, "Comparison", lambda s, local=None: scripted({"prompt": 0.0}, **{}))
    (clean_env / "q.txt").write_text("How many days of leave?\nWho approves it?\n")
    cli = CliRunner()
    out = clean_env / "packs" / "board.json"
    done = cli.invoke(app, ["demo", "record", "--domain", "hr_handbook", "--questions", "q.txt",
                            "--pipelines", "prompt", "--out", str(out)])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"recorded 2 question(s) into {out}" in done.output and "models: prompt: fake-prompt" in done.output
    assert "2/2" in done.output  # the progress bar's count
    shown = cli.invoke(app, ["demo", "show", str(out)])
    assert shown.exit_code == 0 and "How many days of leave?  [prompt " in shown.output
    assert "shipped with Triptych" not in shown.output  # the user's own pack
    out.write_text(out.read_text().replace("About twenty days.", "Exactly 25 days."))
    refused = cli.invoke(app, ["demo", "show", str(out)])
    assert refused.exit_code == 2 and "was changed after recording" in refused.output


def test_demo_show_marks_the_shipped_pack(clean_env: Path, monkeypatch) -> None:
    from triptych.cli import app

    monkeypatch.setenv("TRIPTYCH_CORPORA_DIR", str(REPO / "corpora"))
    shown = CliRunner().invoke(app, ["demo", "show", str(SHIPPED)])
    assert shown.exit_code == 0, shown.output
    assert "shipped with Triptych, recorded " in shown.output and "; read-only" in shown.output
    assert shown.output.count("  [prompt ") == len(read_pack(SHIPPED).comparisons)


def test_demo_record_interrupted_keeps_the_questions_already_recorded(clean_env: Path, monkeypatch) -> None:
    import graphs.compare
    import triptych.demo_record
    from triptych.cli import app

    monkeypatch.setattr(graphs.compare, "Comparison", lambda s, local=None: scripted({"prompt": 0.0}))
    real = triptych.demo_record.record_comparison
    calls = []

    def interrupted_at_the_second(*args, **kw):  # type: ignore[no-untyped-def]
        calls.append(args[1].question)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(triptych.demo_record, "record_comparison", interrupted_at_the_second)
    (clean_env / "q.txt").write_text("First?\nSecond?\nThird?\n")
    out = clean_env / "partial.json"
    done = CliRunner().invoke(app, ["demo", "record", "-d", "hr_handbook", "--questions", "q.txt",
                                    "--pipelines", "prompt", "-o", str(out)])  # fmt: skip
    assert done.exit_code == 130, done.output  # cut short, as Ctrl-C says, but what was recorded is saved
    assert "interrupted after 1 question(s)" in done.output and f"recorded 1 question(s) into {out}" in done.output
    assert [c.question for c in read_pack(out).comparisons] == ["First?"]
