"""The Compare page's setups: which setup answers, an Adjust panel per column, Ask again, Save as setup.

The page answers under a *working* setup: the chosen saved setup (triptych/setups.py) with the edits
made in the Adjust panels. Each panel edits the fields its column's answer depends on (prompts,
retrieval knobs, adapter); a bad prompt is refused under the field with the reason, and nothing is
asked until it is fixed. "Ask again" re-runs only the columns whose part of the setup changed since
their last answer and shows, in each, the old answer above the new one with the changed words
highlighted. "Save as setup" names the working setup; the last comparison's history record, made
under that same content, is then named after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from graphs.compare import Event
from graphs.registry import PIPELINES
from graphs.result import PipelineResult
from triptych import runstore
from triptych.columns import Column, changed_columns, columns_for, name_setup, run_columns, setups_record, word_diff
from triptych.finetune import registry as adapters
from triptych.history import HistoryRecord, history_dir, save_comparison
from triptych.settings import Settings
from triptych.setups import (
    DEFAULT,
    PLACEHOLDERS,
    TEMPLATE_NAMES,
    Setup,
    SetupError,
    load_setup,
    parse,
    save_setup,
    setup_names,
)
from triptych.ui import resources
from triptych.ui.votes_view import blind_link
from triptych.ui.widgets import (
    column_header,
    escape_markdown,
    render_details,
    render_final,
    render_results,
    safe_markdown,
)

UNSAVED = "unsaved"  # the working setup's name once it differs from the chosen one
WIDGET = "adj:"  # prefix of the Adjust panels' widget keys: adj:<dotted field>
LAST = "compare_last"  # the last comparison's HistoryRecord (shared with compare_page.py)
BEFORE = "compare_before"  # column key -> the answer it replaced in the last "Ask again"

# The fields each column's panel edits: (dotted field, label, kind), and which columns may own it.
# A field shared by two columns (the retrieval knobs, the adapter) is edited in the first one shown.
FIELDS: dict[str, list[tuple[str, str, str]]] = {
    "prompt": [("prompt.system", "System prompt", "text"), ("prompt.few_shot", "Few-shot examples", "int")],
    "rag": [
        ("rag.system", "System prompt", "text"),
        ("rag.user", "User turn (around the passages)", "text"),
        ("retrieval.top_k", "Top k chunks", "int"),
        ("retrieval.min_score", "Minimum score", "float"),
        ("retrieval.hybrid", "Hybrid (BM25 + vectors)", "bool"),
        ("retrieval.focus_chunks", "Places for the top document's own chunks", "int"),
        ("retrieval.context_budget_tokens", "Context budget (tokens; 0: whole chunks)", "int"),
        ("retrieval.context_window", "Neighbouring sentences kept", "int"),
    ],
    "finetuned": [("finetuned.system", "System prompt", "text"), ("finetuned.adapter", "Adapter", "adapter")],
    "finetuned_rag": [
        ("finetuned.rag_system", "System prompt", "text"),
        ("rag.user", "User turn (around the passages)", "text"),
        ("finetuned.adapter", "Adapter", "adapter"),
        ("retrieval.top_k", "Top k chunks", "int"),
        ("retrieval.min_score", "Minimum score", "float"),
        ("retrieval.hybrid", "Hybrid (BM25 + vectors)", "bool"),
        ("retrieval.focus_chunks", "Places for the top document's own chunks", "int"),
        ("retrieval.context_budget_tokens", "Context budget (tokens; 0: whole chunks)", "int"),
        ("retrieval.context_window", "Neighbouring sentences kept", "int"),
    ],
}
STEPS = {"retrieval.min_score": 0.05}


@dataclass
class SetupChoice:
    """What the page answers under: the chosen setup, its working copy (None while a panel is invalid), a second."""

    base: Setup
    working: Setup | None
    other: Setup | None
    errors: dict[str, str]  # pipeline -> why its panel's edits are refused


def placeholder_help(where: str) -> str:
    """What a prompt's placeholders are filled with."""
    allowed = PLACEHOLDERS[where]
    if not allowed:
        return "No placeholders: the text is sent as written."
    return "Placeholders: " + "; ".join(f"{{{k}}}: {v}" for k, v in allowed.items())


