"""The Compare page's helpers: markdown escaping, supporting-passage highlight, gold-answer scores."""

from __future__ import annotations

from triptych.ui.widgets import escape_markdown, highlighted_markdown, score_answer, supporting_span


def test_escape_markdown_neutralises_markup() -> None:
    text = "**x** [link](http://e) :material/home: $x$ <b>\n# h"
    out = escape_markdown(text)
    assert out == r"\*\*x\*\* \[link\]\(http\://e\) \:material/home\: \$x\$ \<b\> \# h"
    assert "\n" not in out


def test_supporting_sentence_is_highlighted() -> None:
    chunk = "Intro line here. Employees get 25 days of annual leave. Other [stuff]."
    span = supporting_span(chunk, "They get 25 days of annual leave [1].")
    assert span is not None and chunk[span[0] : span[1]] == "Employees get 25 days of annual leave."
    md = highlighted_markdown(chunk, span)
    assert ":orange-background[Employees get 25 days of annual leave\\.]" in md
    assert "Other \\[stuff\\]\\." in md
    assert supporting_span(chunk, "no overlap whatsoever") is None


def test_score_answer() -> None:
    assert score_answer("It is 25 days.", ["25 days"]) == {
        "contains": 1.0,
        "f1": score_answer("It is 25 days.", ["25 days"])["f1"],
    }
    assert score_answer("", ["25 days"]) == {"contains": 0.0, "f1": 0.0}
    assert score_answer("20 days", ["25 days"])["contains"] == 0.0
