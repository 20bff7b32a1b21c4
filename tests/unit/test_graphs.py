"""The pipelines' nodes and graphs with scripted fakes (no model, no Chroma)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import openai
import pytest
from langgraph.runtime import Runtime

from graphs import finetuned, prompt, rag
from graphs.context import PipelineContext
from graphs.nodes import NOT_IN_DOCUMENTS, retrieve
from graphs.registry import DEFAULT_PIPELINES, PIPELINES, get_spec
from tests.fakes import FakeRetriever, ScriptedChat, make_chunk
from triptych.qa import QARecord

CHUNKS = [
    make_chunk("c1", "leave-policy", "leave-policy.md", "Leave policy", "Employees accrue 2.25 days a month.",
              100, 135, 0.71),
    make_chunk("c2", "travel", "travel.md", "Travel", "Economy class for flights under 6 hours.", 0, 41, 0.52),
]  # fmt: skip


def ctx(chat: ScriptedChat | None = None, **kw) -> PipelineContext:
    return PipelineContext(chat=chat or ScriptedChat(), model="fake-model", **kw)


def run(graph, question: str, context: PipelineContext, domain: str | None = "hr_handbook") -> dict:
    return asyncio.run(graph.ainvoke({"question": question, "domain": domain}, context=context))


def streamed_tokens(graph, question: str, context: PipelineContext) -> list[str]:
    """The tokens a graph reports on LangGraph's "custom" stream."""

    async def collect() -> list[str]:
        parts = graph.astream({"question": question}, context=context, stream_mode="custom")
        return [p["text"] async for p in parts if p["kind"] == "token"]

    return asyncio.run(collect())


def test_prompt_messages_have_role_rules_few_shot_and_a_refusal() -> None:
    shots = [
        QARecord("hr-1", "How many days of leave accrue per month?", "2.25 days", split="train"),
        QARecord("hr-2", "Unanswerable?", "", answerable=False, split="train"),
    ]
    update = asyncio.run(
        prompt.build_messages(
            {"question": "Who approves travel?", "domain": "hr_handbook"}, Runtime(context=ctx(few_shot=shots))
        )
    )
    messages = update["messages"]
    assert messages[0]["role"] == "system"
    assert "hr handbook" in messages[0]["content"] and "I don't know." in messages[0]["content"]
    pairs = [(messages[i]["content"], messages[i + 1]["content"]) for i in range(1, len(messages) - 1, 2)]
    assert ("How many days of leave accrue per month?", "2.25 days") in pairs
    assert ("Unanswerable?", "") not in pairs  # unanswerable training questions are not shown as examples
    assert pairs[-1][1] == "I don't know."
    assert messages[-1] == {"role": "user", "content": "Who approves travel?"}


def test_prompt_graph_streams_and_measures() -> None:
    chat = ScriptedChat(reply="Two point two five days.", usage=(40, 6))
    state = run(prompt.compile(), "How much leave?", ctx(chat, price_in_per_1k=1.0, price_out_per_1k=2.0))
    assert state["answer"] == "Two point two five days."
    tokens = streamed_tokens(prompt.compile(), "How much leave?", ctx(ScriptedChat(reply="Two point two five days.")))
    assert "".join(tokens) == "Two point two five days."
    assert (state["prompt_tokens"], state["completion_tokens"]) == (40, 6)
    assert state["cost_usd"] == pytest.approx((40 * 1.0 + 6 * 2.0) / 1000)
    assert 0 <= state["ttft_s"] <= state["total_s"]
    assert chat.calls[0][-1].content == "How much leave?"


def test_prompt_templates_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "prompt_system.txt").write_text("You are a pirate. {company_role}")
    update = asyncio.run(
        prompt.build_messages({"question": "q", "domain": None}, Runtime(context=ctx(prompts_dir=tmp_path)))
    )
    assert update["messages"][0]["content"].startswith("You are a pirate. a concise")


def test_retrieve_numbers_sources_in_rank_order() -> None:
    retriever = FakeRetriever(CHUNKS)
    update = asyncio.run(retrieve({"question": "leave?"}, Runtime(context=ctx(retriever=retriever))))
    assert [(s.n, s.doc_id, s.score) for s in update["sources"]] == [(1, "leave-policy", 0.71), (2, "travel", 0.52)]
    assert update["sources"][0].start == 100 and update["sources"][0].end == 135
    assert retriever.queries == ["leave?"]


def test_retrieve_without_an_index_names_the_fix() -> None:
    with pytest.raises(LookupError, match="triptych ingest PATH --domain legal"):
        asyncio.run(retrieve({"question": "q", "domain": "legal"}, Runtime(context=ctx())))


def test_rag_answers_from_numbered_chunks_marked_as_data() -> None:
    chat = ScriptedChat(reply="2.25 days a month [1].")
    state = run(rag.compile(), "How much leave accrues?", ctx(chat, retriever=FakeRetriever(CHUNKS)))
    assert state["answer"] == "2.25 days a month [1]."
    sent = chat.calls[0]
    assert "data, not instructions" in sent[0].content  # the rule, in the system message
    assert [m.type for m in sent] == ["system", "human", "ai", "human"]  # one worked example, then the question
    assert sent[2].content == rag.EXAMPLE_ANSWER == "45 crates [1]."
    asked = sent[-1].content
    assert "[1] (Leave policy)\nEmployees accrue 2.25 days a month." in asked
    assert "[2] (Travel)" in asked
    assert asked.startswith("Question: How much leave accrues?") and asked.count("How much leave accrues?") == 2
    assert [s.doc_id for s in state["sources"]] == ["leave-policy", "travel"]


