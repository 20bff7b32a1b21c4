"""Bad files are refused before anything is stored, each with a reason that names the fix."""

from __future__ import annotations

import io
import os
import zipfile

import pypdf
import pytest

from triptych.documents.loaders import load_document
from triptych.documents.validation import (
    MIB,
    DocumentKind,
    DocumentRejected,
    Limits,
    check_size,
    sniff,
    validate,
)
from triptych.testing import make_docx, make_pdf

LIMITS = Limits(max_bytes=2 * MIB, max_pdf_pages=5)


def refusal(name: str, data: bytes, limits: Limits = LIMITS) -> str:
    with pytest.raises(DocumentRejected) as err:
        load_document(name, data, limits)
    return str(err.value)


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return make_pdf(["Expenses are reimbursed within 30 days.", "Receipts are required above 20 EUR."])


@pytest.fixture(scope="module")
def docx_bytes() -> bytes:
    return make_docx([("Heading 1", "Travel"), ("Normal", "Book economy class.")])


def test_good_files_pass(pdf: bytes, docx_bytes: bytes) -> None:
    assert validate("a.pdf", pdf, LIMITS) is DocumentKind.PDF
    assert validate("a.PDF", pdf, LIMITS) is DocumentKind.PDF  # extension case does not matter
    assert validate("a.docx", docx_bytes, LIMITS) is DocumentKind.DOCX
    assert validate("a.htm", b"<p>hi</p>", LIMITS) is DocumentKind.HTML
    assert validate("a.markdown", b"# hi", LIMITS) is DocumentKind.MARKDOWN


def test_pdf_named_docx(pdf: bytes) -> None:
    reason = refusal("report.docx", pdf)
    assert "named .docx" in reason and "a PDF" in reason


def test_docx_named_pdf(docx_bytes: bytes) -> None:
    reason = refusal("report.pdf", docx_bytes)
    assert "named .pdf" in reason and "ZIP" in reason and "not a PDF" in reason


def test_zip_named_txt() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "hello")
    reason = refusal("notes.txt", buf.getvalue())
    assert "ZIP archive" in reason and "not text" in reason


def test_pdf_named_txt_says_rename(pdf: bytes) -> None:
    assert "rename it to .pdf" in refusal("notes.txt", pdf)


def test_zero_bytes() -> None:
    for name in ("empty.pdf", "empty.docx", "empty.txt", "empty.md"):
        assert "empty (0 bytes)" in refusal(name, b"")


def test_whitespace_only_text_has_no_text() -> None:
    assert "no text could be extracted" in refusal("blank.md", b"  \n\n \t\n")


def test_truncated_pdf(pdf: bytes) -> None:
    reason = refusal("cut.pdf", pdf[: len(pdf) // 2])
    assert "truncated" in reason and "again" in reason


def test_encrypted_pdf(pdf: bytes) -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf)))
    writer.encrypt("pw")
    out = io.BytesIO()
    writer.write(out)
    reason = refusal("secret.pdf", out.getvalue())
    assert "password-protected" in reason and "remove the password" in reason


def test_pdf_with_only_an_owner_password_is_read(pdf: bytes) -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password="", owner_password="owner")  # opens without a password
    out = io.BytesIO()
    writer.write(out)
    doc = load_document("restricted.pdf", out.getvalue(), LIMITS)
    assert "reimbursed within 30 days" in doc.text


def test_pdf_over_page_limit() -> None:
    reason = refusal("long.pdf", make_pdf([f"page {i}" for i in range(6)]))
    assert "6 pages" in reason and "TRIPTYCH_MAX_PDF_PAGES" in reason


def test_pdf_without_text() -> None:
    from fpdf import FPDF

    blank = FPDF()
    blank.add_page()
    blank.rect(10, 10, 50, 50)  # a drawing, no text: like a scanned page
    assert "OCR" in refusal("scan.pdf", bytes(blank.output()))


def test_corrupt_pdf_body() -> None:
    junk = b"%PDF-1.4\n" + os.urandom(2000) + b"\n%%EOF\n"
    assert "could not be read" in refusal("broken.pdf", junk)


def test_zip_bomb_docx(docx_bytes: bytes) -> None:
    # A real DOCX whose document.xml is 64 MB of nearly nothing: it deflates to about 64 KB.
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(docx_bytes)) as src,
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            if item.filename == "word/document.xml":
                body = src.read(item)
                padding = b" " * (64 * MIB)
                dst.writestr(item.filename, body.replace(b"<w:body>", b"<w:body>" + padding, 1))
            else:
                dst.writestr(item, src.read(item))
    bomb = buf.getvalue()
    assert len(bomb) < LIMITS.max_bytes  # small on disk: the size limit alone would not catch it
    reason = refusal("bomb.docx", bomb)
    assert "zip bomb" in reason and "word/document.xml" in reason


