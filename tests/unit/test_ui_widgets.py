"""The Compare page's helpers: markdown escaping, supporting-passage highlight, gold-answer scores."""

from __future__ import annotations

from triptych.ui.widgets import escape_markdown, highlighted_markdown, score_answer, supporting_span


def test_escape_markdown_neutralises_markup() -> None:
    text = "**x** [link](http://e) :material/home: $x$ <b>\n# h"
    out = escape_markdown(text)
    assert out == r"\*\*x\*\* \[link\]\(http\:" + "\u2060" + r"//e\) \:material/home\: \$x\$ \<b\> \# h"
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


PLANTED = (
    "Employees get 25 days [1]. ![pixel](http://127.0.0.1:9/x.png?leak=salary) See [the portal](https://evil.example/a)"
    ", <https://evil.example/b>, https://evil.example/c, www.evil.example or ops@evil.example.\n"
    '<img src="http://127.0.0.1:9/y.png"> :red[alarm] $x$\n\n'
    "![ref][r]\n\n[r]: http://127.0.0.1:9/z.png\n\n    indented code"
)


def test_safe_markdown_renders_no_image_link_or_html() -> None:
    import html

    from markdown_it import MarkdownIt

    from triptych.ui.widgets import safe_markdown

    rendered = MarkdownIt("commonmark").render(safe_markdown(PLANTED))
    assert "<img" not in rendered and "<a " not in rendered and "<code" not in rendered
    shown = html.unescape(rendered).replace("\u2060", "")  # the invisible word joiner that stops GFM autolinks
    assert "Employees get 25 days [1]." in shown  # citations stay readable
    assert "![pixel](http://127.0.0.1:9/x.png?leak=salary)" in shown  # shown as the text it is
    assert "[r]: http://127.0.0.1:9/z.png" in shown
    assert shown.count("<p>") == 4 and "<br />" in shown  # paragraphs and line breaks kept


def test_source_text_is_escaped_too() -> None:
    from markdown_it import MarkdownIt

    md = highlighted_markdown("Contact ops@evil.example. ![p](http://127.0.0.1:9/p.png) Employees get 25 days.", None)
    rendered = MarkdownIt("commonmark").render(md)
    assert "<img" not in rendered and "<a " not in rendered
    assert "ops\u2060\\@evil\\.example" in md and "http\\:\u2060//" in md  # no GFM autolinks


def test_source_cards_read_as_text_not_markdown_syntax() -> None:
    from triptych.passages import readable_source

    chunk = (
        "## 4. Annual leave\n\n**Full-time employees** get `25` days.\n- Part-time: pro rata.\n"
        "| a | b |\n|---|:---:|\n| 1 | 2 |"
    )
    text = readable_source(chunk)
    assert text.startswith("4. Annual leave\n\nFull-time employees get 25 days.\nPart-time: pro rata.")
    assert "##" not in text and "**" not in text and "`" not in text and "---" not in text
    assert "| 1 | 2 |" in text  # table cells keep their separators: only the rule line goes
    # a multiplication or a lone asterisk is text, not emphasis
    assert readable_source("2 * 3 = 6 and a*b") == "2 * 3 = 6 and a*b"


def test_supporting_span_ignores_common_words() -> None:
    chunk = "The policy and the rules are there for all of them. Leave is 25 days per year."
    span = supporting_span(chunk, "The rules and the policy.")  # 'policy' and 'rules' match
    assert span is not None and chunk[span[0] : span[1]] == "The policy and the rules are there for all of them."
    assert supporting_span(chunk, "They are there for all.") is None  # only common words in common
    span = supporting_span(chunk, "25 days")
    assert span is not None and chunk[span[0] : span[1]] == "Leave is 25 days per year."
