"""Turn a validated file into one text with its title, page starts (PDF) and section headings.

The text is what gets chunked and what the UI highlights in, so every offset the index keeps is an
offset into `LoadedDocument.text`. Markdown and plain text are kept exactly as written (offsets are
offsets into the file); PDF, DOCX and HTML are reduced to readable text first.
"""

from __future__ import annotations

import bisect
import io
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from triptych.documents.injection import hidden_reason, scan_text
from triptych.documents.validation import DocumentKind, DocumentRejected, Limits, ParseClock, decode, validate

MAX_TITLE_CHARS = 150


@dataclass(frozen=True)
class Section:
    """A heading and the offset in the document text where its section starts."""

    start: int
    title: str


@dataclass(frozen=True)
class LoadedDocument:
    """A document's text and what is known about its structure."""

    kind: DocumentKind
    text: str
    title: str
    page_starts: tuple[int, ...] = ()  # PDF: offset where page i + 1 starts
    sections: tuple[Section, ...] = ()  # in order of `start`
    warnings: tuple[str, ...] = ()  # for the user: read in another encoding than UTF-8, hidden HTML text dropped

    @property
    def pages(self) -> int | None:
        """Number of pages (PDF only)."""
        return len(self.page_starts) or None

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding `offset` (PDF only)."""
        if not self.page_starts:
            return None
        return max(1, bisect.bisect_right(self.page_starts, offset))

    def section_at(self, offset: int) -> str | None:
        """The heading of the section holding `offset`, if the format has headings."""
        i = bisect.bisect_right([s.start for s in self.sections], offset)
        return self.sections[i - 1].title if i else None


def load_document(name: str, data: bytes, limits: Limits) -> LoadedDocument:
    """Validate and parse one file within limits.max_parse_s; raises DocumentRejected with a reason naming the fix."""
    clock = ParseClock(limits.max_parse_s)
    kind = validate(name, data, limits)
    loader = LOADERS[kind]
    try:
        clock.check("checking the file")
        doc = loader(name, data, limits, clock)
    except DocumentRejected:
        raise
    except Exception as exc:  # parsers raise many types on malformed input
        raise DocumentRejected(
            f"the {kind.value.upper()} could not be read ({type(exc).__name__}: {exc}); it may be corrupt, "
            "export or save it again"
        ) from None
    if not doc.text.strip():
        hint = " (a scanned PDF? run OCR on it first)" if kind is DocumentKind.PDF else ""
        raise DocumentRejected(f"no text could be extracted{hint}")
    return doc


def _fallback_title(name: str) -> str:
    stem = PurePath(name).stem
    return re.sub(r"[_-]+", " ", stem).strip() or stem


def _first_line_title(text: str) -> str | None:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= MAX_TITLE_CHARS else None
    return None


# --- PDF --------------------------------------------------------------------------------------------


def load_pdf(name: str, data: bytes, limits: Limits, clock: ParseClock | None = None) -> LoadedDocument:
    """Text of every page, joined by blank lines; sections from the PDF outline where there is one."""
    clock = clock or ParseClock(limits.max_parse_s)
    import pypdf
    from pypdf.errors import FileNotDecryptedError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # repair chatter; refusals carry the reason
    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise DocumentRejected("the PDF is password-protected; remove the password (print or export to PDF)")
    try:
        count = len(reader.pages)
    except FileNotDecryptedError:
        raise DocumentRejected("the PDF is password-protected; remove the password") from None
    if count > limits.max_pdf_pages:
        raise DocumentRejected(
            f"the PDF has {count} pages, over the {limits.max_pdf_pages}-page limit; split it, or raise "
            "TRIPTYCH_MAX_PDF_PAGES"
        )
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    for number, page in enumerate(reader.pages, start=1):
        clock.check(f"page {number} of {count}")
        if parts:
            parts.append("\n\n")
            length += 2
        starts.append(length)
        page_text = (page.extract_text() or "").strip()
        parts.append(page_text)
        length += len(page_text)
    text = "".join(parts)
    meta_title = (reader.metadata.title if reader.metadata else None) or ""
    title = meta_title.strip() or _first_line_title(text) or _fallback_title(name)
    return LoadedDocument(
        DocumentKind.PDF, text, title[:MAX_TITLE_CHARS], tuple(starts), _pdf_sections(reader, text, starts)
    )


def _pdf_sections(reader: Any, text: str, starts: list[int]) -> tuple[Section, ...]:
    """Outline entries placed at their title in the page text (else at the page start)."""
    found: list[Section] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            title = str(getattr(item, "title", "") or "").strip()
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            if not title or page is None or not 0 <= page < len(starts):
                continue
            page_end = starts[page + 1] if page + 1 < len(starts) else len(text)
            at = text.find(title, starts[page], page_end)
            found.append(Section(at if at >= 0 else starts[page], title))

    try:
        walk(reader.outline)
    except Exception:  # a broken outline is no reason to refuse the text
        return ()
    return tuple(sorted(found, key=lambda s: s.start))


# --- DOCX -------------------------------------------------------------------------------------------


def load_docx(name: str, data: bytes, limits: Limits, clock: ParseClock | None = None) -> LoadedDocument:
    """Paragraphs and tables in document order; Heading/Title styles become sections."""
    clock = clock or ParseClock(limits.max_parse_s)
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    parts: list[str] = []
    sections: list[Section] = []
    length = 0
    first_heading: str | None = None
    previous_list = False
    for number, block in enumerate(document.iter_inner_content(), start=1):
        clock.check(f"paragraph or table {number}")
        if isinstance(block, Table):
            rows = [" | ".join(_cell_text(c) for c in row.cells) for row in block.rows]
            block_text = "\n".join(r for r in rows if r.strip(" |"))
            is_list = False
            style = ""
        else:
            block_text = block.text.strip()
            style = (block.style.name if block.style is not None else "") or ""
            is_list = style.startswith("List")
        if not block_text:
            continue
        if parts:
            sep = "\n" if is_list and previous_list else "\n\n"
            parts.append(sep)
            length += len(sep)
        if style == "Title" or style.startswith("Heading"):
            sections.append(Section(length, block_text.splitlines()[0]))
            first_heading = first_heading or block_text
        parts.append(block_text)
        length += len(block_text)
        previous_list = is_list
    text = "".join(parts)
    title = (document.core_properties.title or "").strip() or first_heading or _first_line_title(text)
    return LoadedDocument(
        DocumentKind.DOCX, text, (title or _fallback_title(name))[:MAX_TITLE_CHARS], (), tuple(sections)
    )


def _cell_text(cell: Any) -> str:
    return " ".join(cell.text.split())


# --- HTML -------------------------------------------------------------------------------------------

_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "canvas"})
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "ul", "ol",
        "table", "thead", "tbody", "tfoot", "pre", "blockquote", "hr", "dl", "figure", "figcaption",
        "form", "address", "details", "summary", "caption",
    }
)  # fmt: skip
_LINE_TAGS = frozenset({"li", "tr", "dt", "dd", "br"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


class _TextBuilder:
    """Accumulates readable text, collapsing whitespace, and records where headings land."""

    def __init__(self, clock: ParseClock) -> None:
        self.clock = clock
        self.parts: list[str] = []
        self.length = 0
        self.pending = ""  # separator owed before the next text: "", " ", "\n" or "\n\n"
        self.sections: list[Section] = []
        self.pending_section: str | None = None
        self.hidden: list[tuple[str, str]] = []  # (why it is invisible, its text): dropped, reported

    def space(self) -> None:
        if self.length and not self.pending:
            self.pending = " "

    def newlines(self, n: int) -> None:
        if self.length and len(self.pending.strip(" ")) < n:
            self.pending = "\n" * n

    def text(self, raw: str, *, preformatted: bool = False) -> None:
        if preformatted:
            body = raw.strip("\n")
            lead = trail = False
        else:
            body = " ".join(raw.split())
            lead, trail = raw[:1].isspace(), raw[-1:].isspace()
        if not body:
            if raw and not preformatted:
                self.space()
            return
        if lead:
            self.space()
        if self.length:
            self.parts.append(self.pending)
            self.length += len(self.pending)
        self.pending = ""
        if self.pending_section is not None:
            self.sections.append(Section(self.length, self.pending_section))
            self.pending_section = None
        self.parts.append(body)
        self.length += len(body)
        if trail:
            self.space()


def load_html(name: str, data: bytes, limits: Limits, clock: ParseClock | None = None) -> LoadedDocument:
    """Readable text of the page body; h1-h6 become sections, table cells are joined by ' | '.

    Elements the page hides (hidden attribute; inline display:none, visibility:hidden, font-size:0)
    are left out of the text and named in the document's warnings.
    """
    from bs4 import BeautifulSoup

    clock = clock or ParseClock(limits.max_parse_s)
    decoded = decode(data)
    soup = BeautifulSoup(decoded.text, "html.parser")
    clock.check("the HTML tree")
    builder = _TextBuilder(clock)
    _walk_html(soup, builder, preformatted=False)
    text = "".join(builder.parts)
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    h1 = soup.find("h1")
    title = page_title or (h1.get_text(" ", strip=True) if h1 else "") or _fallback_title(name)
    warnings = _warnings(decoded.warning, _hidden_warning(builder.hidden))
    return LoadedDocument(DocumentKind.HTML, text, title[:MAX_TITLE_CHARS], (), tuple(builder.sections), warnings)


def _hidden_warning(hidden: list[tuple[str, str]]) -> str | None:
    """What the HTML loader dropped because the page hides it, and whether it speaks to the model."""
    if not hidden:
        return None
    why = ", ".join(dict.fromkeys(w for w, _ in hidden))
    text = " ".join(t for _, t in hidden)
    preview = text if len(text) <= 80 else text[:79] + "…"
    aimed = scan_text(text)
    return f'{len(hidden)} hidden passage(s) not indexed ({why}): "{preview}"' + (
        f"; it holds text aimed at the model: {', '.join(aimed)}" if aimed else ""
    )


def _walk_html(node: Any, out: _TextBuilder, *, preformatted: bool) -> None:
    from bs4 import NavigableString, Tag
    from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

    for child in node.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, Comment | Doctype | Declaration | ProcessingInstruction | CData):
                out.text(str(child), preformatted=preformatted)
            continue
        if not isinstance(child, Tag) or child.name in _SKIP_TAGS:
            continue
        out.clock.check(f"an HTML <{child.name}> element")
        if (why := hidden_reason(child)) is not None:  # no reader sees it: only the model would
            if hidden_text := child.get_text(" ", strip=True):
                out.hidden.append((why, hidden_text))
            continue
        name = child.name
        if name in _HEADINGS:
            out.newlines(2)
            heading = child.get_text(" ", strip=True)
            if heading:
                out.pending_section = heading
            _walk_html(child, out, preformatted=preformatted)
            out.newlines(2)
        elif name in _BLOCK_TAGS:
            out.newlines(2)
            _walk_html(child, out, preformatted=preformatted or name == "pre")
            out.newlines(2)
        elif name in _LINE_TAGS:
            out.newlines(1)
            if name == "li":
                out.text("- ")
            _walk_html(child, out, preformatted=preformatted)
            out.newlines(1)
        elif name in ("td", "th"):
            if child.find_previous_sibling(["td", "th"]) is not None:
                out.text(" | ")
            _walk_html(child, out, preformatted=preformatted)
        else:
            _walk_html(child, out, preformatted=preformatted)


# --- Markdown and plain text ------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_TITLE = re.compile(r"^title:\s*['\"]?(.+?)['\"]?\s*$", re.M)


def load_markdown(name: str, data: bytes, limits: Limits, clock: ParseClock | None = None) -> LoadedDocument:
    """The file's text as written; ATX and setext headings (outside code fences) become sections."""
    decoded = decode(data)
    text = decoded.text
    title: str | None = None
    body_start = 0
    if text.startswith("---\n"):  # YAML front matter
        end = text.find("\n---", 4)
        if end > 0:
            match = _FRONT_TITLE.search(text[4:end])
            title = match.group(1) if match else None
            body_start = text.find("\n", end + 4) + 1 or len(text)
    sections = tuple(_markdown_headings(text, body_start))
    if title is None:
        title = next((s.title for s in sections), None) or _first_line_title(text)
    title = (title or _fallback_title(name))[:MAX_TITLE_CHARS]
    return LoadedDocument(DocumentKind.MARKDOWN, text, title, (), sections, _warnings(decoded.warning))