def _load(settings: Settings, name: str) -> Setup | None:
    try:
        return load_setup(settings, name)
    except SetupError as exc:
        st.error(f"Setup {escape_markdown(name)} cannot be used: {escape_markdown(str(exc))}")
        return None


def choose_setups(settings: Settings) -> tuple[Setup, Setup | None]:
    """The 'Setup' and 'Second setup' selectboxes: the setup that answers, and optionally a second one.

    (No label here may contain 'Compare': the browser tests find the Compare button by that name.)
    """
    names = setup_names(settings)
    if (pending := st.session_state.pop("setup_pending", None)) in names:
        st.session_state["setup"] = pending  # a setup just saved becomes the chosen one
    left, right = st.columns(2)
    name = left.selectbox("Setup", names, key="setup", help="Prompts, retrieval knobs and adapter the columns use.")
    others = [n for n in names if n != name]
    other_name = right.selectbox(
        "Second setup, side by side", [None, *others], key="setup_other", format_func=lambda n: n or "(none)",
        help="Each chosen pipeline again, under this setup, beside the first.",
    )  # fmt: skip
    base = _load(settings, name) or load_setup(settings, DEFAULT)
    other = _load(settings, other_name) if other_name else None
    return base, other


def _widget_value(setup: Setup, dotted: str) -> Any:
    return setup.field(dotted)


def _adapter_options(settings: Settings, domain: str | None, current: str) -> list[str]:
    runs = [
        r.run_id for r in adapters.list_runs(settings)
        if r.domain == domain and (settings.runs_dir / r.run_id / adapters.ADAPTER_FILE).is_file()
    ]  # fmt: skip
    return ["", *runs] + ([current] if current and current not in runs else [])


def _field_widget(settings: Settings, domain: str | None, dotted: str, label: str, kind: str) -> None:
    key = WIDGET + dotted
    if kind == "text":
        st.text_area(label, key=key, height=150, help=placeholder_help(dotted))
    elif kind == "int":
        st.number_input(label, key=key, step=1, min_value=0)
    elif kind == "float":
        st.number_input(label, key=key, step=STEPS.get(dotted, 0.1), format="%.2f")
    elif kind == "bool":
        st.checkbox(label, key=key)
    elif kind == "adapter":
        options = _adapter_options(settings, domain, st.session_state.get(key, ""))
        st.selectbox(label, options, key=key, format_func=lambda r: r or "the domain's active adapter")


def _reset_widgets(setup: Setup) -> None:
    """Start the panels from `setup`'s values (a new setup was chosen, or Reset was pressed)."""
    for key in [k for k in st.session_state if str(k).startswith(WIDGET)]:
        del st.session_state[key]
    for fields in FIELDS.values():
        for dotted, _, _ in fields:
            st.session_state[WIDGET + dotted] = _widget_value(setup, dotted)


def _edits(base: Setup, fields: Sequence[str]) -> dict[str, Any]:
    """The panels' values of `fields` that differ from `base`."""
    out = {}
    for dotted in fields:
        value = st.session_state.get(WIDGET + dotted, _widget_value(base, dotted))
        if isinstance(_widget_value(base, dotted), int) and not isinstance(value, bool) and isinstance(value, float):
            value = int(value)
        if value != _widget_value(base, dotted):
            out[dotted] = value
    return out


def owners(columns: Sequence[Column]) -> dict[str, str]:
    """Which shown column edits each field: the first working-setup column listing it."""
    out: dict[str, str] = {}
    for column in columns:
        for dotted, _, _ in FIELDS.get(column.pipeline, []):
            out.setdefault(dotted, column.key)
    return out


