"""Checks made before a file is parsed: type by content, size, archive safety, text encoding.

Every refusal is a `DocumentRejected` whose message says what is wrong with the file and what to do
about it, so a batch can list each refused file with its reason and carry on with the rest.
"""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import PurePath

import filetype

from triptych.settings import Settings

MIB = 1024 * 1024

# A DOCX is a ZIP archive. These bound what parsing it may unpack, whatever its size on disk: a
# "zip bomb" declares a tiny compressed member that expands to gigabytes. Real DOCX parts compress
# 3-20x; large members beyond MAX_ZIP_RATIO are refused before python-docx opens the archive.
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_RATIO = 100
ZIP_RATIO_MIN_BYTES = MIB  # small members may compress extremely well without harm
MIN_ZIP_TOTAL_BYTES = 200 * MIB  # total unpacked size allowed: the larger of this and 10x the upload limit

# A PDF ends with %%EOF (possibly followed by a little whitespace or junk); a file cut off in
# transfer has none. pypdf would otherwise try to "repair" it and fail deep inside the parser.
PDF_EOF_WINDOW = 8192


class DocumentRejected(ValueError):
    """A file that cannot be ingested; the message says why and what to do about it."""


class DocumentKind(StrEnum):
    """The formats Triptych reads."""

    PDF = "pdf"
    DOCX = "docx"
    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "text"


EXTENSIONS: dict[str, DocumentKind] = {
    ".pdf": DocumentKind.PDF,
    ".docx": DocumentKind.DOCX,
    ".html": DocumentKind.HTML,
    ".htm": DocumentKind.HTML,
    ".md": DocumentKind.MARKDOWN,
    ".markdown": DocumentKind.MARKDOWN,
    ".txt": DocumentKind.TEXT,
}
TEXT_KINDS = frozenset({DocumentKind.HTML, DocumentKind.MARKDOWN, DocumentKind.TEXT})


