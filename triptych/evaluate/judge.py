"""LLM-as-judge: a capable OpenAI-compatible model grades an answer as correct, partially or wrong.

Off unless TRIPTYCH_JUDGE_MODEL is set (e.g. `openai/gpt-4o-mini`, or `compatible/<name>` with
TRIPTYCH_JUDGE_BASE_URL). The key comes from the variable named by TRIPTYCH_JUDGE_API_KEY_ENV (or
the provider's default, OPENAI_API_KEY for openai); like the pipelines' endpoints, the OpenAI key
is never sent to any other host. The embedded model is too small to judge, so `local` is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from triptych.llm.capable import CapableEndpoint, capable_client, capable_endpoint
from triptych.settings import Settings

VERDICTS = ("correct", "partially", "wrong")

SYSTEM = """You grade answers to questions against reference answers.
Reply with a JSON object only: {"verdict": "correct" | "partially" | "wrong", "reason": "<one sentence>"}.
- correct: the answer states the reference answer's key fact (wording, format and extra detail do not matter).
- partially: some of the key facts, or the fact with an error that matters little.
- wrong: a different or missing fact, or an answer where the reference says the documents do not answer.
If the reference says the question cannot be answered, a refusal ("I don't know", "Not in the documents") is correct."""

UNANSWERABLE = "(none: the documents do not answer this question; the right answer declines)"


@dataclass(frozen=True)
class Verdict:
    """The judge's grade for one answer."""

    verdict: str  # correct | partially | wrong | error
    reason: str

    def to_dict(self) -> dict[str, str]:
        """Plain dict for JSON."""
        return {"verdict": self.verdict, "reason": self.reason}


def judge_endpoint(settings: Settings) -> CapableEndpoint | None:
    """The configured judge, None when TRIPTYCH_JUDGE_MODEL is unset; ConfigError naming the variable if wrong."""
    return capable_endpoint(
        "TRIPTYCH_JUDGE", settings.judge_model, settings.judge_base_url, settings.judge_api_key_env, "the judge"
    )


def parse_verdict(text: str) -> Verdict:
    """The judge's reply as a Verdict; a reply that is not the asked JSON is graded 'error' with the text."""
    match = re.search(r"\{.*\}", text, flags=re.S)
    if match:
        try:
            obj = json.loads(match.group(0))
            verdict = str(obj.get("verdict", "")).strip().lower()
            verdict = "partially" if verdict in ("partial", "partially correct") else verdict
            if verdict in VERDICTS:
                return Verdict(verdict, str(obj.get("reason", "")).strip())
        except (json.JSONDecodeError, AttributeError):
            pass
    return Verdict("error", f"unreadable verdict: {text.strip()[:200]}")


class Judge:
    """Grades answers through the judge endpoint (one short, deterministic request each)."""

    def __init__(self, settings: Settings, endpoint: CapableEndpoint, **client_kwargs: Any) -> None:
        self.endpoint = endpoint
        self.client = capable_client(endpoint, settings.request_timeout_s, **client_kwargs)

    @classmethod
    def from_settings(cls, settings: Settings, **client_kwargs: Any) -> Judge | None:
        """The configured judge, or None when none is configured."""
        endpoint = judge_endpoint(settings)
        return cls(settings, endpoint, **client_kwargs) if endpoint else None

    def grade(self, question: str, references: list[str], answer: str) -> Verdict:
        """correct / partially / wrong with a one-sentence reason; 'error' if the judge fails."""
        refs = "\n".join(f"- {r}" for r in references) if references else UNANSWERABLE
        user = f"Question: {question}\nReference answer(s):\n{refs}\nAnswer to grade: {answer or '(empty)'}"
        try:
            reply = self.client.chat.completions.create(
                model=self.endpoint.model,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                temperature=0,
                max_tokens=150,
            )
        except Exception as exc:  # noqa: BLE001 - a judge failure is recorded with the answer, not fatal
            return Verdict("error", f"{type(exc).__name__}: {exc}"[:300])
        return parse_verdict(reply.choices[0].message.content or "")
