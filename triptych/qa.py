"""Gold question/answer sets in the format of ../shared/eval (`qa.jsonl`, one JSON object a line)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


class QAFormatError(ValueError):
    """A QA file has lines that are not valid records; the message names file:line and the fix for each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


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
MAX_PROBLEMS = 20  # a file that is wrong throughout: the first ones are enough to see the pattern
EXAMPLE = '{"id": "q1", "question": "How many days of leave?", "answer": "28 days", "alt_answers": ["28"]}'


def _kind(value: object) -> str:
    """How a JSON value reads to a person: 'the number 28', 'the string "false"'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_json(value)}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _json(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(obj: dict[str, object], key: str, where: str, *, required: bool) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, str):
        return value
    if value is None:
        raise QAFormatError(f"{where}: field {key!r} is missing; every record needs it (e.g. {EXAMPLE})")
    if isinstance(value, bool | int | float):
        fix = f'write it in quotes: "{_json(value)}"'
    else:
        fix = "give one string" + (' (other acceptable answers go in "alt_answers")' if key == "answer" else "")
    raise QAFormatError(f"{where}: field {key!r} must be text (a JSON string), got {_kind(value)}; {fix}")


def _texts(obj: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if isinstance(value, str):  # read as a list, "28 days" would become the answers "2", "8", " ", ...
        raise QAFormatError(
            f"{where}: field {key!r} must be a list of strings, got {_kind(value)}; it is refused rather than "
            f"guessed (one item, or several separated by commas?): write [{_json(value)}] for one item"
        )
    if not isinstance(value, list):
        raise QAFormatError(f'{where}: field {key!r} must be a list of strings, e.g. ["28"], got {_kind(value)}')
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise QAFormatError(
                f"{where}: field {key!r} item {i} must be a string, got {_kind(item)}; write it in quotes"
            )
    return tuple(value)


def _answerable(obj: dict[str, object], answer_type: str, where: str) -> bool:
    value = obj.get("answerable")
    if value is None:
        return answer_type != "unanswerable"
    if not isinstance(value, bool):  # bool("false") is True: a quoted false must never read as answerable
        raise QAFormatError(
            f"{where}: field 'answerable' must be true or false (a JSON boolean, without quotes), got {_kind(value)}"
        )
    return value


def parse_record(obj: dict[str, object], where: str) -> QARecord:
    """Validate one decoded JSON object strictly: a wrong type is an error naming `where` and the fix."""
    record_id = _text(obj, "id", where, required=True)
    question = _text(obj, "question", where, required=True)
    answer = _text(obj, "answer", where, required=True)
    assert record_id is not None and question is not None and answer is not None
    if not record_id.strip():
        raise QAFormatError(f"{where}: empty id; give each question an id of its own")
    if not question.strip():
        raise QAFormatError(f"{where}: empty question")
    answer_type = _text(obj, "answer_type", where, required=False) or "extractive"
    answerable = _answerable(obj, answer_type, where)
    split = _text(obj, "split", where, required=False)
    return QARecord(
        id=record_id,
        question=question.strip(),
        answer=answer,
        alt_answers=_texts(obj, "alt_answers", where),
        doc_ids=_texts(obj, "doc_ids", where),
        answer_type=answer_type,
        domain=_text(obj, "domain", where, required=False) or "",
        split=split or None,
        answerable=answerable,
        paraphrases=_texts(obj, "paraphrases", where),
        extra={k: v for k, v in obj.items() if k not in KNOWN},
    )


def parse_qa(data: bytes, name: str, split: str | None = None) -> list[QARecord]:
    """Read QA records from a file's bytes (`name` is how errors refer to it: file:line).

    Every line is checked; a QAFormatError lists the problems (the first MAX_PROBLEMS), each with
    its line and the fix. `split` keeps only records of that split (records without one always pass).
    """
    records: list[QARecord] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")  # a byte-order mark is not an error
    for n, raw in enumerate(lines, start=1):
        if len(problems) >= MAX_PROBLEMS:
            break
        where = f"{name}:{n}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(
                f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "save the file as UTF-8"
            )
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); each line must be one JSON "
                f"object, e.g. {EXAMPLE}"
            )
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object, got {_kind(obj)}; e.g. {EXAMPLE}")
            continue
        try:
            record = parse_record(obj, where)
        except QAFormatError as exc:
            problems.append(str(exc))
            continue
        if record.id in first_line:
            problems.append(
                f"{where}: id {record.id!r} is already used on line {first_line[record.id]}; make it unique"
            )
            continue
        first_line[record.id] = n
        if split is None or record.split in (None, split):
            records.append(record)
    if problems:
        raise QAFormatError("\n".join(problems), problems)
    return records


def load_qa(path: Path, split: str | None = None) -> list[QARecord]:
    """Read a QA file; `split` keeps only records of that split (records without one always pass)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise QAFormatError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return parse_qa(data, str(path), split)


def domain_qa(corpora_dir: Path, domain: str, split: str | None = None) -> list[QARecord]:
    """The gold QA of a demo domain (corpora_dir/<domain>/qa.jsonl), or [] when it has none."""
    path = corpora_dir / domain / "qa.jsonl"
    return load_qa(path, split) if path.is_file() else []