@dataclass(frozen=True)
class Limits:
    """Size limits applied to every file before it is parsed."""

    max_bytes: int
    max_pdf_pages: int
    max_unzipped: int | None = None  # default: the larger of 200 MB and 10x max_bytes
    max_parse_s: float | None = None  # seconds one file may take to parse; None: no bound

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits of TRIPTYCH_MAX_UPLOAD_MB, TRIPTYCH_MAX_PDF_PAGES and TRIPTYCH_MAX_PARSE_S."""
        return cls(
            max_bytes=int(settings.max_upload_mb * MIB),
            max_pdf_pages=settings.max_pdf_pages,
            max_parse_s=settings.max_parse_s,
        )

    @property
    def max_unzipped_bytes(self) -> int:
        """How much a DOCX may unpack to in total."""
        if self.max_unzipped is not None:
            return self.max_unzipped
        return max(MIN_ZIP_TOTAL_BYTES, 10 * self.max_bytes)


class ParseClock:
    """Time spent parsing one file; `check` refuses the file once it is over the limit.

    Parsers are given a clock and check it between pages, paragraphs or elements, so a file that
    takes too long (thousands of heavy pages, a huge HTML tree) stops with a message, not a hung upload.
    """

    def __init__(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self.started = time.monotonic()

    def check(self, progress: str) -> None:
        """Raise DocumentRejected naming `progress` ("page 40 of 3000") when the time is up."""
        elapsed = time.monotonic() - self.started
        if self.limit_s is not None and elapsed > self.limit_s:
            raise DocumentRejected(
                f"parsing was stopped after {elapsed:.1f} s at {progress}, over the {self.limit_s:g} s limit per "
                "file; split the file, or raise TRIPTYCH_MAX_PARSE_S"
            )


def check_batch(count: int, max_files: int) -> None:
    """Refuse an upload of more files than TRIPTYCH_MAX_UPLOAD_FILES allows at once."""
    if count > max_files:
        raise DocumentRejected(
            f"{count} files in one upload, over the limit of {max_files} per batch; add them in batches of "
            f"{max_files} or fewer, or raise TRIPTYCH_MAX_UPLOAD_FILES"
        )


def supported_extensions() -> str:
    """The accepted file name extensions, for messages and file pickers."""
    return ", ".join(EXTENSIONS)


def kind_from_name(name: str) -> DocumentKind:
    """The format a file name claims by its extension; refuses unsupported extensions."""
    suffix = PurePath(name).suffix.lower()
    kind = EXTENSIONS.get(suffix)
    if kind is None:
        what = f"'{suffix}'" if suffix else "a file without an extension"
        raise DocumentRejected(f"unsupported file type {what}; supported: {supported_extensions()}")
    return kind


def check_size(size: int, limits: Limits) -> None:
    """Refuse empty files and files over the upload limit (call before reading a file from disk)."""
    if size == 0:
        raise DocumentRejected("the file is empty (0 bytes)")
    if size > limits.max_bytes:
        raise DocumentRejected(
            f"the file is {size / MIB:.1f} MB, over the {limits.max_bytes / MIB:g} MB limit; split it, "
            "or raise TRIPTYCH_MAX_UPLOAD_MB"
        )


def validate(name: str, data: bytes, limits: Limits) -> DocumentKind:
    """The document's format, checked against its content; raises DocumentRejected with the reason.

    The extension says what the file should be; the first bytes say what it is. They must agree,
    so a PDF renamed to .docx or a ZIP renamed to .txt is refused with a message naming the fix.
    """
    claimed = kind_from_name(name)
    check_size(len(data), limits)
    actual = sniff(data)
    ext = PurePath(name).suffix.lower()
    if claimed is DocumentKind.PDF:
        if actual != "pdf":
            raise DocumentRejected(f"named {ext} but the content is {describe(actual)}, not a PDF")
        check_pdf_complete(data)
    elif claimed is DocumentKind.DOCX:
        if actual == "ole":
            raise DocumentRejected(
                "this is a password-protected or legacy (.doc) Word file, not a .docx; remove the "
                "password, or open it in Word and save as .docx"
            )
        if actual != "zip":
            raise DocumentRejected(f"named {ext} but the content is {describe(actual)}, not a Word .docx")
        check_docx_archive(data, limits)
    elif actual != "text":
        raise DocumentRejected(
            f"named {ext} but the content is {describe(actual)}, not text"
            + (f"; rename it to {_extension_for(actual)}" if _extension_for(actual) else "")
        )
    return claimed


def sniff(data: bytes) -> str:
    """What the bytes are: 'pdf', 'zip', 'ole', 'text', a MIME type from `filetype`, or 'binary'.

    The formats Triptych parses are recognised by their magic bytes at offset 0 only. Anything else
    that reads as text is text: `filetype` matches two or three letters ("BM" is a bitmap, "MZ" an
    executable), so "BMW company car policy" would otherwise be an image. Only bytes that do not
    read as text are given `filetype`'s name (a PNG or an executable renamed .txt).
    """
    head = data[:2048]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    try:
        decode_text(data)
    except DocumentRejected:
        guess = filetype.guess(head)
        return guess.mime if guess is not None else "binary"
    return "text"


def describe(sniffed: str) -> str:
    """Words for what `sniff` found, for refusal messages."""
    return {
        "pdf": "a PDF",
        "zip": "a ZIP archive (or a .docx)",
        "ole": "a legacy Office (.doc/.xls) or password-protected Office file",
        "text": "text",
        "binary": "binary data",
    }.get(sniffed, sniffed)


def _extension_for(sniffed: str) -> str | None:
    return {"pdf": ".pdf"}.get(sniffed)


def check_pdf_complete(data: bytes) -> None:
    """Refuse a PDF that was cut off (no %%EOF marker near its end)."""
    if b"%%EOF" not in data[-PDF_EOF_WINDOW:]:
        raise DocumentRejected("the PDF is truncated or corrupt (no end-of-file marker); download or export it again")


def check_docx_archive(data: bytes, limits: Limits) -> None:
    """Refuse a DOCX that is not a readable Word archive or that would unpack to too much."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentRejected(f"the DOCX is corrupt (not a readable ZIP archive: {exc}); save it again") from None
    names = {m.filename for m in members}
    if "word/document.xml" not in names:
        raise DocumentRejected("the archive holds no word/document.xml, so it is not a Word .docx")
    if len(members) > MAX_ZIP_MEMBERS:
        raise DocumentRejected(f"the DOCX holds {len(members)} parts (limit {MAX_ZIP_MEMBERS}); refused as unsafe")
    total = sum(m.file_size for m in members)
    if total > limits.max_unzipped_bytes:
        raise DocumentRejected(
            f"the DOCX would unpack to {total / MIB:.0f} MB (limit "
            f"{limits.max_unzipped_bytes / MIB:.0f} MB); refused as a possible zip bomb"
        )
    for m in members:
        if m.file_size >= ZIP_RATIO_MIN_BYTES and m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 1):
            ratio = m.file_size / max(m.compress_size, 1)
            raise DocumentRejected(
                f"the DOCX part {m.filename} expands {ratio:.0f}x ({m.file_size / MIB:.0f} MB from "
                f"{m.compress_size / 1024:.0f} KB; limit {MAX_ZIP_RATIO}x); refused as a possible zip bomb"
            )


