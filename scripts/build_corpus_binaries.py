"""Build the PDF and DOCX documents of the demo corpora from their markdown sources.

Each source lives in ``corpora/<domain>/sources/<doc_id>.md`` (outside ``docs/`` so it is not indexed
twice) and is rendered to ``corpora/<domain>/docs/<doc_id>.pdf`` or ``.docx``. The sources use a small
markdown subset: ``#``/``##``/``###`` headings, paragraphs, ``-`` bullets, ``1.`` numbered items and
pipe tables. Metadata dates and zip timestamps are fixed, so re-running the script gives identical files.

Usage: ``.venv/bin/python scripts/build_corpus_binaries.py``
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import docx
from docx.shared import Pt
from fpdf import FPDF
from fpdf.enums import XPos, YPos

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
FIXED_DATE = datetime(2025, 7, 1, 9, 0, 0, tzinfo=UTC)
ZIP_DATE = (2025, 7, 1, 9, 0, 0)

# (domain, source stem, output format); the output keeps the stem as its doc_id.
BINARY_DOCUMENTS = (
    ("hr_handbook", "company_car_and_mobility_policy", "pdf"),
    ("hr_handbook", "relocation_assistance_guideline", "docx"),
    ("support_kb", "nimbus_t3_technical_specifications", "pdf"),
    ("support_kb", "installer_partner_program", "docx"),
    ("compliance_policies", "market_abuse_and_insider_list_procedure", "pdf"),
    ("compliance_policies", "politically_exposed_persons_standard", "docx"),
)

# Author shown in the document metadata and in the PDF page header.
ISSUERS = {
    "hr_handbook": "Halden Robotics GmbH",
    "support_kb": "Hearthline B.V.",
    "compliance_policies": "Orvalis Bank S.A.",
}


@dataclass
class Block:
    """One rendered unit of a source: heading, paragraph, list item or table."""

    kind: str  # "title", "h2", "h3", "para", "bullet", "number", "table"
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    label: str = ""  # the "1." of a numbered item


def parse_source(text: str) -> list[Block]:
    """Split the markdown subset used by the sources into blocks."""
    blocks: list[Block] = []
    paragraph: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("para", " ".join(paragraph)))
            paragraph.clear()
        if table:
            blocks.append(Block("table", rows=[row for row in table if not _is_separator(row)]))
            table.clear()

    for raw in text.splitlines():
        line = raw.strip()
        numbered = re.match(r"^(\d+\.)\s+(.*)$", line)
        if not line:
            flush()
        elif line.startswith("|"):
            if paragraph:
                flush()
            table.append([cell.strip() for cell in line.strip("|").split("|")])
        elif line.startswith(("# ", "## ", "### ")):
            flush()
            marker, _, heading = line.partition(" ")
            blocks.append(Block({"#": "title", "##": "h2", "###": "h3"}[marker], heading))
        elif line.startswith("- "):
            flush()
            blocks.append(Block("bullet", line[2:]))
        elif numbered:
            flush()
            blocks.append(Block("number", numbered.group(2), label=numbered.group(1)))
        else:
            if table:
                flush()
            paragraph.append(line)
    flush()
    return blocks


def _is_separator(row: list[str]) -> bool:
    return all(re.fullmatch(r":?-{3,}:?", cell) for cell in row)


class CorpusPDF(FPDF):
    """A4 document with the issuer in the header and page numbers in the footer."""

    def __init__(self, issuer: str, title: str) -> None:
        super().__init__(format="A4")
        self.issuer = issuer
        self.doc_title = title

    def header(self) -> None:
        """Print the issuer and the document title on every page."""
        self.set_font("Helvetica", "I", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"{self.issuer} - {self.doc_title}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(4)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        """Print the page number on every page."""
        self.set_y(-15)
        self.set_font("Helvetica", "I", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def render_pdf(blocks: list[Block], issuer: str) -> bytes:
    """Render blocks to PDF bytes with a core font (latin-1 text only)."""
    title = next(block.text for block in blocks if block.kind == "title")
    pdf = CorpusPDF(issuer, title)
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(title)
    pdf.set_author(issuer)
    pdf.set_subject(f"{issuer} - internal document (fictional, written for Triptych)")
    pdf.set_creator("Triptych scripts/build_corpus_binaries.py")
    pdf.set_producer("Triptych corpus builder")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(20, 15, 20)
    pdf.add_page()

    def write(text: str, size: float, style: str = "", height: float = 6.0, indent: float = 0.0) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    for block in blocks:
        if block.kind == "title":
            write(block.text, 17, "B", height=8)
            pdf.ln(3)
        elif block.kind == "h2":
            pdf.ln(3)
            write(block.text, 13, "B", height=7)
            pdf.ln(1)
        elif block.kind == "h3":
            pdf.ln(2)
            write(block.text, 11.5, "B")
        elif block.kind == "para":
            write(block.text, 10.5)
            pdf.ln(2)
        elif block.kind == "bullet":
            write(f"-  {block.text}", 10.5, indent=5)
            pdf.ln(1)
        elif block.kind == "number":
            write(f"{block.label}  {block.text}", 10.5, indent=5)
            pdf.ln(1)
        elif block.kind == "table":
            pdf.set_font("Helvetica", "", 9.5)
            with pdf.table(line_height=5.5, text_align="LEFT", first_row_as_headings=True) as table:
                for cells in block.rows:
                    row = table.row()
                    for cell in cells:
                        row.cell(cell)
            pdf.ln(3)
    return bytes(pdf.output())


def render_docx(blocks: list[Block], issuer: str) -> bytes:
    """Render blocks to DOCX bytes with fixed core properties and zip timestamps."""
    document = docx.Document()
    document.styles["Normal"].font.size = Pt(10.5)
    title = next(block.text for block in blocks if block.kind == "title")
    for block in blocks:
        if block.kind == "title":
            document.add_heading(block.text, level=0)
        elif block.kind == "h2":
            document.add_heading(block.text, level=1)
        elif block.kind == "h3":
            document.add_heading(block.text, level=2)
        elif block.kind == "para":
            document.add_paragraph(block.text)
        elif block.kind == "bullet":
            document.add_paragraph(block.text, style="List Bullet")
        elif block.kind == "number":
            document.add_paragraph(block.text, style="List Number")
        elif block.kind == "table":
            header, *body = block.rows
            table = document.add_table(rows=1, cols=len(header))
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, header, strict=True):
                cell.text = text
                for run in cell.paragraphs[0].runs:
                    run.bold = True
            for cells in body:
                for cell, text in zip(table.add_row().cells, cells, strict=True):
                    cell.text = text

    props = document.core_properties
    props.title = title
    props.author = issuer
    props.last_modified_by = issuer
    props.comments = "Fictional document written for Triptych"
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.last_printed = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1

    buffer = io.BytesIO()
    document.save(buffer)
    return _normalise_zip(buffer.getvalue())


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed member timestamps so the bytes do not depend on the build time."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, source.read(member.filename))
    return out.getvalue()


def build_all() -> Iterator[Path]:
    """Render every entry of BINARY_DOCUMENTS and yield the paths written."""
    for domain, stem, fmt in BINARY_DOCUMENTS:
        source = CORPORA / domain / "sources" / f"{stem}.md"
        text = source.read_text(encoding="utf-8")
        blocks = parse_source(text)
        issuer = ISSUERS[domain]
        if fmt == "pdf":
            try:
                text.encode("latin-1")
            except UnicodeEncodeError as error:
                raise SystemExit(f"{source}: PDF sources must be latin-1 (core font): {error}") from error
            data = render_pdf(blocks, issuer)
        else:
            data = render_docx(blocks, issuer)
        target = CORPORA / domain / "docs" / f"{stem}.{fmt}"
        target.write_bytes(data)
        yield target


def main() -> int:
    """Build all binaries and print what was written."""
    for path in build_all():
        print(f"wrote {path.relative_to(CORPORA.parent)} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