def working_setup(base: Setup, chosen: Sequence[str]) -> tuple[Setup | None, dict[str, str]]:
    """`base` with the panels' edits (named 'unsaved' when it differs), or None and each refused panel's reason."""
    if st.session_state.get("adj_base") != base.hash:
        _reset_widgets(base)
        st.session_state["adj_base"] = base.hash
    errors: dict[str, str] = {}
    edits: dict[str, Any] = {}
    for pid in chosen:
        mine = _edits(base, [f for f, _, _ in FIELDS[pid]])
        try:
            base.edited(mine)
        except SetupError as exc:
            errors[pid] = str(exc).removeprefix("setup: ")
        edits |= mine
    if errors:
        return None, errors
    if not edits:
        return base, {}
    try:
        return base.edited(edits).renamed(UNSAVED, f"edited from {base.name}"), {}
    except SetupError as exc:
        return None, {chosen[0]: str(exc).removeprefix("setup: ")}


def adjust_panels(settings: Settings, domain: str | None, columns: Sequence[Column], choice: SetupChoice) -> None:
    """One Adjust panel per column of the working setup, lined up with the answer columns below."""
    edit_here = owners([c for c in columns if c.setup is not choice.other])
    for col, column in zip(st.columns(len(columns)), columns, strict=True):
        with col:
            if choice.other is not None and column.key != column.pipeline:
                st.caption(f"{PIPELINES[column.pipeline].label} under setup **{escape_markdown(column.setup.name)}** "
                           f"({column.setup.hash})")  # fmt: skip
                continue
            with st.expander(f"Adjust: {PIPELINES[column.pipeline].label}"):
                for dotted, label, kind in FIELDS[column.pipeline]:
                    if edit_here.get(dotted) == column.key:
                        _field_widget(settings, domain, dotted, label, kind)
                if column.pipeline in choice.errors:
                    st.error(f"Refused: {escape_markdown(choice.errors[column.pipeline])}", icon=":material/block:")


def setup_section(settings: Settings, chosen: Sequence[str], domain: str | None) -> tuple[SetupChoice, list[Column]]:
    """The setup selectboxes and working copy, and the columns to show (before the question form)."""
    base, other = choose_setups(settings)
    working, errors = working_setup(base, chosen)
    choice = SetupChoice(base, working, other, errors)
    columns = columns_for(chosen, working or base, other)
    return choice, columns


def actions(settings: Settings, choice: SetupChoice, columns: Sequence[Column], busy: bool) -> str | None:
    """Ask again, Save as setup and Reset, under the panels; 'ask_again' when that was pressed."""
    working = choice.working
    if working is not None and working.name == UNSAVED:
        st.caption(f"Edited from setup **{escape_markdown(choice.base.name)}** (not saved; content {working.hash}).")
    if saved := st.session_state.pop("setup_saved", None):
        st.success(escape_markdown(saved), icon=":material/save:")
    left, mid, right = st.columns([1, 2, 1], vertical_alignment="bottom")
    ask_again = left.button("Ask again", key="ask_again", disabled=busy or working is None,
                            help="Re-run only the columns whose setup changed since their last answer.")  # fmt: skip
    name = mid.text_input("Setup name", key="save_setup_name", placeholder="e.g. rag-top4")
    if mid.button("Save as setup", key="save_setup", disabled=working is None):
        save_as(settings, working, name)
    if right.button("Reset to the setup", key="reset_setup"):
        _reset_widgets(choice.base)
        st.rerun()
    return "ask_again" if ask_again else None


def save_as(settings: Settings, working: Setup | None, name: str) -> None:
    """Save the working setup under `name`; the last comparison made with this content is named after it."""
    if working is None:
        return
    try:
        saved = working.renamed(name.strip(), f"Saved on the Compare page ({working.description or working.name}).")
        save_setup(settings, saved)
    except (SetupError, ValueError, OSError) as exc:
        st.error(f"Not saved: {escape_markdown(str(exc).removeprefix('setup: '))}", icon=":material/block:")
        return
    last: HistoryRecord | None = st.session_state.get(LAST)
    if last is not None and last.id and name_setup(last.setups, saved):
        runstore.write_json(history_dir(settings) / f"{last.id}.json", last.to_dict())
    st.session_state["setup_pending"] = saved.name
    st.session_state["setup_saved"] = f"Saved as setup {saved.name} ({saved.hash})."
    st.rerun()


# --- asking and showing ------------------------------------------------------------------------------


