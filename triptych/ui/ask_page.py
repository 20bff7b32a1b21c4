"""Ask page: one question to the base model, streamed, with timings (the full comparison comes later)."""

from __future__ import annotations

import streamlit as st
from langchain_core.messages import HumanMessage, SystemMessage

from triptych.llm.factory import make_chat_model, resolve_endpoint
from triptych.llm.generate import stream_generation
from triptych.llm.server import ModelServerError
from triptych.settings import ConfigError
from triptych.ui.resources import local_models, settings_or_stop, sidebar_status

settings = settings_or_stop()
sidebar_status(settings)

st.title("Triptych")
st.caption("Prompt engineering, RAG and fine-tuning, side by side. This page asks the base model.")

with st.form("ask"):
    question = st.text_input("Question", key="question", placeholder="What causes the seasons?")
    submitted = st.form_submit_button("Ask")

if submitted and question.strip():
    try:
        with st.spinner("Starting the local model server…"):
            endpoint = resolve_endpoint(settings, "prompt", local_models())
    except (ConfigError, ModelServerError) as exc:
        st.error(str(exc))
        st.stop()
    chat = make_chat_model(endpoint, settings)
    messages = [
        SystemMessage("You are a helpful assistant. Answer briefly and accurately."),
        HumanMessage(question),
    ]
    box = st.empty()
    pieces: list[str] = []

    def show(token: str) -> None:  # noqa: D103 - local callback
        pieces.append(token)
        box.markdown("".join(pieces))

    try:
        result = stream_generation(
            chat, messages, endpoint.model, on_token=show, usage_counter=endpoint.usage_counter
        )
    except Exception as exc:  # noqa: BLE001 - any endpoint failure is shown, not raised
        st.error(f"{endpoint.describe()} failed: {exc}")
        st.stop()
    box.markdown(result.answer or "_(empty answer)_")
    cols = st.columns(4)
    cols[0].metric("Time to first token", f"{result.ttft_s:.2f} s" if result.ttft_s is not None else "–")
    cols[1].metric("Total", f"{result.latency_s:.2f} s")
    cols[2].metric("Tokens in / out", f"{result.prompt_tokens or 0} / {result.completion_tokens or 0}")
    cols[3].metric("Model", result.model)
