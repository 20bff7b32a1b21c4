"""Scoring one answer against gold answers: SQuAD-style text match, numbers, refusals, retrieval, citations.

Every function here is pure, so each metric can be checked by hand against small cases.

- `normalize_answer`: SQuAD's normalisation (lower-case, drop punctuation, the articles a/an/the,
  collapse whitespace).
- `exact_match` / `token_f1`: SQuAD's definitions, max over the gold answers.
- `contains`: the normalised gold answer occurs in the normalised prediction *as whole words*
  ("5 days" is in "you get 5 days", "5" is not in "15 days"); multi-span gold needs every span.
- `numeric_match`: for gold answers that are numbers ("1,234", "$1.2 million", "12.5%", "-361"):
  some number in the prediction equals the gold number within 0.5 % (at least 0.005), ignoring
  `$`, `%`, commas, the sign (models say "decreased by 361" for -361) and scale words (a number
  with "million" is compared both as written and scaled).
- `is_refusal`: the model declined to answer (see REFUSAL_PHRASES).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

# --- text ------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | {"“", "”", "‘", "’", "–", "—", "…"}


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower-case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Sequence[str]) -> bool:
    """Normalised prediction equals one of the normalised gold answers."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(g) for g in golds if normalize_answer(g))


def _f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1 (bag of normalised words), max over the gold answers."""
    return max((_f1(prediction, g) for g in golds if g.strip()), default=0.0)


def _contains_one(prediction_norm: str, gold: str) -> bool:
    gold_norm = normalize_answer(gold)
    return bool(gold_norm) and f" {gold_norm} " in f" {prediction_norm} "


def contains(prediction: str, golds: Sequence[str], spans: Sequence[str] = ()) -> bool:
    """A gold answer occurs in the prediction as whole words; with `spans`, every span must occur."""
    pred = normalize_answer(prediction)
    if spans:
        return all(_contains_one(pred, s) for s in spans) or any(_contains_one(pred, g) for g in golds)
    return any(_contains_one(pred, g) for g in golds)


# --- numbers ---------------------------------------------------------------------------------------

SCALES = {
    "thousand": 1e3, "k": 1e3, "million": 1e6, "millions": 1e6, "mn": 1e6, "m": 1e6,
    "billion": 1e9, "billions": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12,
}  # fmt: skip
_NUMBER = re.compile(
    r"(?<![\w.])[-−–]?\s?[$€£]?\s?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s?(%|percent\b)?"
    r"(?:\s?(thousand|millions?|mn|m|billions?|bn|b|trillion|k)\b)?",
    re.IGNORECASE,
)
_CURRENCY_WORDS = re.compile(r"\b(usd|eur|gbp|dollars?|euros?|pounds?|per ?cent|percent)\b", re.IGNORECASE)
_NUMERIC_GOLD = re.compile(
    r"^\(?[-−–]?\s?[$€£]?\s?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?\)?\s?%?\s?"
    r"(thousand|millions?|mn|m|billions?|bn|b|trillion|k)?$",
    re.IGNORECASE,
)


def numbers_in(text: str) -> list[tuple[float, float | None]]:
    """Every number in a text as (value as written, value times its scale word or None)."""
    out = []
    for m in _NUMBER.finditer(text.replace("\u2212", "-")):
        value = float(m.group(1).replace(",", "") + (m.group(2) or ""))
        scale = SCALES.get((m.group(4) or "").lower())
        out.append((value, value * scale if scale else None))
    return out


def parse_number(gold: str, scale: str = "") -> tuple[float, float | None] | None:
    """A gold answer that is a single number (with optional $, %, commas, scale word), else None."""
    text = _CURRENCY_WORDS.sub("", gold).strip().rstrip(".")
    if not _NUMERIC_GOLD.match(text):
        return None
    found = numbers_in(text)
    if len(found) != 1:
        return None
    value, scaled = found[0]
    if scaled is None and scale and scale in SCALES:
        scaled = value * SCALES[scale]
    return value, scaled


def _close(a: float, b: float) -> bool:
    a, b = abs(a), abs(b)
    return math.isclose(a, b, rel_tol=0.005, abs_tol=0.005)


def numeric_match(prediction: str, golds: Sequence[str], scale: str = "") -> bool | None:
    """Whether a number in the prediction equals a numeric gold answer; None when no gold is a number."""
    gold_numbers = [n for n in (parse_number(g, scale) for g in golds) if n is not None]
    if not gold_numbers:
        return None
    predicted = numbers_in(prediction)
    for gold_value, gold_scaled in gold_numbers:
        gold_candidates = [gold_value] + ([gold_scaled] if gold_scaled is not None else [])
        for value, scaled in predicted:
            pred_candidates = [value] + ([scaled] if scaled is not None else [])
            if any(_close(p, g) for p in pred_candidates for g in gold_candidates):
                return True
    return False


def spans_numeric_match(prediction: str, spans: Sequence[str], scale: str = "") -> bool | None:
    """Multi-span numbers: every numeric span matches some number in the prediction."""
    results = [numeric_match(prediction, [s], scale) for s in spans]
    if not results or any(r is None for r in results):
        return None
    return all(results)


# --- refusals --------------------------------------------------------------------------------------

# A refusal is an answer whose first sentence, normalised, contains one of these phrases (normalised
# the same way, so "I don't know." and "i dont know" both count). They cover the pipelines' own refusals
# ("I don't know." from the prompt pipeline, "Not in the documents." from RAG) and the usual ways a
# model declines. An empty answer is not a refusal: it is no answer at all.
REFUSAL_PHRASES = (
    "i dont know", "i do not know", "i don t know", "not in documents", "not in provided documents",
    "not in context", "documents do not", "documents dont", "passages do not", "context does not",
    "context do not", "does not say", "do not say", "not mentioned", "not stated", "not specified",
    "no information", "not enough information", "cannot answer", "cant answer", "can not answer",
    "unable to answer", "unable to find", "cannot find", "could not find", "not able to answer",
    "no mention", "not found in",
)  # fmt: skip
_REFUSALS = tuple(normalize_answer(p) for p in REFUSAL_PHRASES)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")


def is_refusal(prediction: str) -> bool:
    """The answer declines: its first sentence contains a phrase of REFUSAL_PHRASES (after normalisation).

    Only the first sentence counts, so "30 days. The documents do not say more." is an answer.
    """
    first = _SENTENCE_END.split(prediction.strip(), maxsplit=1)[0]
    norm = normalize_answer(first.replace("'", "").replace("’", ""))
    return bool(norm) and any(f" {p} " in f" {norm} " for p in _REFUSALS)


def yes_no_match(prediction: str, expected: str | None) -> bool | None:
    """For yes/no questions: the answer's first word is the expected Yes/No; None if not a yes/no question."""
    if not expected:
        return None
    words = normalize_answer(prediction).split()
    return bool(words) and words[0] == expected.strip().lower()