def diff_markdown(old: str, new: str) -> str:
    """The new answer with added words on green and removed ones struck through on red (escaped text)."""
    parts = []
    for change, text in word_diff(old, new):
        shown = escape_markdown(text)
        if change == "added":
            parts.append(f":green-background[{shown}]")
        elif change == "removed":
            parts.append(f":red-background[~~{shown}~~]")
        else:
            parts.append(shown)
    return " ".join(parts) or "(both empty)"


def show_columns(
    settings: Settings, question: str, domain: str | None, columns: Sequence[Column], *, run: Sequence[str],
    last: HistoryRecord | None, before: dict[str, PipelineResult], show_prompt: bool, gold: Sequence[str],
) -> dict[str, PipelineResult]:  # fmt: skip
    """Show every column: run the `run` ones (streaming) and take the others from `last`.

    A column with an answer in `before` shows it ("Before"), the new one ("Now") and what changed.
    """
    boxes, stats, texts = {}, {}, {c.key: "" for c in columns}
    results: dict[str, PipelineResult] = {}
    grid = dict(zip((c.key for c in columns), st.columns(len(columns)), strict=True))
    for column in columns:
        with grid[column.key]:
            spec = PIPELINES[column.pipeline]
            label = spec.label if column.key == column.pipeline else f"{spec.label} · {column.setup.name}"
            column_header(label, spec.what_changed, mode="LIVE")
            if column.key in before:
                with st.container(key=f"before-{column.key}"):
                    st.caption(":material/history: Before")
                    old_stats = st.empty()  # badges above the answer, as in the column below
                    render_final(st.empty(), old_stats, before[column.key])
                st.caption(":material/fiber_new: Now")
            stats[column.key] = st.empty()
            boxes[column.key] = st.empty()
            if column.key in run:
                stats[column.key].caption("waiting…")
            elif last is not None and column.key in last.results:
                results[column.key] = last.results[column.key]
                render_final(boxes[column.key], stats[column.key], results[column.key])

    def on_event(event: Event) -> None:
        key = event.pipeline
        if event.kind == "queued":
            stats[key].caption(f"queued: {event.text or 'waiting for the local model'}")
        elif event.kind == "started":
            stats[key].caption("generating…")
        elif event.kind == "token":
            texts[key] += event.text
            boxes[key].markdown(safe_markdown(texts[key]))
        elif event.result is not None:
            render_final(boxes[key], stats[key], event.result)

    to_run = [c for c in columns if c.key in run]
    if to_run:
        results |= run_columns(resources.comparison(), question, domain, to_run, on_event=on_event)
    for column in columns:
        with grid[column.key]:
            if column.key in before and column.key in results:
                with st.container(key=f"changes-{column.key}"):
                    st.caption(":material/difference: What changed")
                    st.markdown(diff_markdown(before[column.key].answer, results[column.key].answer))
            if column.key in results:
                render_details(results[column.key], show_prompt=show_prompt, gold_answers=gold, key=column.key)
    return {c.key: results[c.key] for c in columns if c.key in results}


def remember(settings: Settings, question: str, domain: str | None, columns: Sequence[Column],
             results: dict[str, PipelineResult], before: dict[str, PipelineResult]) -> None:  # fmt: skip
    """Save the comparison to the history (naming each column's setup) and keep it in the session."""
    shown = [c for c in columns if c.key in results]
    try:
        record = save_comparison(settings, question, domain, results, setups=setups_record(shown))
    except OSError as exc:
        st.warning(f"Not saved to the history: {exc}")
        record = HistoryRecord.unsaved(question, domain, results)
        record.setups = setups_record(shown)
    st.session_state[LAST] = record
    st.session_state[BEFORE] = before
    if record.id:
        names = sorted({c.setup.name for c in shown})
        st.caption(f"Saved to the history as {record.id} (setup {escape_markdown(', '.join(names))}).")
        blind_link(record.id)  # the shareable link that opens this comparison blind


