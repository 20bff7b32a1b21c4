"""Gold question/answer sets in the format of ../shared/eval (`qa.jsonl`, one JSON object a line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from triptych.jsonl import read_jsonl


class QAFormatError(ValueError):
    """A QA file has a line that is not a valid record; the message names file and line."""


@dataclass(frozen=True)
class QARecord:
    """One gold question with its answer(s)."""

    id: str
    question: str
    answer: str
    alt_answers: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    answer_type: str = "extractive"
    domain: str = ""
    split: str | None = None
    answerable: bool = True
    paraphrases: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def gold_answers(self) -> list[str]:
        """`answer` plus `alt_answers`, without empties or repeats."""
        seen: list[str] = []
        for a in (self.answer, *self.alt_answers):
            if a and a not in seen:
                seen.append(a)
        return seen


KNOWN = {"id", "question", "answer", "alt_answers", "doc_ids", "answer_type", "domain", "split",
         "answerable", "paraphrases"}  # fmt: skip


def parse_record(obj: dict[str, object], where: str) -> QARecord:
    """Validate one decoded JSON object."""
    for key in ("id", "question", "answer"):
        if not isinstance(obj.get(key), str):
            raise QAFormatError(f"{where}: field {key!r} must be a string")
    if not str(obj["question"]).strip():
        raise QAFormatError(f"{where}: empty question")
    answer_type = str(obj.get("answer_type", "extractive"))
    answerable = bool(obj.get("answerable", answer_type != "unanswerable"))
    return QARecord(
        id=str(obj["id"]),
        question=str(obj["question"]).strip(),
        answer=str(obj["answer"]),
        alt_answers=tuple(str(a) for a in obj.get("alt_answers") or ()),  # type: ignore[union-attr]
        doc_ids=tuple(str(d) for d in obj.get("doc_ids") or ()),  # type: ignore[union-attr]
        answer_type=answer_type,
        domain=str(obj.get("domain", "")),
        split=str(obj["split"]) if obj.get("split") else None,
        answerable=answerable,
        paraphrases=tuple(str(p) for p in obj.get("paraphrases") or ()),  # type: ignore[union-attr]
        extra={k: v for k, v in obj.items() if k not in KNOWN},
    )


def load_qa(path: Path, split: str | None = None) -> list[QARecord]:
    """Read a QA file; `split` keeps only records of that split (records without one always pass)."""
    records = []
    for n, obj in read_jsonl(path, QAFormatError):
        if not isinstance(obj, dict):
            raise QAFormatError(f"{path}:{n}: expected a JSON object")
        record = parse_record(obj, f"{path}:{n}")
        if split is None or record.split in (None, split):
            records.append(record)
    return records


def domain_qa(corpora_dir: Path, domain: str, split: str | None = None) -> list[QARecord]:
    """The gold QA of a demo domain (corpora_dir/<domain>/qa.jsonl), or [] when it has none."""
    path = corpora_dir / domain / "qa.jsonl"
    return load_qa(path, split) if path.is_file() else []
