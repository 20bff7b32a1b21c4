"""Each loader on real files made here: text, title, page starts (PDF) and section headings."""

from __future__ import annotations

from triptych.documents.loaders import load_document
from triptych.documents.validation import DocumentKind, Limits
from triptych.testing import make_docx, make_pdf

LIMITS = Limits(max_bytes=5 * 1024 * 1024, max_pdf_pages=50)


def test_pdf_pages_title_and_outline_sections() -> None:
    data = make_pdf(
        [
            "Annual leave is 28 days.",
            "Sick leave needs a note after 3 days.",
            "Trains over 4 hours: first class.",
        ],
        title="Employee Handbook",
        outline=["Leave", "Sickness", "Travel"],
    )
    doc = load_document("handbook.pdf", data, LIMITS)
    assert doc.kind is DocumentKind.PDF
    assert doc.title == "Employee Handbook"
    assert doc.pages == 3
    # each page's text starts at its recorded offset, and offsets map back to pages
    assert doc.text[doc.page_starts[1] :].startswith("Sickness\nSick leave needs a note")
    assert doc.page_at(doc.text.index("28 days")) == 1
    assert doc.page_at(doc.text.index("first class")) == 3
    assert [s.title for s in doc.sections] == ["Leave", "Sickness", "Travel"]
    assert doc.section_at(doc.text.index("a note")) == "Sickness"


def test_pdf_without_metadata_title_uses_first_line() -> None:
    doc = load_document("x.pdf", make_pdf(["Travel Policy\nBook economy class."]), LIMITS)
    assert doc.title == "Travel Policy"
    assert doc.sections == ()


def test_docx_headings_lists_and_tables() -> None:
    data = make_docx(
        [
            ("Title", "Employee Handbook"),
            ("Heading 1", "Leave"),
            ("Normal", "Employees get 28 days of annual leave."),
            ("List Bullet", "Book leave in the HR portal."),
            ("List Bullet", "Tell your manager."),
            ("Heading 2", "Sick leave"),
            ("Normal", "Call your manager before 9 am."),
        ],
        title="Handbook 2025",
        table=[["Grade", "Days"], ["Junior", "26"], ["Senior", "30"]],
    )
    doc = load_document("handbook.docx", data, LIMITS)
    assert doc.kind is DocumentKind.DOCX
    assert doc.title == "Handbook 2025"  # core properties win over the first heading
    assert "Book leave in the HR portal.\nTell your manager." in doc.text  # list items on adjacent lines
    assert "Grade | Days\nJunior | 26\nSenior | 30" in doc.text
    assert [s.title for s in doc.sections] == ["Employee Handbook", "Leave", "Sick leave"]
    assert doc.section_at(doc.text.index("before 9 am")) == "Sick leave"
    assert doc.section_at(doc.text.index("28 days")) == "Leave"
    for section in doc.sections:
        assert doc.text[section.start :].startswith(section.title)
    assert doc.pages is None


def test_html_readable_text_without_scripts() -> None:
    html = """<!doctype html><html><head><title>Benefits 2025</title><style>p {color: red}</style>
    <script>var secret = "do not index";</script></head><body>
    <nav><a href="/">Home</a></nav>
    <h1>Benefits</h1><p>Halden adds   4% to your
       pension.</p>
    <h2>Mobility</h2><ul><li>Job ticket</li><li>Bike leasing</li></ul>
    <table><tr><th>Plan</th><th>Cost</th></tr><tr><td>Basic</td><td>0 EUR</td></tr></table>
    <!-- a comment --></body></html>"""
    doc = load_document("benefits.html", html.encode(), LIMITS)
    assert doc.kind is DocumentKind.HTML
    assert doc.title == "Benefits 2025"
    assert "do not index" not in doc.text and "color: red" not in doc.text and "comment" not in doc.text
    assert "Halden adds 4% to your pension." in doc.text  # whitespace collapsed
    assert "- Job ticket\n- Bike leasing" in doc.text
    assert "Plan | Cost\nBasic | 0 EUR" in doc.text
    assert [s.title for s in doc.sections] == ["Benefits", "Mobility"]
    assert doc.text[doc.sections[1].start :].startswith("Mobility\n\n- Job ticket")
    assert doc.section_at(doc.text.index("Bike")) == "Mobility"


def test_markdown_kept_as_written_with_headings() -> None:
    md = (
        "---\ntitle: Leave Policy\nowner: HR\n---\n"
        "# Annual leave\n\nYou get 28 days.\n\n```\n# not a heading\n```\n\n"
        "Carry-over\n----------\n\nUp to 5 days.\n\n## Special leave ##\n\nWedding: 1 day.\n"
    )
    doc = load_document("leave.md", md.encode(), LIMITS)
    assert doc.kind is DocumentKind.MARKDOWN
    assert doc.text == md  # offsets are offsets into the file
    assert doc.title == "Leave Policy"  # front matter
    assert [s.title for s in doc.sections] == ["Annual leave", "Carry-over", "Special leave"]
    assert doc.section_at(md.index("Up to 5")) == "Carry-over"
    assert doc.section_at(md.index("Wedding")) == "Special leave"


def test_markdown_title_from_first_heading() -> None:
    doc = load_document("x.md", b"Intro line\n\n# Real Title\n\ntext", LIMITS)
    assert doc.title == "Real Title"


def test_plain_text_encodings_and_title() -> None:
    doc = load_document("code_of_conduct.txt", b"Code of Conduct\n\nBe kind.\n", LIMITS)
    assert doc.kind is DocumentKind.TEXT
    assert doc.title == "Code of Conduct"
    assert doc.text == "Code of Conduct\n\nBe kind.\n"
    assert doc.sections == () and doc.pages is None
    legacy = load_document("old.txt", "Caf\xe9 \u2013 men\xfc".encode("cp1252"), LIMITS)
    assert legacy.text == "Caf\xe9 \u2013 men\xfc"
    utf16 = load_document("wide.txt", "Gr\xfc\xdfe aus Leipzig".encode("utf-16"), LIMITS)
    assert utf16.text == "Gr\xfc\xdfe aus Leipzig"
    bom = load_document("bom.txt", b"\xef\xbb\xbfHello", LIMITS)
    assert bom.text == "Hello"


def test_long_first_line_is_not_a_title() -> None:
    doc = load_document("some_notes.txt", ("word " * 60).encode(), LIMITS)
    assert doc.title == "some notes"