def ask_again(settings: Settings, columns: Sequence[Column], show_prompt: bool, gold_for: Any) -> None:
    """Re-run the columns whose setup changed since the last comparison; the others keep their answers."""
    last: HistoryRecord | None = st.session_state.get(LAST)
    if last is None:
        st.info("Ask a question first: Ask again re-runs it with the adjusted setup.")
        return
    fingerprints = {k: c.get("column_hash", "") for k, c in last.setups.get("columns", {}).items()}
    changed = changed_columns(columns, fingerprints)
    if not changed:
        st.info("Nothing changed since the last answers: adjust a column first.")
        show_last(show_prompt, gold_for)
        return
    before = {c.key: last.results[c.key] for c in changed if c.key in last.results}
    st.caption(f"Asked again: {escape_markdown(last.question)} — re-running "
               f"{', '.join(PIPELINES[c.pipeline].label for c in changed)} only.")  # fmt: skip
    gold = gold_for(last.question, last.domain)
    results = show_columns(settings, last.question, last.domain, columns, run=[c.key for c in changed], last=last,
                           before=before, show_prompt=show_prompt, gold=gold)  # fmt: skip
    remember(settings, last.question, last.domain, columns, results, before)


def ask(settings: Settings, question: str, domain: str | None, columns: Sequence[Column], show_prompt: bool,
        gold: Sequence[str]) -> None:  # fmt: skip
    """Run every column on a new question and remember it."""
    results = show_columns(settings, question, domain, columns, run=[c.key for c in columns], last=None, before={},
                           show_prompt=show_prompt, gold=gold)  # fmt: skip
    remember(settings, question, domain, columns, results, {})


def show_last(show_prompt: bool, gold_for: Any) -> None:
    """The last comparison again (after any rerun of the page), with its before/after where it was re-asked."""
    last: HistoryRecord | None = st.session_state.get(LAST)
    if last is None:
        return
    st.caption(f"Last comparison: {escape_markdown(last.question)} ({escape_markdown(last.domain or 'no domain')})")
    gold = gold_for(last.question, last.domain)
    try:
        last_columns = record_columns(last)
    except (SetupError, KeyError):
        last_columns = []
    if len(last_columns) != len(last.results):  # a record without (readable) setups: its answers as they are
        render_results(last.results, show_prompt=show_prompt, gold_answers=gold, mode="LIVE")
        return
    show_columns(resources.app_settings(), last.question, last.domain, last_columns, run=[], last=last,
                 before=st.session_state.get(BEFORE, {}), show_prompt=show_prompt, gold=gold)  # fmt: skip


def record_columns(record: HistoryRecord) -> list[Column]:
    """The columns a history record was made with (its setups as stored)."""
    used = {h: parse(s) for h, s in record.setups.get("used", {}).items()}
    columns = record.setups.get("columns", {})
    return [Column(k, columns[k]["pipeline"], used[columns[k]["hash"]]) for k in record.results if k in columns]


def record_setup_lines(record: HistoryRecord) -> list[str]:
    """For the History page: each column's setup, name and hash ('' for records made before setups)."""
    out = []
    for key, column in record.setups.get("columns", {}).items():
        label = record.results[key].label if key in record.results else key
        out.append(f"{label}: setup {column.get('name')} ({column.get('hash')})")
    return out


def show_record_setups(record: HistoryRecord) -> None:
    """For the History page: each setup a record used, in full (its exact prompts), in an expander."""
    for setup_hash, setup in record.setups.get("used", {}).items():
        with st.expander(f"Setup {setup.get('name')} ({setup_hash})"):
            for where in TEMPLATE_NAMES:
                section, field = where.split(".")
                st.caption(where)
                st.text(str((setup.get(section) or {}).get(field, "")))
            rest = {k: v for k, v in setup.items() if k in ("generation", "retrieval")}
            rest |= {p: {k: v for k, v in (setup.get(p) or {}).items() if k in ("endpoint", "few_shot", "adapter")}
                     for p in ("prompt", "rag", "finetuned")}  # fmt: skip
            st.json(rest, expanded=False)


def record_setup_names(record: HistoryRecord) -> str:
    """' · setup a, b' for a record's list entry (two answers to one question differ by their setups); ''."""
    names = sorted({str(c.get("name")) for c in record.setups.get("columns", {}).values()})
    return f" · setup {', '.join(names)}" if names else ""