def test_docx_unpacking_beyond_total_limit(docx_bytes: bytes) -> None:
    small = Limits(max_bytes=2 * MIB, max_pdf_pages=5, max_unzipped=MIB)
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(docx_bytes)) as src,
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        # parts that each compress normally (random hex: about 2x), together over the total limit
        for i in range(3):
            dst.writestr(f"word/media/blob{i}.bin", os.urandom(MIB // 4).hex())
    assert len(buf.getvalue()) < small.max_bytes
    reason = refusal("huge.docx", buf.getvalue(), small)
    assert "would unpack to 2 MB" in reason and "possible zip bomb" in reason


def test_zip_that_is_not_a_docx() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    assert "not a Word .docx" in refusal("archive.docx", buf.getvalue())


def test_corrupt_docx(docx_bytes: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx_bytes)) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            data = b"<w:document><unclosed" if item.filename == "word/document.xml" else src.read(item)
            dst.writestr(item.filename, data)
    assert "could not be read" in refusal("broken.docx", buf.getvalue())
    assert "corrupt" in refusal("cut.docx", docx_bytes[: len(docx_bytes) // 3])


def test_legacy_or_encrypted_word_file() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000)
    reason = refusal("old.docx", ole)
    assert "password-protected or legacy" in reason and "save as .docx" in reason


def test_binary_junk_named_txt() -> None:
    junk = bytes(range(256)) * 20
    assert "binary data, not text" in refusal("notes.txt", junk)
    assert "binary data" in refusal("page.html", os.urandom(4096))
    assert sniff(junk) == "binary"


def test_image_named_md() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    assert "image/png" in refusal("diagram.md", png)


def test_over_size_limit() -> None:
    big = b"a line of text\n" * (LIMITS.max_bytes // 15 + 10)
    reason = refusal("big.txt", big)
    assert "over the 2 MB limit" in reason and "TRIPTYCH_MAX_UPLOAD_MB" in reason
    with pytest.raises(DocumentRejected, match="over the 2 MB limit"):
        check_size(LIMITS.max_bytes + 1, LIMITS)  # checked before a file is read


def test_unsupported_extensions() -> None:
    assert "unsupported file type '.exe'" in refusal("setup.exe", b"MZ...")
    assert "without an extension" in refusal("README", b"hello")
    assert ".pdf, .docx" in refusal("sheet.xlsx", b"hello")


# --- ordinary text that looks like something else, and binaries that pretend to be text ------------

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 2


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("payload.bin", os.urandom(2000))
    return buf.getvalue()


ACCENTED = "Richtlinie für Dienstwagen\n\nDie Pauschale beträgt 0,30 € je Kilometer; Straße und Größe.\n"


@pytest.mark.parametrize(
    ("name", "data", "refused_as"),
    [
        ("company_car.txt", b"BMW company car policy\n\nEmployees in band 5 may choose a BMW 3 Series.\n", None),
        ("notes.md", b"# Scanning\n\nEvery file starts with `%PDF-1.7`, so check the header.\n", None),
        ("intro.txt", b"MZ-7 scanner guide: press the green button.\n", None),  # MZ: an .exe to `filetype`
        ("diagram.txt", PNG, "image/png"),
        ("tool.md", ELF, "application/x-executable"),
        ("bundle.md", _zip(), "ZIP archive"),
    ],
    ids=["bmw-txt", "pdf-magic-in-md", "mz-txt", "png-as-txt", "elf-as-md", "zip-as-md"],
)
def test_content_sniffing(name: str, data: bytes, refused_as: str | None) -> None:
    if refused_as is None:
        assert sniff(data) == "text"
        assert load_document(name, data, LIMITS).text == data.decode()
    else:
        reason = refusal(name, data)
        assert refused_as in reason and "not text" in reason


FRENCH = "Politique de congés : les employés reçoivent 25 jours.\n"
MENU = "Caf\xe9 \u2013 men\xfc"


@pytest.mark.parametrize(
    ("text", "data", "warning"),
    [
        (ACCENTED, ACCENTED.encode("utf-8"), None),
        (ACCENTED, b"\xef\xbb\xbf" + ACCENTED.encode("utf-8"), None),  # UTF-8 with BOM
        (ACCENTED, ACCENTED.encode("cp1252"), "Windows-1252/Latin-1"),
        (FRENCH, FRENCH.encode("latin-1"), "Windows-1252/Latin-1"),
        (MENU, MENU.encode("cp1252"), "Windows-1252/Latin-1"),  # too short for detection alone
        (ACCENTED, ACCENTED.encode("utf-16"), "UTF-16"),  # with BOM
        (ACCENTED, ACCENTED.encode("utf-16-le"), "UTF-16"),  # without BOM
    ],
    ids=["utf8", "utf8-bom", "cp1252", "latin1", "short-cp1252", "utf16-bom", "utf16le"],
)
def test_encodings_are_read_correctly_and_named(text: str, data: bytes, warning: str | None) -> None:
    doc = load_document("policy.txt", data, LIMITS)
    assert doc.text == text
    if warning is None:
        assert doc.warnings == ()
    else:
        assert len(doc.warnings) == 1 and f"read as {warning}" in doc.warnings[0] and "accents" in doc.warnings[0]


def test_encoding_warning_reaches_the_upload_result() -> None:
    from triptych.documents.chunking import ChunkingConfig
    from triptych.ingest import SourceFile, ingest_sources
    from triptych.testing import HashEmbedder, temporary_index

    files = [
        SourceFile.from_bytes("legacy.txt", ACCENTED.encode("cp1252")),
        SourceFile.from_bytes("fine.txt", ACCENTED.encode()),
    ]
    with temporary_index() as index:
        report = ingest_sources(
            index,
            HashEmbedder(model_name=index.embedding_model),
            files,
            limits=LIMITS,
            chunking=ChunkingConfig(400, 40),
        )
    by_name = {o.source: o for o in report.outcomes}
    assert by_name["legacy.txt"].status == "added" and "Windows-1252" in (by_name["legacy.txt"].reason or "")
    assert by_name["fine.txt"].status == "added" and by_name["fine.txt"].reason is None
