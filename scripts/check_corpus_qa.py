"""Check the demo corpora and their gold QA files (``corpora/<domain>/qa.jsonl``).

Checks per corpus: the QA record fields and their consistency, that every extractive answer occurs
verbatim (case-sensitive) in the text of its document, the split and unanswerable counts, document
sizes and formats, and the total size of ``corpora/``. Document text is what a loader sees: the file
for .md/.txt, the text with tags stripped for .html, pypdf's extraction for .pdf and python-docx's
paragraphs and table cells for .docx. Runs of whitespace are collapsed before matching, because PDF
extraction breaks lines where the page wrapped them.

Usage: ``.venv/bin/python scripts/check_corpus_qa.py [domain ...]``; exits 1 on any failure.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import docx
from pypdf import PdfReader

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
DOC_FORMATS = (".md", ".txt", ".html", ".pdf", ".docx")
ANSWER_TYPES = {"extractive", "free-form", "unanswerable"}
FIELDS = {
    "id": str,
    "question": str,
    "answer": str,
    "alt_answers": list,
    "doc_ids": list,
    "answer_type": str,
    "domain": str,
    "split": str,
    "answerable": bool,
    "paraphrases": list,
}
QA_COUNT = (45, 60)
UNANSWERABLE_COUNT = (4, 6)
DOC_CHARS = (1_500, 5_000)
DOC_COUNT = (12, 20)
MIN_BINARY_QUESTIONS = 3
MAX_CORPORA_BYTES = 3_000_000


class _TextExtractor(HTMLParser):
    """Collects the text nodes of an HTML page, one per line, skipping script and style."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def document_text(path: Path) -> str:
    """Return the text a loader would index for one document."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".txt"):
        return path.read_text(encoding="utf-8")
    if suffix == ".html":
        parser = _TextExtractor()
        parser.feed(path.read_text(encoding="utf-8"))
        return "\n".join(parser.parts)
    if suffix == ".pdf":
        return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    if suffix == ".docx":
        document = docx.Document(str(path))
        lines = [paragraph.text for paragraph in document.paragraphs]
        for table in document.tables:
            lines.extend(" | ".join(cell.text for cell in row.cells) for row in table.rows)
        return "\n".join(lines)
    raise ValueError(f"unsupported document format: {path}")


def normalise_space(text: str) -> str:
    """Collapse every run of whitespace to one space."""
    return re.sub(r"\s+", " ", text).strip()


def check_domain(domain_dir: Path) -> tuple[list[str], dict[str, object]]:
    """Check one corpus; return the failures and a summary for the report."""
    domain = domain_dir.name
    failures: list[str] = []
    docs = {p.stem: p for p in sorted((domain_dir / "docs").iterdir()) if p.suffix.lower() in DOC_FORMATS}
    others = [p.name for p in (domain_dir / "docs").iterdir() if p.suffix.lower() not in DOC_FORMATS]
    if others:
        failures.append(f"unexpected files in docs/: {others}")
    if not DOC_COUNT[0] <= len(docs) <= DOC_COUNT[1]:
        failures.append(f"{len(docs)} documents, expected {DOC_COUNT[0]}-{DOC_COUNT[1]}")
    texts = {doc_id: normalise_space(document_text(path)) for doc_id, path in docs.items()}
    for doc_id, text in texts.items():
        if not DOC_CHARS[0] <= len(text) <= DOC_CHARS[1]:
            failures.append(f"{doc_id}: {len(text)} characters of text, expected {DOC_CHARS[0]}-{DOC_CHARS[1]}")

    records = [json.loads(line) for line in (domain_dir / "qa.jsonl").read_text().splitlines() if line.strip()]
    ids = Counter(record.get("id") for record in records)
    failures += [f"duplicate id {qid}" for qid, n in ids.items() if n > 1]
    questions = Counter(record.get("question") for record in records)
    failures += [f"duplicate question {q!r}" for q, n in questions.items() if n > 1]

    binary_questions = 0
    for record in records:
        failures += [f"{record.get('id')}: {problem}" for problem in check_record(record, domain, docs, texts)]
        if any(docs.get(d, Path()).suffix in (".pdf", ".docx") for d in record.get("doc_ids", [])):
            binary_questions += 1

    unanswerable = sum(not record.get("answerable") for record in records)
    if not QA_COUNT[0] <= len(records) <= QA_COUNT[1]:
        failures.append(f"{len(records)} questions, expected {QA_COUNT[0]}-{QA_COUNT[1]}")
    if not UNANSWERABLE_COUNT[0] <= unanswerable <= UNANSWERABLE_COUNT[1]:
        failures.append(f"{unanswerable} unanswerable questions, expected {UNANSWERABLE_COUNT}")
    if binary_questions < MIN_BINARY_QUESTIONS:
        failures.append(f"only {binary_questions} questions answered from PDF/DOCX documents")
    unused = sorted(set(docs) - {d for record in records for d in record.get("doc_ids", [])})
    if unused:
        failures.append(f"documents without any question: {unused}")

    splits = Counter((record.get("split"), record.get("answerable")) for record in records)
    coverage = {
        split: len({d for r in records if r.get("split") == split for d in r.get("doc_ids", [])})
        for split in ("train", "test")
    }
    summary = {
        "documents": dict(Counter(p.suffix.lstrip(".") for p in docs.values())),
        "questions": len(records),
        "by_split": {f"{s}/{'answerable' if a else 'unanswerable'}": n for (s, a), n in sorted(splits.items())},
        "documents_covered": coverage,
        "from_pdf_or_docx": binary_questions,
    }
    return failures, summary


def check_record(record: dict, domain: str, docs: dict[str, Path], texts: dict[str, str]) -> list[str]:
    """Return the problems of one QA record."""
    problems = [
        f"field {name!r} missing or not {kind.__name__}"
        for name, kind in FIELDS.items()
        if not isinstance(record.get(name), kind)
    ]
    if problems:
        return problems
    if record["domain"] != domain:
        problems.append(f"domain {record['domain']!r} is not {domain!r}")
    if record["split"] not in ("train", "test"):
        problems.append(f"split {record['split']!r}")
    if record["answer_type"] not in ANSWER_TYPES:
        problems.append(f"answer_type {record['answer_type']!r}")
    if not record["question"].rstrip().endswith("?"):
        problems.append("question does not end with '?'")
    paraphrases = record["paraphrases"]
    if len(paraphrases) != 2 or len({record["question"], *paraphrases}) != 3:
        problems.append("paraphrases must be 2 distinct rewordings of the question")
    if not all(isinstance(alt, str) and alt for alt in record["alt_answers"]):
        problems.append("alt_answers must be non-empty strings")

    if not record["answerable"]:
        if record["answer_type"] != "unanswerable" or record["answer"] or record["alt_answers"] or record["doc_ids"]:
            problems.append("unanswerable record needs answer_type 'unanswerable', empty answer/alt_answers/doc_ids")
        return problems
    if record["answer_type"] == "unanswerable":
        problems.append("answerable record has answer_type 'unanswerable'")
    if not record["answer"] or not record["doc_ids"]:
        problems.append("answerable record needs an answer and doc_ids")
    missing = [doc_id for doc_id in record["doc_ids"] if doc_id not in docs]
    if missing:
        return problems + [f"unknown doc_ids {missing}"]
    answer = normalise_space(record["answer"])
    found = [doc_id for doc_id in record["doc_ids"] if answer in texts[doc_id]]
    absent = sorted(set(record["doc_ids"]) - set(found))
    if record["answer_type"] == "extractive" and absent:
        problems.append(f"answer {record['answer']!r} not found verbatim in {absent}")
    if record["answer_type"] == "free-form" and not absent:
        problems.append(f"free-form answer {record['answer']!r} occurs verbatim; mark it extractive")
    return problems


def main(argv: list[str]) -> int:
    """Check the named corpora (default: all) and print a JSON summary per corpus."""
    domains = argv or sorted(p.name for p in CORPORA.iterdir() if (p / "qa.jsonl").is_file())
    failed = False
    for domain in domains:
        failures, summary = check_domain(CORPORA / domain)
        print(f"== {domain}: {'FAIL' if failures else 'ok'}")
        print(json.dumps(summary, indent=1))
        for failure in failures:
            print(f"  FAIL {failure}")
        failed |= bool(failures)
    total = sum(p.stat().st_size for p in CORPORA.rglob("*") if p.is_file())
    print(f"== corpora/ total size: {total:,} bytes")
    if total >= MAX_CORPORA_BYTES:
        print(f"  FAIL corpora/ is larger than {MAX_CORPORA_BYTES:,} bytes")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
