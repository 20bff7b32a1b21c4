"""Widgets shared by the pages: timing/token/cost badges, numbered sources with the supporting passage
highlighted, the answer column, and the score against a gold answer.

Document and model text is never rendered as markup: a planted document can make a model write
`![x](https://tracker/...)` (a request to any host as soon as the page renders) or a link. It goes
through `st.text`, or through `st.markdown` after `escape_markdown` / `safe_markdown`, so images,
links, autolinks, HTML and Streamlit directives show as the characters they are; highlighting uses
Streamlit's own markdown directive (`:orange-background[...]`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import streamlit as st

from graphs.result import PipelineResult
from triptych.documents.chunking import Chunk
from triptych.evaluate import metrics
from triptych.passages import readable_source

# Characters that mean something to Streamlit's markdown (CommonMark, its directives, LaTeX, emoji).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&@])")
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n{2,}")


# GFM turns bare URLs, www. names and e-mail addresses into links after escapes are resolved, so a
# word joiner (U+2060, invisible) goes where those patterns need two characters side by side.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def escape_markdown(text: str) -> str:
    """`text` shown literally by st.markdown: special characters escaped, whitespace collapsed, no autolinks."""
    return _MD_SPECIAL.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, " ".join(text.split())))


def safe_markdown(text: str) -> str:
    """Model text for st.markdown, shown as written with its lines and paragraphs: no image is fetched,
    no link is live, no HTML or directive renders; citations read [n]."""
    paragraphs = (p for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip())
    return "\n\n".join(
        "  \n".join(escape_markdown(line) for line in p.splitlines() if line.strip()) for p in paragraphs
    )


# --- scoring against the gold answer --------------------------------------------------------------


def score_answer(answer: str, gold_answers: Sequence[str]) -> dict[str, float]:
    """Best 'contains' and token-F1 over the gold answers, as `triptych eval` scores them."""
    if not answer or not gold_answers:
        return {"contains": 0.0, "f1": 0.0}
    said = metrics.without_citations(answer)  # "4 [6]" does not say 6
    return {"contains": float(metrics.contains(said, gold_answers)), "f1": metrics.token_f1(said, gold_answers)}


def score_badge(scores: dict[str, float]) -> str:
    """A markdown badge: green when the gold answer is contained, orange for partial overlap."""
    f1 = scores["f1"]
    if scores["contains"]:
        return f":green-badge[:material/check: gold answer contained · F1 {f1:.2f}]"
    color = "orange" if f1 >= 0.3 else "red"
    return f":{color}-badge[F1 {f1:.2f} vs gold]"


# --- badges ---------------------------------------------------------------------------------------


def timing_badges(result: PipelineResult) -> str:
    """Compact markdown badges: first token, total, tokens in/out, cost (our own numbers only)."""
    ttft = f"{result.ttft_s:.2f} s" if result.ttft_s is not None else "–"
    parts = [
        f":blue-badge[:material/bolt: first token {ttft}]",
        f":blue-badge[:material/timer: total {result.total_s or 0:.2f} s]",
        f":gray-badge[:material/token: {result.prompt_tokens or 0} in / {result.completion_tokens or 0} out]",
        f":green-badge[:material/payments: ${result.cost_usd:.4f}]",
    ]
    if result.queued_s and result.queued_s >= 0.05:
        parts.append(f":gray-badge[:material/hourglass_empty: queued {result.queued_s:.1f} s]")
    return " ".join(parts)


# --- sources --------------------------------------------------------------------------------------


# Words too common to say that a sentence supports an answer.
_STOPWORDS = frozenset(
    "the and for are was were has have had not but with from that this these those its into than then there "
    "their they them what which who whom when where why how all any can may must shall will would should "
    "does did our you your per each also only".split()
)


def supporting_span(chunk: str, answer: str) -> tuple[int, int] | None:
    """Offsets (in `chunk`) of the sentence that shares the most words with the answer, if any does.
    Common words (the, and, with ...) do not count; numbers do."""
    answer_words = {w.lower() for w in _WORD.findall(answer) if (len(w) > 2 or w.isdigit())} - _STOPWORDS
    if not answer_words:
        return None
    best, best_hits, pos = None, 0, 0
    for piece in _SENTENCE.split(chunk):
        start = chunk.find(piece, pos)
        if start < 0 or not piece.strip():
            continue
        pos = start + len(piece)
        hits = len({w.lower() for w in _WORD.findall(piece)} & answer_words)
        if hits > best_hits:
            best, best_hits = (start, start + len(piece)), hits
    return best if best_hits >= 2 else None


def highlighted_markdown(chunk: str, span: tuple[int, int] | None) -> str:
    """The chunk as escaped markdown, with `span` wrapped in an orange background."""
    if span is None:
        return escape_markdown(chunk)
    start, end = span
    before, passage, after = chunk[:start], chunk[start:end], chunk[end:]
    marked = f":orange-background[{escape_markdown(passage)}]"
    return " ".join(p for p in (escape_markdown(before), marked, escape_markdown(after)) if p)


def source_heading(s: Chunk) -> str:
    """'[n] title, page p · score 0.83' as escaped markdown."""
    where = f", page {s.page}" if s.page else ""
    section = f" — {escape_markdown(s.section)}" if s.section else ""
    return f"**\\[{s.n}\\] {escape_markdown(s.title or s.source)}**{section}{where} · score {s.score:.2f}"


def injection_warning(s: Chunk) -> str | None:
    """The warning a flagged source's card shows (escaped markdown), or None when ingestion found nothing."""
    if not s.flags:
        return None
    return (
        f"This passage contains text aimed at the model: {escape_markdown(s.flags)}. "
        "Read it before trusting an answer that cites it."
    )


