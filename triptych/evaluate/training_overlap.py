"""Seen or unseen: was a gold question (or a paraphrase of it) in the training set of the adapter that answered it?

A fine-tuned model that answers a question it was trained on is remembering, not generalising, so
its scores are split by this. The adapter run is the one the pipeline would use for the domain
(graphs.registry.fine_tuned_model: the domain's active local adapter, or its active hosted model);
its questions are the user messages of `training.jsonl` in the run's folder (triptych.finetune.runs).
Two questions match when they are equal after `question_key` (lower case, punctuation and articles
dropped, single spaces). None means "not known": no adapter, or a run without a training file.
"""

from __future__ import annotations

from pathlib import Path

from graphs.registry import NotFineTuned, fine_tuned_model, get_spec
from triptych.evaluate.metrics import normalize_answer
from triptych.finetune import registry
from triptych.finetune.dataset import normalise_text
from triptych.finetune.runs import TRAINING_FILE
from triptych.jsonl import read_jsonl
from triptych.qa import QARecord
from triptych.settings import Settings


def question_key(text: str) -> str:
    """A question as training sets compare them (finetune.dataset.normalise_text), articles dropped too."""
    return normalize_answer(normalise_text(text))


def adapter_run_id(settings: Settings, pipeline: str, domain: str) -> str | None:
    """The fine-tuning run whose adapter the pipeline answers with for the domain, or None (no adapter)."""
    try:
        spec = get_spec(pipeline)
    except KeyError:
        return None
    if not spec.uses_adapter:
        return None
    try:
        lora, hosted = fine_tuned_model(
            settings, settings.endpoint(spec.endpoint), domain, passages_first=spec.passages_first
        )
    except NotFineTuned:
        return None
    if lora is not None:
        return Path(lora[1]).parent.name
    if hosted:
        return next((r.run_id for r in registry.list_runs(settings) if r.info.get("hosted_model") == hosted), None)
    return None


def asked_in(user_turn: str) -> str:
    """The question of a training user turn: the turn itself, or its `Question: ...` line when it carries passages."""
    first = user_turn.split("\n", 1)[0]
    return first.removeprefix("Question: ") if first.startswith("Question: ") and "\n" in user_turn else user_turn


def training_questions(settings: Settings, run_id: str) -> frozenset[str] | None:
    """The question keys a run trained on (its training.jsonl user messages), None without a training file."""
    path = settings.runs_dir / run_id / TRAINING_FILE
    if not path.is_file():
        return None
    keys = set()
    for _, row in read_jsonl(path):
        messages = row.get("messages") if isinstance(row, dict) else None
        for message in messages if isinstance(messages, list) else ():
            if isinstance(message, dict) and message.get("role") == "user" and isinstance(message.get("content"), str):
                keys.add(question_key(asked_in(message["content"])))
    return frozenset(keys)


def seen_in_training(record: QARecord, trained: frozenset[str] | None) -> bool | None:
    """The question, or one of its paraphrases, is among the trained questions; None when they are unknown."""
    if trained is None:
        return None
    return any(question_key(q) in trained for q in (record.question, *record.paraphrases))


class TrainingOverlap:
    """Per pipeline of one evaluation: the adapter run that answers and the questions it was trained on."""

    def __init__(self, settings: Settings, domain: str, pipelines: list[str]) -> None:
        self.runs = {p: adapter_run_id(settings, p, domain) for p in pipelines}
        self._trained = {run: training_questions(settings, run) for run in set(self.runs.values()) if run}

    def seen(self, pipeline: str, record: QARecord) -> bool | None:
        """Whether the pipeline's adapter was trained on the question (None: no adapter, or not known)."""
        run = self.runs.get(pipeline)
        return seen_in_training(record, self._trained.get(run)) if run else None