@dataclass(frozen=True)
class DecodedText:
    """A text file's text, the encoding it was read with, and a warning when that was not UTF-8."""

    text: str
    encoding: str
    warning: str | None = None


# Short Western text gives charset-normalizer little to go on ("Café – menü" reads as cp1125): when
# Windows-1252 decodes the bytes and the detected code page is no better supported, it is taken.
MIN_COHERENCE = 0.2
_ENCODING_NAMES = {"cp1252": "Windows-1252/Latin-1", "utf_16": "UTF-16", "utf_16_le": "UTF-16", "utf_16_be": "UTF-16",
                   "utf_32": "UTF-32", "utf_32_le": "UTF-32", "utf_32_be": "UTF-32"}  # fmt: skip


@lru_cache(maxsize=1)  # validation and the loader both read the same file's text
def decode(data: bytes) -> DecodedText:
    """Text of a text file: UTF-8 (with or without BOM) as is; anything else detected, with a warning.

    Other encodings are detected by charset-normalizer (UTF-16 with or without BOM, legacy code
    pages); the warning names the one used, so that wrong accents can be traced to it. Refuses
    binary data: bytes no encoding explains, or more than 1 % control characters after decoding.
    """
    try:
        decoded = DecodedText(data.decode("utf-8-sig"), "utf_8")
    except UnicodeDecodeError:
        decoded = _detect(data)
    else:
        if "\x00" in decoded.text:  # valid UTF-8, but NULs: UTF-16 without a BOM, or binary
            decoded = _detect(data)
    text = decoded.text
    if "\x00" in text:
        raise DocumentRejected("the file holds binary data, not text")
    control = sum(1 for ch in text if ch < " " and ch not in "\t\n\r\f") + text.count("\ufffd")
    if control > max(1, len(text) // 100):
        raise DocumentRejected("the file holds binary data, not text (too many control characters)")
    return decoded


def _detect(data: bytes) -> DecodedText:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise DocumentRejected("the file holds binary data, not text (no text encoding reads it)")
    encoding, text = best.encoding, str(best)
    if not encoding.startswith(("utf_16", "utf_32")):
        try:
            western = data.decode("cp1252")
        except UnicodeDecodeError:
            western = None
        if western is not None and (western == text or best.coherence < MIN_COHERENCE):
            encoding, text = "cp1252", western
    name = _ENCODING_NAMES.get(encoding, encoding)
    return DecodedText(
        text, encoding, f"read as {name}, not UTF-8: check accents and special characters, or save it as UTF-8"
    )


def decode_text(data: bytes) -> str:
    """The text of `decode(data)`."""
    return decode(data).text
