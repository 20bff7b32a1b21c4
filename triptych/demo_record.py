"""Recording demo packs: questions through the real pipelines, every event stamped with its time.

Times are taken on the event loop as `Comparison` yields each event (not in the caller's thread,
which receives them a poll later), measured from the moment the comparison starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from graphs.compare import Comparison, Event
from triptych.bridge import run_relaying
from triptych.demo_pack import DemoPack, RecordedComparison, TimedEvent
from triptych.qa import QAFormatError, domain_qa, load_qa
from triptych.settings import Settings


@dataclass(frozen=True)
class QuestionToRecord:
    """A question to record, with its gold answers when it has them."""

    question: str
    gold_answers: list[str] = field(default_factory=list)


def preset_questions(settings: Settings, domain: str) -> list[QuestionToRecord]:
    """The domain's test-split preset questions (the Compare page's presets), with their gold answers."""
    return [QuestionToRecord(r.question, r.gold_answers) for r in domain_qa(settings.corpora_dir, domain, "test")
            if r.answerable]  # fmt: skip


def questions_from_file(path: Path) -> list[QuestionToRecord]:
    """Questions from a QA file (`.jsonl`, as `triptych eval --qa` reads) or a text file, one question a line.

    In a text file, empty lines and lines starting with '#' are skipped. Raises QAFormatError or ValueError
    naming the file and the fix.
    """
    if path.suffix == ".jsonl":
        return [QuestionToRecord(r.question, r.gold_answers) for r in load_qa(path)]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QAFormatError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise QAFormatError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    questions = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not questions:
        raise QAFormatError(f"{path}: no questions in it; write one question a line (or give a QA .jsonl file)")
    return [QuestionToRecord(q) for q in questions]


def record_comparison(
    runner: Comparison,
    question: QuestionToRecord,
    domain: str | None,
    pipelines: Sequence[str],
    on_event: Callable[[Event], None] | None = None,
) -> RecordedComparison:
    """Run one question through the pipelines and keep its results and every event with its time.

    `on_event` (progress) is called in the caller's thread, as `Comparison.run` does.
    """
    events: list[TimedEvent] = []

    async def timed(report: Callable[[Event], None]) -> dict:
        started = time.perf_counter()

        def stamp(event: Event) -> None:
            events.append(TimedEvent(round(time.perf_counter() - started, 4), event.pipeline, event.kind, event.text))
            report(event)

        return await runner.arun(question.question, domain, pipelines, on_event=stamp)

    recorded_at = datetime.now(UTC).isoformat(timespec="seconds")
    results = run_relaying(timed, on_event)
    return RecordedComparison(
        question=question.question,
        domain=domain,
        pipelines=list(pipelines),
        results=results,
        events=events,
        gold_answers=list(question.gold_answers),
        recorded_at=recorded_at,
    )


def record_pack(
    settings: Settings,
    runner: Comparison,
    questions: Sequence[QuestionToRecord],
    domain: str | None,
    pipelines: Sequence[str],
    on_recorded: Callable[[RecordedComparison], None] | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> DemoPack:
    """Record each question in turn; `on_recorded` after each one (progress)."""
    recorded = []
    for question in questions:
        comp = record_comparison(runner, question, domain, pipelines, on_event)
        recorded.append(comp)
        if on_recorded is not None:
            on_recorded(comp)
    return DemoPack.made_with(settings, recorded, domain)