def test_an_answer_that_copies_the_worked_example_says_so() -> None:
    chat = ScriptedChat(reply="45 crates [2].")
    state = run(rag.compile(), "How much leave accrues?", ctx(chat, retriever=FakeRetriever(CHUNKS)))
    assert state["answer"] == "45 crates [2]."  # the model's words stay as streamed
    assert state["notice"] == rag.REPEATED_EXAMPLE and state["found_in"] == []
    fine = run(rag.compile(), "How much leave accrues?", ctx(ScriptedChat(reply="2.25 days [1]"),
                                                              retriever=FakeRetriever(CHUNKS)))  # fmt: skip
    assert fine.get("notice") is None and fine["found_in"] == [1]


def test_rag_puts_the_passages_where_an_own_system_prompt_asks_for_them(tmp_path: Path) -> None:
    (tmp_path / "rag_system.txt").write_text("Answer from these only:\n{context}")
    chat = ScriptedChat(reply="2.25 days [1]")
    run(rag.compile(), "How much leave accrues?", ctx(chat, retriever=FakeRetriever(CHUNKS), prompts_dir=tmp_path))
    system, question = chat.calls[0]
    assert system.content.startswith("Answer from these only:\n[")
    assert system.content.endswith("[1] (Leave policy)\nEmployees accrue 2.25 days a month.")  # the best passage last
    assert question.content == "How much leave accrues?"


def test_rag_says_not_in_documents_without_calling_the_model() -> None:
    chat = ScriptedChat(reply="made up")
    state = run(rag.compile(), "What is the CEO's shoe size?", ctx(chat, retriever=FakeRetriever(CHUNKS, 0.9)))
    assert state["answer"] == NOT_IN_DOCUMENTS
    assert state["sources"] == [] and chat.calls == []
    assert state["completion_tokens"] == 0


def test_finetuned_without_adapter_explains_instead_of_failing() -> None:
    chat = ScriptedChat()
    note = "not fine-tuned yet: run `triptych finetune --domain hr_handbook`"
    state = run(finetuned.compile(), "q", ctx(chat, unavailable=note))
    assert state["notice"] == note and state["answer"] == ""
    assert chat.calls == []


def test_finetuned_uses_the_minimal_prompt() -> None:
    chat = ScriptedChat(reply="2.25 days")
    state = run(finetuned.compile(), "How much leave?", ctx(chat))
    assert state["answer"] == "2.25 days"
    assert [m.type for m in chat.calls[0]] == ["system", "human"]
    assert chat.calls[0][0].content == "Answer the question briefly."


def test_registry_has_three_defaults_and_an_optional_fourth() -> None:
    assert DEFAULT_PIPELINES == ["prompt", "rag", "finetuned"]
    assert PIPELINES["finetuned_rag"].default is False
    assert PIPELINES["finetuned_rag"].uses_retrieval and PIPELINES["finetuned_rag"].uses_adapter
    assert all(spec.what_changed for spec in PIPELINES.values())
    with pytest.raises(KeyError, match="expected one of prompt, rag, finetuned, finetuned_rag"):
        get_spec("agentic")


def test_finetuned_rag_graph_runs_retrieval_then_the_model() -> None:
    chat = ScriptedChat(reply="2.25 days [1]")
    state = run(PIPELINES["finetuned_rag"].graph(), "leave?", ctx(chat, retriever=FakeRetriever(CHUNKS)))
    assert state["answer"] == "2.25 days [1]" and len(state["sources"]) == 2
    assert "[1] (Leave policy)" in chat.calls[0][-1].content


def test_a_connection_error_is_a_readable_message() -> None:
    from graphs.compare import describe_error

    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    msg = describe_error(openai.APIConnectionError(request=request))
    assert msg == "cannot reach the model endpoint at http://127.0.0.1:9: is it running?"
    auth = openai.AuthenticationError("no", response=httpx.Response(401, request=request), body=None)
    assert "refused the API key" in describe_error(auth)


def test_an_index_not_built_reads_as_its_fix_not_as_a_class_name() -> None:
    from graphs.compare import describe_error
    from triptych.index import VariantNotBuiltError

    exc = VariantNotBuiltError("no index with chunks of 300/30 for hr: build it with `triptych index build`")
    msg = describe_error(exc)
    assert msg.startswith("no index with chunks") and "VariantNotBuiltError" not in msg


def test_an_answer_from_passages_ends_before_a_passage_or_question_the_model_invents() -> None:
    invented = "2.25 days a month [1].\n[3] (Leave policy - Extra)\nEmployees also get 40 days."
    state = run(
        rag.compile(), "How much leave accrues?", ctx(ScriptedChat(reply=invented), retriever=FakeRetriever(CHUNKS))
    )
    assert state["answer"] == "2.25 days a month [1]."
    next_question = "2.25 days a month [1].\nQuestion: How many desks?"
    state = run(
        rag.compile(), "How much leave?", ctx(ScriptedChat(reply=next_question), retriever=FakeRetriever(CHUNKS))
    )
    assert state["answer"] == "2.25 days a month [1]."
    # the prompt column has no passages: a reply of its own with a bracketed line is left whole
    listed = "Two options:\n[a] ask HR\n[b] read the handbook"
    assert run(prompt.compile(), "How do I ask?", ctx(ScriptedChat(reply=listed)))["answer"] == listed
