"""Training questions written by a capable LLM for documents that come without gold QA.

Used instead of the extractive generator in dataset.py when TRIPTYCH_FINETUNE_QA_MODEL names an
OpenAI-compatible model (the embedded 135M model cannot write useful questions). Each document is
cut into passages; for each, the model is asked for short question/answer pairs as JSON. A pair is
kept only if its answer is quoted from the passage (after normalisation), so a model that invents
facts cannot teach them to the fine-tuned model. One failing passage is counted and skipped; if
every request fails, the error names the endpoint and the variable to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from openai import OpenAI

from triptych.finetune.dataset import Example, TrainingSetError, dedupe_examples, normalise_text
from triptych.llm.capable import CapableEndpoint, capable_client, capable_endpoint
from triptych.runstore import mask_url_credentials
from triptych.settings import Settings

SYSTEM = """You write training questions for a company's question-answering assistant.
Reply with a JSON object only: {"pairs": [{"question": "...", "answer": "..."}]}.
- Each answer is a short phrase copied word for word from the passage (a number, amount, name, date,
  duration or short clause; at most 15 words).
- Each question is self-contained: it names its subject (never "the passage" or "the text") and has
  exactly one answer in the passage.
- No two questions ask for the same fact. Fewer pairs are better than vague ones."""

MAX_ANSWER_CHARS = 200


def passages(text: str, max_chars: int = 1500) -> list[str]:
    """The document cut at paragraph boundaries into passages of at most about `max_chars`."""
    out: list[str] = []
    current = ""
    for para in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not para:
            continue
        if current and len(current) + len(para) + 2 > max_chars:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
        while len(current) > max_chars:  # one very long paragraph: cut at a sentence end if there is one
            cut = current.rfind(". ", 0, max_chars)
            cut = cut + 1 if cut > max_chars // 3 else max_chars
            out.append(current[:cut].strip())
            current = current[cut:].strip()
    if current:
        out.append(current)
    return out


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from the model's reply; [] when it is not the asked JSON."""
    match = re.search(r"\{.*\}", text, flags=re.S)
    if not match:
        return []
    try:
        obj = json.loads(match.group(0))
    except json.JSONDecodeError:
        return []
    pairs = obj.get("pairs") if isinstance(obj, dict) else None
    out = []
    for item in pairs if isinstance(pairs, list) else []:
        if isinstance(item, dict) and isinstance(item.get("question"), str) and isinstance(item.get("answer"), str):
            q, a = " ".join(item["question"].split()), " ".join(item["answer"].split())
            if q and a:
                out.append((q, a))
    return out


def grounded(answer: str, passage: str) -> bool:
    """The answer is quoted from the passage (case, punctuation and spacing aside) and short."""
    norm = normalise_text(answer)
    return bool(norm) and len(answer) <= MAX_ANSWER_CHARS and f" {norm} " in f" {normalise_text(passage)} "


@dataclass
class GenerationStats:
    """What the question writer did, for the run's record and the progress line."""

    passages: int = 0
    proposed: int = 0
    kept: int = 0
    ungrounded: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for run.json (at most three error messages)."""
        return {"passages": self.passages, "proposed": self.proposed, "kept": self.kept,
                "ungrounded": self.ungrounded, "failed": self.failed, "errors": self.errors[:3]}  # fmt: skip


class QuestionWriter:
    """Asks the configured model for question/answer pairs about one passage at a time."""

    def __init__(self, endpoint: CapableEndpoint, client: OpenAI, per_passage: int = 3) -> None:
        self.endpoint, self.client, self.per_passage = endpoint, client, per_passage

    @classmethod
    def from_settings(cls, settings: Settings, **client_kwargs: Any) -> QuestionWriter | None:
        """The configured writer, None when TRIPTYCH_FINETUNE_QA_MODEL is unset (ConfigError if it is wrong)."""
        endpoint = capable_endpoint(
            "TRIPTYCH_FINETUNE_QA", settings.finetune_qa_model, settings.finetune_qa_base_url,
            settings.finetune_qa_api_key_env, "the question writer",
        )  # fmt: skip
        if endpoint is None:
            return None
        client = capable_client(endpoint, settings.request_timeout_s, **client_kwargs)
        return cls(endpoint, client, settings.finetune_qa_per_passage)

    def pairs(self, title: str, passage: str) -> list[tuple[str, str]]:
        """The model's pairs for the passage (network and API errors propagate)."""
        user = f"Write up to {self.per_passage} pairs.\nDocument: {title}\nPassage:\n{passage}"
        reply = self.client.chat.completions.create(
            model=self.endpoint.model,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            temperature=0,
            max_tokens=120 * self.per_passage,
        )
        return parse_pairs(reply.choices[0].message.content or "")[: self.per_passage]


def llm_generated_examples(
    documents: Iterable[tuple[str, str, str]],
    writer: QuestionWriter,
    limit: int = 200,
    on_status: Callable[[str], None] | None = None,
) -> tuple[list[Example], GenerationStats]:
    """Grounded examples from (name, title, text) documents, and what was proposed, kept and refused."""
    say = on_status or (lambda _msg: None)
    stats = GenerationStats()
    examples: list[Example] = []
    work = [(name, title, n, p) for name, title, text in documents for n, p in enumerate(passages(text))]
    for i, (name, title, n, passage) in enumerate(work, 1):
        if len(examples) >= limit:
            break
        stats.passages += 1
        try:
            proposed = writer.pairs(title, passage)
        except Exception as exc:  # noqa: BLE001 - one failed passage is skipped and counted
            stats.failed += 1
            stats.errors.append(f"{name} passage {n}: {type(exc).__name__}: {exc}"[:300])
            proposed = []
        stats.proposed += len(proposed)
        for k, (question, answer) in enumerate(proposed):
            if grounded(answer, passage):
                examples.append(Example(question, answer, f"doc:{name}#p{n}q{k}", "llm-generated"))
            else:
                stats.ungrounded += 1
        examples = dedupe_examples(examples)
        stats.kept = len(examples)
        say(f"question writer: passage {i}/{len(work)}, {stats.kept} pairs kept, "
            f"{stats.ungrounded} not in the text, {stats.failed} failed")  # fmt: skip
    if stats.passages and stats.failed == stats.passages:
        where = mask_url_credentials(writer.endpoint.base_url)
        raise TrainingSetError(
            f"the question writer ({writer.endpoint.model} at {where}) failed on every passage: "
            f"{stats.errors[0]}; check TRIPTYCH_FINETUNE_QA_MODEL / _BASE_URL / _API_KEY_ENV, or unset "
            "TRIPTYCH_FINETUNE_QA_MODEL to use the extractive generator"
        )
    return examples[:limit], stats