# --- retrieval and citations ----------------------------------------------------------------------

_CITATION = re.compile(r"\[(\d{1,2})\]")
CITATION_MARKS = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")  # [1], [1, 2], [3; 4] with the space before them


def without_citations(answer: str) -> str:
    """An answer without its citation marks: "4 [6]" -> "4", so a cited passage number never counts as the answer."""
    return CITATION_MARKS.sub("", answer).strip()


def cited_numbers(answer: str) -> list[int]:
    """The source numbers an answer cites as [n], in order, without repeats."""
    return list(dict.fromkeys(int(n) for n in _CITATION.findall(answer)))


def doc_stem(doc_id: str) -> str:
    """A source's doc id as the gold sets name documents: the file name without its extension."""
    return PurePosixPath(doc_id).stem


def ranked_documents(doc_ids: Iterable[str]) -> list[str]:
    """Document stems in order of their first (best) chunk."""
    return list(dict.fromkeys(doc_stem(d) for d in doc_ids))


def hit_at(ranked_docs: Sequence[str], gold_doc_ids: Sequence[str], k: int) -> bool | None:
    """A gold document is among the first k entries (documents, or the documents of ranked chunks).

    None when the question names no document (e.g. unanswerable questions).
    """
    if not gold_doc_ids:
        return None
    gold = {doc_stem(g) for g in gold_doc_ids}
    return any(doc_stem(d) in gold for d in ranked_docs[:k])


def source_holds_answer(
    text: str, golds: Sequence[str], *, span: dict | None = None, doc_id: str = "", start: int = 0, end: int = 0
) -> bool:
    """A source passage holds the answer: a gold answer occurs in it, or it overlaps the gold span."""
    if span and span.get("doc_id") and doc_stem(doc_id) == doc_stem(str(span["doc_id"])):
        if start < int(span.get("end", 0)) and int(span.get("start", 0)) < end:
            return True
    norm = normalize_answer(text)
    return any(_contains_one(norm, g) for g in golds) or bool(numeric_match(text, golds))
