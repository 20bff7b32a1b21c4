"""Text in a document that is aimed at the model rather than the reader, and HTML the reader never sees.

RAG pastes retrieved passages into the prompt, so a document can carry instructions for the model
("ignore all previous instructions", a `<|im_start|>system` marker, a "Note to AI assistants") that a
person reading it would skip or never see. `scan_text` names what it finds in a passage, as short
reasons; ingestion stores them on each chunk (`Chunk.flags`) and the source card shows a warning.
Nothing is removed from visible text: the reader decides. The HTML loader drops text the page hides
(`hidden_reason`), since no reader sees it, and reports what it dropped.

These are heuristics for a warning, not a defence: they catch the common phrasings, in English.
"""

from __future__ import annotations

import re
from typing import Any

FLAG_SEPARATOR = "; "

_FLAGS = re.IGNORECASE | re.MULTILINE
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "tells the model to ignore its instructions",
        re.compile(
            r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?\b(previous|prior|above|earlier|preceding|"
            r"all|your|system)\b[^.\n]{0,20}?\b(instructions?|prompts?|rules|directions|guidelines|context)\b",
            _FLAGS,
        ),
    ),
    (
        "gives the model a new role",
        re.compile(
            r"\byou are now\b|\bfrom now on,? (you|the assistant)\b|\bpretend (to be|you are)\b|"
            r"\bact as (an? |the )?(ai|assistant|language model|chatbot|llm|dan)\b",
            _FLAGS,
        ),
    ),
    ("mentions the system prompt", re.compile(r"\b(system|developer) (prompt|message|instructions?)\b", _FLAGS)),
    (
        "addresses AI assistants",
        re.compile(
            r"\b(note|message|instructions?) (to|for) (the |any |all )?(ai|assistant|llm|language model|chatbot|"
            r"model|bot)s?\b|\bif you are an? (ai|llm|language model|assistant|chatbot)\b",
            _FLAGS,
        ),
    ),
    (
        "asks to keep something from the user",
        re.compile(
            r"\b(do not|don't|never) (tell|reveal|mention|show|disclose)\b[^.\n]{0,20}?\b(user|customer|reader)s?\b",
            _FLAGS,
        ),
    ),
    (
        "contains a chat-template role marker",
        re.compile(
            r"<\|(im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>|"
            r"\[/?INST\]|<</?SYS>>",
            _FLAGS,
        ),
    ),
    (
        "contains a prompt-format header",
        re.compile(r"^[ \t]*#{2,}[ \t]*(instruction|response|system|input)s?\b[ \t]*:?[ \t]*$", _FLAGS),
    ),
    (
        "has a chat speaker label at a line start",
        re.compile(r"^[ \t]*(assistant|system|human|ai)[ \t]*:", _FLAGS),
    ),
)


def scan_text(text: str) -> list[str]:
    """Why `text` looks aimed at the model: short reasons, in a fixed order; empty when nothing is found."""
    return [reason for reason, pattern in _PATTERNS if pattern.search(text)]


def flags_of(text: str) -> str:
    """`scan_text`'s reasons as one string for an index's metadata ('' when none)."""
    return FLAG_SEPARATOR.join(scan_text(text))


# --- HTML the reader never sees ---------------------------------------------------------------------

_HIDING_STYLE = re.compile(
    r"(?:^|;)\s*(?:(display)\s*:\s*none|(visibility)\s*:\s*(?:hidden|collapse)|"
    r"(font-size)\s*:\s*0(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:!important)?\s*(?:;|$))",
    re.IGNORECASE,
)


def hidden_reason(tag: Any) -> str | None:
    """Why a BeautifulSoup tag's content is invisible on the page (hidden attribute, inline CSS), or None."""
    attrs = getattr(tag, "attrs", None) or {}
    if "hidden" in attrs:
        return "hidden attribute"
    style = attrs.get("style")
    if isinstance(style, str) and (match := _HIDING_STYLE.search(style)):
        prop = next(g for g in match.groups() if g)
        return {"display": "display:none", "visibility": "visibility:hidden", "font-size": "zero font size"}[
            prop.lower()
        ]
    return None