def render_sources(sources: Sequence[Chunk], answer: str) -> None:
    """Numbered sources: document, page, score, a warning when flagged, and the chunk with the supporting
    passage highlighted."""
    for s in sources:
        st.markdown(source_heading(s))
        if warning := injection_warning(s):
            st.warning(warning, icon=":material/warning:")
        text = readable_source(s.text)
        st.markdown(highlighted_markdown(text, supporting_span(text, answer)))
        st.caption(f"{escape_markdown(s.source)} · characters {s.start}–{s.end}")


def render_messages(messages: Sequence[dict[str, str]]) -> None:
    """The exact messages a pipeline sent, role by role, as plain text."""
    for m in messages:
        st.caption(m.get("role", ""))
        st.text(m.get("content", ""))


# --- one column -----------------------------------------------------------------------------------


def render_final(box: Any, stats: Any, result: PipelineResult) -> None:
    """Fill a column's placeholders with its final state: the error, the notice, or answer and badges."""
    if result.error:
        box.error(f"{result.label} failed: {escape_markdown(result.error)}", icon=":material/error:")
        stats.caption(f"failed after {result.total_s or 0:.1f} s")
        return
    if not result.answer and result.cut_short:
        box.warning(f"No answer: {escape_markdown(result.cut_short)}", icon=":material/content_cut:")
        stats.caption(f"cut short after {result.total_s or 0:.1f} s")
        return
    if not result.answer:
        box.info(result.notice or "(empty answer)")
        stats.caption("not run")
        return
    with box.container():
        st.markdown(safe_markdown(result.answer))
        if result.found_in:
            where = ", ".join(f"[{n}]" for n in result.found_in)
            st.caption(f":material/find_in_page: found in {where}: the answer's words occur there (matched, not cited)")
        if result.notice:
            st.caption(result.notice)
        if result.seen_in_training:
            st.caption(":material/school: this question was in its training data: it may have memorised the answer")
        elif result.seen_in_training is False:
            st.caption(":material/fiber_new: a question it never trained on")
        if result.cut_short:  # never shown as if complete
            st.warning(f"Incomplete answer: {escape_markdown(result.cut_short)}", icon=":material/content_cut:")
    stats.markdown(timing_badges(result))


def render_details(
    result: PipelineResult, *, show_prompt: bool, gold_answers: Sequence[str] = (), key: str = ""
) -> None:
    """Below a finished column: the score against the gold answer, sources, and the prompt if asked."""
    if gold_answers and result.answer and not result.error:
        st.markdown(score_badge(score_answer(result.answer, gold_answers)))
    if result.model:
        st.caption(f"model: {escape_markdown(result.model)}")
    if result.sources:
        with st.expander(f"Sources ({len(result.sources)})"):
            render_sources(result.sources, result.answer)
    if show_prompt and result.messages:
        with st.expander("Prompt sent", expanded=True):
            render_messages(result.messages)


# How a column's answer was made: asked now (LIVE) or played back from a demo pack (REPLAY).
MODE_BADGES = {"LIVE": ":red-badge[:material/sensors: LIVE]", "REPLAY": ":violet-badge[:material/replay: REPLAY]"}


def column_header(spec_label: str, what_changed: str, mode: str | None = None) -> None:
    """A column's title and its 'what changed' line; `mode` ("LIVE" or "REPLAY") adds its badge."""
    if mode:
        st.markdown(MODE_BADGES[mode])
    st.subheader(spec_label)
    st.caption(f":material/tune: {escape_markdown(what_changed)}")


def render_results(
    results: dict[str, PipelineResult], *, show_prompt: bool, gold_answers: Sequence[str] = (), mode: str | None = None
) -> None:
    """A finished comparison, side by side (the static view of what the Compare page streamed)."""
    from graphs.registry import PIPELINES

    for col, (pid, result) in zip(st.columns(len(results)), results.items(), strict=True):
        with col:
            spec = PIPELINES.get(pid)
            column_header(result.label, spec.what_changed if spec else "", mode)
            render_final(st.empty(), st.empty(), result)
            render_details(result, show_prompt=show_prompt, gold_answers=gold_answers, key=pid)
