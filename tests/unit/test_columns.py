"""Columns under setups, with scripted models: a setup's prompts reach the model, Ask again re-runs only
the columns whose setup changed, and one pipeline can answer under two setups side by side."""

from __future__ import annotations

from pathlib import Path

from graphs.compare import Comparison, Event
from graphs.context import PipelineContext
from graphs.registry import PipelineSpec
from tests.fakes import FakeRetriever, ScriptedChat, make_chunk
from triptych.columns import changed_columns, columns_for, run_columns, word_diff
from triptych.llm.queue import ModelQueue
from triptych.qa import QARecord
from triptych.settings import Settings
from triptych.setups import default_setup

SHOTS = [QARecord(f"t{i}", f"Training question {i}?", f"Answer {i}.") for i in range(5)]


def scripted(calls: dict[str, int]) -> Comparison:
    """A runner whose pipelines answer with scripted models; counts how often each pipeline's model is asked.

    The prompt pipeline gets five training Q&A pairs as its few-shot pool.
    """
    retriever = FakeRetriever([make_chunk("c1", "d", "d.md", "D", "The office has 45 desks.", 0, 24, 0.9)])

    def prepare(spec: PipelineSpec, domain: str | None, gate: ModelQueue) -> PipelineContext:
        calls[spec.id] = calls.get(spec.id, 0) + 1
        chat = ScriptedChat(reply=f"{spec.id} answer {calls[spec.id]}", calls=[])
        return PipelineContext(chat=chat, model=f"m-{spec.id}", retriever=retriever, few_shot=SHOTS)

    return Comparison(Settings(_env_file=None), prepare=prepare)  # type: ignore[call-arg]


def system_of(result) -> str:  # type: ignore[no-untyped-def]
    return next(m["content"] for m in result.messages if m["role"] == "system")


def test_ask_again_reruns_only_the_columns_whose_setup_changed(tmp_path: Path) -> None:
    calls: dict[str, int] = {}
    runner = scripted(calls)
    setup = default_setup(Settings(_env_file=None))  # type: ignore[call-arg]
    columns = columns_for(["prompt", "rag"], setup)
    first = run_columns(runner, "How many desks?", "office", columns)
    last = {c.key: c.fingerprint for c in columns}
    assert calls == {"prompt": 1, "rag": 1}

    edited = setup.edited({"prompt.system": "You are {company_role}. Answer like a pirate."}).renamed("unsaved")
    now = columns_for(["prompt", "rag"], edited)
    changed = changed_columns(now, last)
    assert [c.key for c in changed] == ["prompt"]
    again = run_columns(runner, "How many desks?", "office", changed)
    assert calls == {"prompt": 2, "rag": 1}  # the RAG column was not asked again
    assert list(again) == ["prompt"] and again["prompt"].answer == "prompt answer 2"
    assert "Answer like a pirate." in system_of(again["prompt"])
    assert "pirate" not in system_of(first["prompt"])

    # nothing changed since: nothing to re-run; a retrieval knob changes the RAG column only
    assert changed_columns(now, {c.key: c.fingerprint for c in now}) == []
    top4 = columns_for(["prompt", "rag"], edited.edited({"retrieval.top_k": 4}))
    assert [c.key for c in changed_columns(top4, {c.key: c.fingerprint for c in now})] == ["rag"]


def test_a_column_new_to_the_comparison_counts_as_changed() -> None:
    setup = default_setup(Settings(_env_file=None))  # type: ignore[call-arg]
    before = {c.key: c.fingerprint for c in columns_for(["prompt"], setup)}
    assert [c.key for c in changed_columns(columns_for(["prompt", "rag"], setup), before)] == ["rag"]


def test_one_pipeline_under_two_setups_side_by_side() -> None:
    calls: dict[str, int] = {}
    runner = scripted(calls)
    base = default_setup(Settings(_env_file=None))  # type: ignore[call-arg]
    terse = base.edited({"rag.system": "Reply in three words, from the passages."}).renamed("terse")
    columns = columns_for(["rag"], base, terse)
    events: list[Event] = []
    results = run_columns(runner, "How many desks?", "office", columns, on_event=events.append)
    assert list(results) == ["rag", "rag@terse"]
    assert results["rag@terse"].label == "RAG · terse" and results["rag"].label == "RAG"
    assert system_of(results["rag@terse"]) == "Reply in three words, from the passages."
    assert system_of(results["rag"]) == base.rag.system
    assert {e.pipeline for e in events if e.kind == "done"} == {"rag", "rag@terse"}
    assert calls == {"rag": 2}
    # the same content under two names is still two columns
    twin = run_columns(runner, "How many desks?", "office", columns_for(["rag"], terse, terse.renamed("twin")))
    assert list(twin) == ["rag", "rag@twin"] and system_of(twin["rag"]) == system_of(twin["rag@twin"])


def test_a_setup_changes_the_rag_user_turn_and_the_few_shot_count() -> None:
    runner = scripted({})
    base = default_setup(Settings(_env_file=None))  # type: ignore[call-arg]
    setup = base.edited({"rag.user": "PASSAGES\n{context}\nQUESTION {question}", "prompt.few_shot": 1})
    results = run_columns(runner, "How many desks?", "office", columns_for(["rag", "prompt"], setup, base))
    user = results["rag"].messages[-1]["content"]
    assert user.startswith("PASSAGES\n[1]") and user.endswith("QUESTION How many desks?")

    def shown(key: str) -> list[str]:
        return [m["content"] for m in results[key].messages if m["content"].startswith("Training question")]

    assert shown("prompt") == ["Training question 0?"]  # one example under the setup
    assert shown("prompt@default") == [f"Training question {i}?" for i in range(3)]  # three by default


def test_word_diff_marks_removed_and_added_words() -> None:
    assert word_diff("It has 45 desks [1].", "It has 46 desks and a terrace [1].") == [
        ("same", "It has"),
        ("removed", "45"),
        ("added", "46"),
        ("same", "desks"),
        ("added", "and a terrace"),
        ("same", "[1]."),
    ]
    assert word_diff("same words", "same words") == [("same", "same words")]