def _markdown_headings(text: str, start: int = 0) -> Iterator[Section]:
    fence: str | None = None
    offset = start
    prev: tuple[int, str] | None = None  # (offset, line) of a paragraph line that may be a setext title
    for line in text[start:].splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        fence_match = _FENCE.match(bare)
        if fence is not None:
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
        elif fence_match:
            fence = fence_match.group(1)
            prev = None
        elif match := _ATX.match(bare):
            yield Section(offset + len(bare) - len(bare.lstrip(" ")), match.group(2).strip())
            prev = None
        elif prev is not None and _SETEXT.match(bare):
            yield Section(prev[0], prev[1].strip())
            prev = None
        else:
            stripped = bare.strip()
            plain = stripped and not stripped.startswith(("-", "*", ">", "|", "+")) and not stripped[0].isdigit()
            prev = (offset + len(bare) - len(bare.lstrip()), stripped) if plain else None
        offset += len(line)


def load_text(name: str, data: bytes, limits: Limits, clock: ParseClock | None = None) -> LoadedDocument:
    """The file's text as written; its first short line is taken as the title."""
    decoded = decode(data)
    title = (_first_line_title(decoded.text) or _fallback_title(name))[:MAX_TITLE_CHARS]
    return LoadedDocument(DocumentKind.TEXT, decoded.text, title, warnings=_warnings(decoded.warning))


def _warnings(*notes: str | None) -> tuple[str, ...]:
    return tuple(n for n in notes if n)


LOADERS: dict[DocumentKind, Callable[[str, bytes, Limits, ParseClock], LoadedDocument]] = {
    DocumentKind.PDF: load_pdf,
    DocumentKind.DOCX: load_docx,
    DocumentKind.HTML: load_html,
    DocumentKind.MARKDOWN: load_markdown,
    DocumentKind.TEXT: load_text,
}
